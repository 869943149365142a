// Search speed where users feel it: through the engine (the Swift API, vectors given, one thread),
// on a .fvecs base with queries and ground truth (WordNet, bigann10k). Three collections of the same
// vectors, default settings unless said:
//   merged  : every vector imported in batches, then `compact` (sealed 8,192 at a time and merged
//             into one HNSW segment: the normal state of a compacted collection);
//   fresh   : segmentSize above the base's size, then `compact`: one HNSW segment built at once;
//   mutable : all but segmentSize - 1 vectors imported and compacted, then the rest written (a full
//             mutable segment left unsealed: the normal state after writes).
// Reported, each with recall@10 and queries per second by CPU time (and wall):
//   (a) merged over --ef;  (b) mutable over --ef, with its QPS ratio to (a) at equal recall
//   (merged's QPS interpolated at mutable's recall);  (c) `exact: true` on merged (a subset of
//   queries);  (d) default settings (no efSearch given) on merged and mutable;  (e) merged vs
//   fresh recall@10 at each --ef.
// The systems are timed in alternating rounds (--rounds), keeping each one's least CPU time: the
// machine is shared. CPU flags and load are printed with the figures.
//
// Usage: EngineBench [--data Benchmarks/data] [--base wordnet] [--metric cosine] [--queries 1000]
//          [--exact-queries 100] [--ef 16,32,64,128] [--rounds 3] [--repeat R] [--batch 1000] [--dir DIR]
//          [--keep] [--json FILE]
// bigann10k: --data ../shared/data/bigann10k --base bigann10k --metric l2 --repeat 10 (100 queries).
import Foundation
import Quiver
import QuiverCore
import BenchmarkSupport

let options = BenchmarkArguments()
if options.flag("--help") || options.flag("-h") {
    print("""
    usage: EngineBench [--data DIR] [--base NAME] [--metric cosine|l2|dot] [--queries N] [--exact-queries N]
                       [--ef 16,32,64,128] [--rounds R] [--repeat R] [--batch N] [--dir DIR] [--keep] [--json FILE]
    Engine-level search: merged (compacted) vs full mutable segment vs exact vs defaults vs a fresh build.
    """)
    exit(0)
}
let data = options.string("--data", "Benchmarks/data")
let name = options.string("--base", "wordnet")
guard let metric = Metric(rawValue: options.string("--metric", "cosine")) else { print("unknown --metric"); exit(2) }
let root = options.string("--dir", NSTemporaryDirectory() + "quiver-enginebench-\(getpid())")
let efs = options.ints("--ef", [16, 32, 64, 128])
let rounds = max(1, options.int("--rounds", 3))
let repeats = max(1, options.int("--repeat", 1))
let batch = max(1, options.int("--batch", 1_000))

let baseFile = FileManager.default.fileExists(atPath: "\(data)/\(name).fvecs") ? "\(data)/\(name).fvecs" : "\(data)/\(name)_base.fvecs"
let base = try BenchmarkFiles.fvecs(baseFile)
let queries = try BenchmarkFiles.fvecs("\(data)/\(name)_query.fvecs")
let truth = try BenchmarkFiles.ivecs("\(data)/\(name)_groundtruth.ivecs")
let queryCount = min(options.int("--queries", 1_000), queries.rows, truth.count)
let exactCount = min(options.int("--exact-queries", 100), queryCount)
let defaults = IndexSettings()

func cpuFlags() -> String {
    let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let line = text.split(separator: "\n").first { $0.hasPrefix("flags") } ?? ""
    let wanted = line.split(separator: " ").filter { $0.hasPrefix("avx") || $0 == "fma" || $0.hasPrefix("sse4") }
    return wanted.joined(separator: " ")
}
func load() -> String { ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ") }

print("EngineBench: \(baseFile) (\(base.rows) x \(base.dimension)), \(queryCount) queries (x\(repeats)), metric \(metric.rawValue), k 10")
print("CPU flags: \(cpuFlags())")
print("load average at start: \(load())")

func documents(_ range: Range<Int>) -> [Document] {
    range.map { Document(id: String($0), vector: Array(base[row: $0])) }
}

/// A database in `root/label` holding collection "bench": `compacted` rows written and compacted,
/// then `tail` more rows written and left in the mutable segment.
func build(_ label: String, settings: IndexSettings, compacted: Int, tail: Int = 0) throws -> (Database, Collection) {
    let dir = "\(root)/\(label)"
    try? FileManager.default.removeItem(atPath: dir)
    let db = try Database(path: dir, options: DatabaseOptions(durability: .relaxed(milliseconds: 200)))
    let c = try db.createCollection("bench", dimension: base.dimension, metric: metric,
                                    options: CollectionOptions(index: settings, fullText: nil))
    let t = try measure {
        for start in stride(from: 0, to: compacted, by: batch) { try c.upsert(documents(start..<min(compacted, start + batch))) }
        try db.compact("bench")
        for start in stride(from: compacted, to: compacted + tail, by: batch) { try c.upsert(documents(start..<min(compacted + tail, start + batch))) }
    }
    let stats = try db.stats().collections[0].index!
    let kinds = stats.byKind.map { "\($0.kind.rawValue) \($0.segments) segment(s) \($0.vectors) vectors" }.joined(separator: ", ")
    print(String(format: "%@: %d rows compacted + %d in the mutable segment; built in %.1f s (CPU %.1f s); %@",
                 label, compacted, tail, t.wall, t.cpu, kinds))
    return (db, c)
}

struct Run { var recall: Double; var qps: Double; var cpuQPS: Double }

/// The queries single-threaded with `o`, `repeats` times; recall@10 from the first pass.
func run(_ c: Collection, _ o: SearchOptions, count: Int) throws -> Run {
    let t = try timedQueries(count, repeats: repeats) { i in
        try c.search(vector: Array(queries[row: i]), k: 10, options: o).compactMap { Int($0.id) }
    }
    return Run(recall: recall(t.found, truth: truth, k: 10), qps: t.qps, cpuQPS: t.cpuQPS)
}

/// Runs each of `systems` `rounds` times in alternation; keeps each one's best (least CPU) round.
func alternate(_ systems: [(Collection, SearchOptions)], count: Int) throws -> [Run] {
    var best = [Run?](repeating: nil, count: systems.count)
    for _ in 0..<rounds {
        for (i, (c, o)) in systems.enumerated() {
            let r = try run(c, o, count: count)
            if best[i] == nil || r.cpuQPS > best[i]!.cpuQPS { best[i] = r }
        }
    }
    return best.map { $0! }
}

/// `points`' QPS at `recall`, interpolated linearly between the two points around it (nil when outside).
func qps(at target: Double, _ points: [Run]) -> Double? {
    let sorted = points.sorted { $0.recall < $1.recall }
    for (a, b) in zip(sorted, sorted.dropFirst()) where a.recall <= target && target <= b.recall {
        if b.recall == a.recall { return max(a.cpuQPS, b.cpuQPS) }
        let t = (target - a.recall) / (b.recall - a.recall)
        return a.cpuQPS + t * (b.cpuQPS - a.cpuQPS)
    }
    if let last = sorted.last, abs(last.recall - target) < 1e-9 { return last.cpuQPS }
    return nil
}

func fmt(_ r: Run) -> String { String(format: "recall@10 %.4f, %.0f QPS by CPU (%.0f wall)", r.recall, r.cpuQPS, r.qps) }

let n = base.rows
let tail = min(defaults.segmentSize - 1, n / 2)
var fresh = defaults
fresh.segmentSize = n + 1
fresh.maxSegmentVectors = max(fresh.maxSegmentVectors, n + 1)
let (mergedDB, merged) = try build("merged", settings: defaults, compacted: n)
let (freshDB, freshC) = try build("fresh", settings: fresh, compacted: n)
let (mutableDB, mutable) = try build("mutable", settings: defaults, compacted: n - tail, tail: tail)
print("load average after the builds: \(load())")

var json: [String: Any] = ["base": baseFile, "rows": n, "queries": queryCount, "repeat": repeats, "cpuFlags": cpuFlags()]
print("\n(a) merged, (b) full mutable segment (\(tail) rows), (e) fresh build, by efSearch:")
print("| efSearch | merged recall | merged QPS (CPU) | mutable recall | mutable QPS (CPU) | fresh recall | merged - fresh recall | fresh QPS (CPU) |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
var mergedRuns: [Run] = [], mutableRuns: [Run] = [], freshRuns: [Run] = []
var efRows: [[String: Double]] = []
for ef in efs {
    let o = SearchOptions(efSearch: ef)
    let r = try alternate([(merged, o), (mutable, o), (freshC, o)], count: queryCount)
    mergedRuns.append(r[0]); mutableRuns.append(r[1]); freshRuns.append(r[2])
    print(String(format: "| %d | %.4f | %.0f | %.4f | %.0f | %.4f | %+.4f | %.0f |", ef, r[0].recall, r[0].cpuQPS, r[1].recall, r[1].cpuQPS,
                 r[2].recall, r[0].recall - r[2].recall, r[2].cpuQPS))
    efRows.append(["ef": Double(ef), "mergedRecall": r[0].recall, "mergedCPUQPS": r[0].cpuQPS, "mutableRecall": r[1].recall,
                   "mutableCPUQPS": r[1].cpuQPS, "freshRecall": r[2].recall, "freshCPUQPS": r[2].cpuQPS])
}
json["byEf"] = efRows
print("\n(b) mutable / merged QPS (CPU) at equal recall (merged interpolated at mutable's recall):")
var ratios: [Double] = []
for (ef, m) in zip(efs, mutableRuns) {
    if let q = qps(at: m.recall, mergedRuns) {
        ratios.append(m.cpuQPS / q)
        print(String(format: "  ef %d: mutable recall %.4f at %.0f QPS; merged %.0f QPS at that recall: %.2fx", ef, m.recall, m.cpuQPS, q, m.cpuQPS / q))
    } else {
        print(String(format: "  ef %d: mutable recall %.4f outside merged's measured range", ef, m.recall))
    }
}
json["mutableOverMergedAtEqualRecall"] = ratios

print("\n(c) exact: true on merged (\(exactCount) queries), (d) default settings:")
let d = try alternate([(merged, SearchOptions()), (mutable, SearchOptions()), (freshC, SearchOptions())], count: queryCount)
let x = try alternate([(merged, SearchOptions(exact: true))], count: exactCount)
print("  exact:            \(fmt(x[0]))")
print("  defaults merged:  \(fmt(d[0]))")
print("  defaults mutable: \(fmt(d[1]))")
print("  defaults fresh:   \(fmt(d[2]))")
json["exact"] = ["recall": x[0].recall, "cpuQPS": x[0].cpuQPS, "qps": x[0].qps]
json["defaults"] = ["merged": d[0].recall, "mutable": d[1].recall, "fresh": d[2].recall,
                    "mergedCPUQPS": d[0].cpuQPS, "mutableCPUQPS": d[1].cpuQPS]
print("load average at the end: \(load())")
json["loadAtEnd"] = load()
if let path = options.value("--json") {
    try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: path))
}
mergedDB.close(); freshDB.close(); mutableDB.close()
if !options.flag("--keep") { try? FileManager.default.removeItem(atPath: root) }

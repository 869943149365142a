// The index kinds of a collection, through the engine: the WordNet gloss embeddings (or any .fvecs
// base with queries and ground truth) imported into one collection per kind, sealed and compacted;
// then build time, resident bytes per vector (`stats`), open time, and single-threaded queries per
// second with recall@10 against the ground truth (IVF-PQ over nprobe).
//
// Usage: swift run -c release IndexKindBench [--data Benchmarks/data] [--base wordnet] [--metric cosine]
//          [--kinds hnsw,ivfpq,flat] [--queries 1000] [--nprobe 8,16,32,64] [--pq-bytes N] [--dir DIR]
//          [--segment-size N] [--max-segment-vectors N] [--import-batch N] [--repeat R]
// `--segment-size` and `--max-segment-vectors` set the collection's IndexSettings of those names: small
// values leave several sealed segments after compaction, for timing a search over many segments
// (with `--import-batch` at most `--segment-size`: a seal takes every row written before it).
// `--repeat R` runs the query set R times for the timings (recall from the first pass): bigann10k has
// only 100 queries.
// The data comes from tools/build-wordnet-data (bigann10k: --data ../shared/data/bigann10k --base bigann10k --metric l2).
import Foundation
import Quiver
import QuiverCore
import BenchmarkSupport

let options = BenchmarkArguments()
if options.flag("--help") {
    print("usage: IndexKindBench [--data DIR] [--base NAME] [--metric cosine|l2|dot] [--kinds hnsw,ivfpq,flat] [--queries N] [--nprobe 8,16,32,64] [--pq-bytes N] [--dir DIR] [--segment-size N] [--max-segment-vectors N] [--import-batch N] [--repeat R]")
    exit(0)
}
let data = options.string("--data", "Benchmarks/data")
let name = options.string("--base", "wordnet")
guard let metric = Metric(rawValue: options.string("--metric", "cosine")) else { print("unknown --metric"); exit(2) }
let kinds = options.string("--kinds", "hnsw,ivfpq,flat").split(separator: ",").map(String.init)
let root = options.string("--dir", NSTemporaryDirectory() + "quiver-indexkindbench")
let nprobes = options.ints("--nprobe", [8, 16, 32, 64])

// `NAME.fvecs`, or `NAME_base.fvecs` as the bigann10k files are named.
let baseFile = FileManager.default.fileExists(atPath: "\(data)/\(name).fvecs") ? "\(data)/\(name).fvecs" : "\(data)/\(name)_base.fvecs"
let queries = try BenchmarkFiles.fvecs("\(data)/\(name)_query.fvecs")
let truth = try BenchmarkFiles.ivecs("\(data)/\(name)_groundtruth.ivecs")
let queryCount = min(options.int("--queries", 1_000), queries.rows, truth.count)
print("IndexKindBench: \(baseFile), \(queryCount) queries, metric \(metric.rawValue), k 10")

/// Runs the queries single-threaded; returns queries per second (wall and by CPU time) and recall@10.
let repeats = max(1, options.int("--repeat", 1))
func run(_ c: Collection, _ count: Int, _ options: SearchOptions) throws -> (qps: Double, cpuQPS: Double, recall: Double) {
    let t = try timedQueries(count, repeats: repeats) { i in
        try c.search(vector: Array(queries[row: i]), k: 10, options: options).compactMap { Int($0.id) }
    }
    return (t.qps, t.cpuQPS, recall(t.found, truth: truth, k: 10))
}

var rows: [[String]] = []
for label in kinds {
    guard let kind = IndexKind(rawValue: label) else { print("unknown kind \(label)"); exit(2) }
    let dir = "\(root)/\(label)"
    try? FileManager.default.removeItem(atPath: dir)
    var settings = IndexSettings(kind: kind)
    if let b = options.value("--pq-bytes").flatMap({ Int($0) }) { settings.pqBytes = b }
    if let n = options.value("--segment-size").flatMap({ Int($0) }) { settings.segmentSize = n }
    if let n = options.value("--max-segment-vectors").flatMap({ Int($0) }) { settings.maxSegmentVectors = n }
    var db = try Database(path: dir, options: DatabaseOptions(durability: .relaxed(milliseconds: 200)))
    let c = try db.createCollection("bench", dimension: queries.dimension, metric: metric,
                                    options: CollectionOptions(index: settings, fullText: nil))
    var importOptions = ImportOptions()
    importOptions.batchSize = options.int("--import-batch", 5_000)
    let load = try measure {
        _ = try c.importFile(baseFile, options: importOptions)
        try db.compact("bench")
    }
    db.close()
    let opened = try measure { try Database(path: dir) }
    db = opened.result
    let collection = try db.collection("bench")
    let stats = try db.stats().collections[0].index!
    let kindStats = stats.byKind.first { $0.kind != .flat } ?? stats.byKind[0]
    print(String(format: "%@: import + seal + compact %.1f s (CPU %.1f s); open %.3f s; %@ %.0f bytes/vector resident (%d segment(s))",
                 label, load.wall, load.cpu, opened.wall, kindStats.kind.rawValue, kindStats.bytesPerVector, kindStats.segments))
    let settingsList: [(String, SearchOptions)]
    switch kind {
    case .ivfpq: settingsList = nprobes.map { ("nprobe \($0)", SearchOptions(nprobe: $0)) }
    case .flat: settingsList = [("exact", SearchOptions())]
    default: settingsList = [("ef 64", SearchOptions(efSearch: 64)), ("ef 128", SearchOptions(efSearch: 128))]
    }
    for (search, o) in settingsList {
        let r = try run(collection, kind == .flat ? min(queryCount, 200) : queryCount, o)
        print(String(format: "  %@: recall@10 %.4f, %.0f QPS (%.0f by CPU time)", search, r.recall, r.qps, r.cpuQPS))
        rows.append([label, search, String(format: "%.4f", r.recall), String(format: "%.0f", r.qps), String(format: "%.0f", r.cpuQPS),
                     String(format: "%.0f", kindStats.bytesPerVector), String(format: "%.1f", load.wall), String(format: "%.3f", opened.wall)])
    }
    db.close()
    try? FileManager.default.removeItem(atPath: dir)
}
print("\n| kind | search | recall@10 | QPS | QPS (CPU) | bytes/vector | build s | open s |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for r in rows { print("| " + r.joined(separator: " | ") + " |") }

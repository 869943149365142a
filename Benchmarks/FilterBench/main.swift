// Filtered ANN through the engine on the WordNet-gloss embeddings (tools/build-wordnet-data):
// filters that match 0.1%, 1%, 10% and 50% of documents, on a field independent of the vectors
// (`bucket`, a hash of the row) and on fields correlated with them (WordNet's lexicographer file
// `lex` and part of speech `pos`). For each: recall@10 against the exact filtered answer, the fewest
// results any query got (k whenever at least k match), and single-threaded QPS, next to unfiltered QPS
// (by the process's CPU time, and by wall clock).
//
// Usage: swift run -c release FilterBench [--data DIR] [--queries N] [--db DIR]
//   --data     folder with wordnet.fvecs, wordnet_query.fvecs, wordnet.meta.tsv (default Benchmarks/data)
// Writes the filter definitions (rows allowed by each) to <data>/filters.json so that
// tools/bench-filter can run hnswlib's filtered search on exactly the same sets.
import Foundation
import Quiver
import BenchmarkSupport

let args = CommandLine.arguments
func option(_ name: String) -> String? { args.firstIndex(of: name).map { args[$0 + 1] } }
let data = option("--data") ?? "Benchmarks/data"
let queryCount = Int(option("--queries") ?? "200")!
let dbPath = option("--db") ?? data + "/filterbench.db"

/// The rows of an `.fvecs` file as arrays (documents and queries take `[Float]`).
func rows(_ path: String) throws -> [[Float]] {
    let m = try BenchmarkFiles.fvecs(path)
    return (0..<m.rows).map { Array(m[row: $0]) }
}

/// The independent field: a multiplicative hash of the row, 0..<1000 (tools/bench-filter computes the same).
func bucket(_ row: Int) -> Int { Int((UInt64(row) &* 2_654_435_761) % (1 << 32) % 1000) }

let base = try rows(data + "/wordnet.fvecs")
let queries = Array(try rows(data + "/wordnet_query.fvecs").prefix(queryCount))
var lex: [Int] = Array(repeating: 0, count: base.count), pos: [String] = Array(repeating: "", count: base.count)
for line in try String(contentsOfFile: data + "/wordnet.meta.tsv", encoding: .utf8).split(separator: "\n").dropFirst() {
    let f = line.split(separator: "\t").map(String.init)
    guard f[0] == "base", let row = Int(f[1]), row < base.count else { continue }
    pos[row] = f[3]
    lex[row] = Int(f[4])!
}
print("\(base.count) base vectors, \(queries.count) queries")

if !FileManager.default.fileExists(atPath: dbPath + "/lmdb/data.mdb") {
    let db = try Database(path: dbPath, options: DatabaseOptions(durability: .relaxed(milliseconds: 500)))
    let c = try db.createCollection("wordnet", dimension: base[0].count, metric: .cosine,
                                    options: CollectionOptions(index: IndexSettings(segmentSize: 1 << 20), fullText: nil))
    let t0 = Date()
    var i = 0
    while i < base.count {
        let end = min(i + 5_000, base.count)
        try c.insert((i..<end).map { r in
            Document(id: String(r), metadata: ["bucket": .int(Int64(bucket(r))), "lex": .int(Int64(lex[r])), "pos": .string(pos[r])], vector: base[r])
        })
        i = end
    }
    try c.createPayloadIndex("bucket", type: .integer)
    try c.createPayloadIndex("lex", type: .integer)
    try c.createPayloadIndex("pos", type: .keyword)
    print(String(format: "loaded in %.1f s", Date().timeIntervalSince(t0)))
    let t1 = Date()
    try db.compact("wordnet")
    print(String(format: "HNSW built in %.1f s", Date().timeIntervalSince(t1)))
    db.close()
}

// Correlated filters: the lexicographer file nearest each target size, and for 50% a set of them.
let sizes: [Int: Int] = lex.reduce(into: [:]) { $0[$1, default: 0] += 1 }
func nearestLex(_ target: Double, _ sizes: [Int: Int]) -> Int {
    sizes.min { abs(Double($0.value) - target) < abs(Double($1.value) - target) }!.key
}
var half: [Int] = []
var covered = 0
for (l, n) in sizes.sorted(by: { $0.value > $1.value }) where Double(covered) < 0.5 * Double(base.count) && Double(covered + n) <= 0.56 * Double(base.count) {
    half.append(l)
    covered += n
}
let n = Double(base.count)
var filters: [(String, String)] = [
    ("independent 0.1%", "bucket < 1"), ("independent 1%", "bucket < 10"),
    ("independent 10%", "bucket < 100"), ("independent 50%", "bucket < 500"),
]
for target in [0.001, 0.01, 0.1] {
    filters.append(("correlated \(target * 100)% (lex)", "lex = \(nearestLex(target * n, sizes))"))
}
filters.append(("correlated 50% (lex set)", "lex in (\(half.sorted().map(String.init).joined(separator: ", ")))"))

let db = try Database(path: dbPath)
let c = try db.collection("wordnet")
let k = 10

func run(_ filter: Filter?, exact: Bool) throws -> (results: [[String]], seconds: Double, cpu: Double, allowed: Int) {
    var out: [[String]] = []
    var allowed = base.count
    let t = Date(), c0 = processCPUSeconds()
    for q in queries {
        let (hits, plan) = try c.explain(vector: q, k: k, options: SearchOptions(exact: exact, filter: filter))
        allowed = plan.allowed
        out.append(hits.map(\.id))
    }
    return (out, Date().timeIntervalSince(t), processCPUSeconds() - c0, allowed)
}

_ = try run(nil, exact: false)  // warm-up: page in the segment and the allowed-set machinery
let unfiltered = try run(nil, exact: false)
let unfilteredQPS = Double(queries.count) / unfiltered.cpu
print(String(format: "unfiltered: %.0f QPS by CPU time (%.0f by wall clock)", unfilteredQPS, Double(queries.count) / unfiltered.seconds))
var rows: [[String: Any]] = []
var definitions: [[String: Any]] = []
for (label, text) in filters {
    let filter = try Filter(text: text)
    let truth = try run(filter, exact: true)
    let fast = try run(filter, exact: false)
    var found = 0, expected = 0, fewest = Int.max
    for (t, f) in zip(truth.results, fast.results) {
        found += Set(t).intersection(f).count
        expected += t.count
        fewest = min(fewest, f.count)
    }
    let recall = expected == 0 ? 1 : Double(found) / Double(expected)
    let qps = Double(queries.count) / fast.cpu, wallQPS = Double(queries.count) / fast.seconds
    print(String(format: "%-28@ %-48@ allowed %6d (%5.2f%%)  recall@10 %.4f  fewest %2d  %7.0f QPS (%.0f%% of unfiltered; wall %.0f)",
                 label, text, fast.allowed, 100 * Double(fast.allowed) / n, recall, fewest, qps, 100 * qps / unfilteredQPS, wallQPS))
    rows.append(["filter": label, "expression": text, "allowed": fast.allowed, "recall": recall, "fewest": fewest, "qps": qps,
                 "qps_wall": wallQPS, "qps_share": qps / unfilteredQPS])
    let allowedRows = (0..<base.count).filter { r in
        filter.matches(["bucket": .int(Int64(bucket(r))), "lex": .int(Int64(lex[r])), "pos": .string(pos[r])])
    }
    definitions.append(["filter": label, "rows": allowedRows, "truth": truth.results.map { $0.map { Int($0)! } }])
}
db.close()
try JSONSerialization.data(withJSONObject: ["queries": queries.count, "k": k, "filters": definitions]).write(to: URL(fileURLWithPath: data + "/filters.json"))
print(String(decoding: try JSONSerialization.data(withJSONObject: ["unfiltered_qps": unfilteredQPS, "filters": rows], options: [.sortedKeys]), as: UTF8.self))

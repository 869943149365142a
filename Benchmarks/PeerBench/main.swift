// Quiver's side of tools/bench-peers: the same two phases, files and JSON as tools/peers/child.py,
// through the Swift API (vectors given).
//
// Usage: PeerBench build|reopen --workload DIR --db DIR --out FILE.json [--queries N] [--setting I]
//   build   ingest the workload in batches of 1,000 (a payload index on `number` declared first, as
//           the documentation recommends for filtered fields), compact (one HNSW segment: searchable
//           at full speed), walk efSearch (the default 64, then 16..512 until recall@10 >= 0.95), run
//           the 1% and 10% filters at that efSearch; the database's stats (bytes on disk per vector)
//   reopen  open the database, answer the first query (both timed), run the queries at setting I;
//           resident memory before and after opening and after the queries
// The workload (tools/peers/workload.py): base.fvecs, queries.fvecs, meta.tsv (row, category,
// number, flag) and the exact answers gt.ivecs, gt_f1.ivecs (number < 10), gt_f10.ivecs (number < 100).
import Foundation
import Quiver
import BenchmarkSupport

let args = BenchmarkArguments()
let phase = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : ""
guard ["build", "reopen"].contains(phase), let workload = args.value("--workload"), let dbPath = args.value("--db"),
      let outPath = args.value("--out") else {
    FileHandle.standardError.write(Data("usage: PeerBench build|reopen --workload DIR --db DIR --out FILE.json [--queries N] [--setting I]\n".utf8))
    exit(2)
}
let k = 10
let defaultEF = IndexSettings().efSearch
let settings = [defaultEF] + [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
let labels = ["efSearch \(defaultEF) (default)"] + settings.dropFirst().map { "efSearch \($0)" }
let filters = [("f1", 10), ("f10", 100)]

let base = try BenchmarkFiles.fvecs(workload + "/base.fvecs")
let allQueries = try BenchmarkFiles.fvecs(workload + "/queries.fvecs")
let queryCount = min(args.int("--queries", 1000), allQueries.rows)
let queries = (0..<queryCount).map { Array(allQueries[row: $0]) }
var truth: [String: [[Int]]] = ["": Array(try BenchmarkFiles.ivecs(workload + "/gt.ivecs").prefix(queryCount))]
for (name, _) in filters { truth[name] = Array(try BenchmarkFiles.ivecs(workload + "/gt_\(name).ivecs").prefix(queryCount)) }

/// Resident set size of this process, in bytes.
func residentBytes() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
    return (Int(line.split(separator: " ")[1]) ?? 0) * 1024
}

/// The queries at efSearch `ef` (and the filter `number < limit`): recall@10, QPS by the process's
/// CPU time, latency percentiles by wall clock.
func run(_ c: Collection, ef: Int, limit: Int?, truth: [[Int]]) throws -> [String: Any] {
    let filter = try limit.map { try Filter(text: "number < \($0)") }
    var found: [[Int]] = [], latencies: [Double] = []
    let cpu0 = processCPUSeconds()
    for q in queries {
        let t = wallSeconds()
        let hits = try c.search(vector: q, k: k, options: SearchOptions(efSearch: ef, filter: filter))
        latencies.append(wallSeconds() - t)
        found.append(hits.map { Int($0.id)! })
    }
    let cpu = processCPUSeconds() - cpu0
    latencies.sort()
    func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(p * Double(latencies.count)))] * 1e3 }
    return ["recall": recall(found, truth: truth, k: k), "qps_cpu": Double(queries.count) / cpu,
            "qps_wall": Double(queries.count) / latencies.reduce(0, +), "p50_ms": percentile(0.5), "p99_ms": percentile(0.99)]
}

var out: [String: Any] = [:]
if phase == "build" {
    var categories: [String] = [], numbers: [Int] = [], flags: [Bool] = []
    for line in try String(contentsOfFile: workload + "/meta.tsv", encoding: .utf8).split(separator: "\n") {
        let f = line.split(separator: "\t")
        categories.append(String(f[1])); numbers.append(Int(f[2])!); flags.append(f[3] == "1")
    }
    let t0 = wallSeconds(), cpu0 = processCPUSeconds()
    let db = try Database(path: dbPath)
    let c = try db.createCollection("wordnet", dimension: base.dimension, metric: .cosine)
    try c.createPayloadIndex("number", type: .integer)
    var start = 0
    while start < base.rows {
        let end = min(start + 1_000, base.rows)
        try c.insert((start..<end).map { r in
            Document(id: String(r), metadata: ["category": .string(categories[r]), "number": .int(Int64(numbers[r])), "flag": .bool(flags[r])],
                     vector: Array(base[row: r]))
        })
        start = end
    }
    out["insert_s"] = wallSeconds() - t0
    try db.compact("wordnet")
    out["ingest_s"] = wallSeconds() - t0
    out["ingest_cpu_s"] = processCPUSeconds() - cpu0
    var sweep: [[String: Any]] = [], chosen: Int?
    for (i, ef) in settings.enumerated() {
        var figures = try run(c, ef: ef, limit: nil, truth: truth[""]!)
        figures["label"] = labels[i]
        figures["index"] = i
        sweep.append(figures)
        FileHandle.standardError.write(Data(String(format: "  %@: recall@10 %.4f, %.0f QPS (CPU)\n", labels[i], figures["recall"] as! Double, figures["qps_cpu"] as! Double).utf8))
        if i > 0 && (figures["recall"] as! Double) >= 0.95 { chosen = i; break }
    }
    let pick = chosen ?? sweep.indices.max { (sweep[$0]["recall"] as! Double) < (sweep[$1]["recall"] as! Double) }!
    out["sweep"] = sweep
    out["chosen"] = pick
    var filtered: [String: Any] = [:]
    for (name, limit) in filters {
        filtered[name] = try run(c, ef: settings[pick], limit: limit, truth: truth[name]!)
    }
    out["filtered"] = filtered
    out["filters"] = true
    out["notes"] = "HNSW (M 16, efConstruction 200), payload index on number; inserts of 1,000 then compact()"
    out["rss_after_queries_build"] = residentBytes()
    let stats = try db.stats()
    out["disk_bytes_stats"] = stats.diskBytes
    out["disk_bytes_per_vector"] = stats.diskBytesPerVector ?? 0
    db.close()
} else {
    let ef = settings[args.int("--setting", 0)]
    out["rss_before_open"] = residentBytes()
    let t0 = wallSeconds()
    let db = try Database(path: dbPath)
    let c = try db.collection("wordnet")
    let opened = wallSeconds()
    out["rss_after_open"] = residentBytes()
    _ = try c.search(vector: queries[0], k: k, options: SearchOptions(efSearch: ef))
    out["open_s"] = opened - t0
    out["open_first_query_s"] = wallSeconds() - t0
    out["after_reopen"] = try run(c, ef: ef, limit: nil, truth: truth[""]!)
    out["rss_after_queries"] = residentBytes()
    db.close()
}
try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys, .prettyPrinted]).write(to: URL(fileURLWithPath: outPath))

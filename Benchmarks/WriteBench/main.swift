// Write throughput and point-read latency of the storage path (WAL + LMDB), 384-d vectors.
// Usage: swift run -c release WriteBench [--quick] [--dir <scratch dir>]
// Prints one line per case and a JSON summary. The figures are in docs/benchmarks.md.
import Foundation
import Quiver
import QuiverCore

let args = CommandLine.arguments
let quick = args.contains("--quick")
let scratch = args.firstIndex(of: "--dir").map { args[$0 + 1] } ?? NSTemporaryDirectory() + "/quiver-writebench"
let dimension = 384

func documents(_ start: Int, _ count: Int, _ rng: inout SplitMix64) -> [Document] {
    (start..<start + count).map { i in
        Document(id: "doc-\(i)", text: "document number \(i) with a short text",
                 metadata: ["i": .int(Int64(i)), "group": .string("g\(i % 10)")],
                 vector: (0..<dimension).map { _ in Float.random(in: -1...1, using: &rng) })
    }
}

func now() -> Double { Date().timeIntervalSince1970 }

var summary: [[String: String]] = []
var lastDatabase = ""
for (durabilityName, durability) in [("full", DurabilitySetting.full), ("relaxed", DurabilitySetting.relaxed(milliseconds: 100))] {
    for (batch, total) in [(1, quick ? 300 : 3_000), (100, quick ? 5_000 : 50_000), (10_000, quick ? 20_000 : 100_000)] {
        let path = scratch + "/\(durabilityName)-\(batch)"
        try? FileManager.default.removeItem(atPath: path)
        let db = try Database(path: path, options: DatabaseOptions(durability: durability))
        let c = try db.createCollection("bench", dimension: dimension)
        var rng = SplitMix64(seed: 42)
        // Generate first so that only the writes are timed.
        let docs = documents(0, total, &rng)
        let t0 = now()
        var i = 0
        while i < total {
            try c.upsert(Array(docs[i..<min(i + batch, total)]))
            i += batch
        }
        let seconds = now() - t0
        let rate = Double(total) / seconds
        print(String(format: "write  durability=%-7@ batch=%-6d docs=%-7d %9.0f docs/s  (%.2f s)", durabilityName, batch, total, rate, seconds))
        summary.append(["case": "write", "durability": durabilityName, "batch": String(batch), "documents": String(total),
                        "docs_per_second": String(format: "%.0f", rate)])
        db.close()
        lastDatabase = path
    }
}

// Point reads on the last (largest) database: random ids, one `get` each, with vector and metadata.
let db = try Database(path: lastDatabase)
let c = try db.collection("bench")
let n = try c.count()
var rng = SplitMix64(seed: 7)
var latencies: [Double] = []
let reads = quick ? 2_000 : 20_000
for _ in 0..<reads {
    let id = "doc-\(Int.random(in: 0..<n, using: &rng))"
    let t0 = now()
    guard try c.get(id) != nil else { fatalError("missing \(id)") }
    latencies.append(now() - t0)
}
latencies.sort()
let p50 = latencies[latencies.count / 2] * 1e6, p99 = latencies[latencies.count * 99 / 100] * 1e6
let mean = latencies.reduce(0, +) / Double(latencies.count) * 1e6
print(String(format: "get    %d random point reads over %d documents: mean %.1f us, p50 %.1f us, p99 %.1f us", reads, n, mean, p50, p99))
summary.append(["case": "get", "documents": String(n), "mean_us": String(format: "%.1f", mean), "p50_us": String(format: "%.1f", p50), "p99_us": String(format: "%.1f", p99)])
db.close()
try? FileManager.default.removeItem(atPath: scratch)
let json = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys])
print(String(decoding: json, as: UTF8.self))

// Range search and near-duplicate detection on WordNet (issue 18), against FAISS's exact range
// search (IndexFlatIP.range_search, written by tools/range/faiss_range.py in the same run):
// - range search: for several bounds, the share of the exact in-bound documents the default
//   (segment) search returns, and whether `exact: true` returns exactly FAISS's set;
// - dedup: `Collection.nearDuplicates` at each threshold, timed (wall and process CPU), its pair
//   recall against FAISS's exact self-join, and whether its clusters equal those computed from
//   the exact pairs.
// Run by tools/bench-range, which alternates this with the FAISS side per fraction of the set.
//
// Usage: RangeBench --data Benchmarks/data --rows N --faiss-dir DIR [--thresholds 0.9,0.95]
//          [--bounds 0.6,0.7,0.8] [--queries 200] [--dir DIR]
import Foundation
import Quiver
import QuiverCore
import BenchmarkSupport

let options = BenchmarkArguments()
if options.flag("--help") {
    print("usage: RangeBench --data DIR --rows N --faiss-dir DIR [--thresholds 0.9,0.95] [--bounds 0.6,0.7,0.8] [--queries 200] [--dir DIR]")
    exit(0)
}
/// A comma-separated list of numbers, each with its text as written (FAISS's files are named by it).
func floats(_ text: String) -> [(text: String, value: Float)] {
    text.split(separator: ",").compactMap { s in Float(s).map { (String(s), $0) } }
}
let data = options.string("--data", "Benchmarks/data")
let faissDir = options.string("--faiss-dir", "Benchmarks/data/results-h18dedup")
let thresholds = floats(options.string("--thresholds", "0.9,0.95"))
let bounds = options.value("--bounds") == "none" ? [] : floats(options.string("--bounds", "0.6,0.7,0.8"))
let root = options.string("--dir", NSTemporaryDirectory() + "quiver-rangebench")
let all = try BenchmarkFiles.fvecs("\(data)/wordnet.fvecs")
let rows = min(options.int("--rows", all.rows), all.rows)
let queries = try BenchmarkFiles.fvecs("\(data)/wordnet_query.fvecs")
let queryCount = min(options.int("--queries", 200), queries.rows)

/// Reads FAISS's pair file: (i, j, score) with i < j.
func faissPairs(_ path: String) throws -> [(a: UInt64, b: UInt64)] {
    let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    return bytes.withUnsafeBytes { raw in
        (0..<raw.count / 12).map { p in
            (UInt64(raw.loadUnaligned(fromByteOffset: 12 * p, as: Int32.self)), UInt64(raw.loadUnaligned(fromByteOffset: 12 * p + 4, as: Int32.self)))
        }
    }
}

/// Reads FAISS's range file: per query, a count then the ids.
func faissRanges(_ path: String) throws -> [Set<Int>] {
    let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    return bytes.withUnsafeBytes { raw in
        var out: [Set<Int>] = []
        var o = 0
        while o < raw.count {
            let n = Int(raw.loadUnaligned(fromByteOffset: o, as: Int32.self))
            out.append(Set((0..<n).map { Int(raw.loadUnaligned(fromByteOffset: o + 4 + 4 * $0, as: Int32.self)) }))
            o += 4 + 4 * n
        }
        return out
    }
}

try? FileManager.default.removeItem(atPath: root)
let db = try Database(path: root, options: DatabaseOptions(durability: .relaxed(milliseconds: 200)))
let c = try db.createCollection("wordnet", dimension: all.dimension, metric: .cosine)
let load = try measure {
    var start = 0
    while start < rows {
        let end = min(start + 5_000, rows)
        _ = try c.insert((start..<end).map { Document(id: String($0), vector: all[row: $0]) })
        start = end
    }
    try db.compact("wordnet")
}
print(String(format: "RangeBench: %d WordNet rows (cosine, HNSW defaults), import + index + compact %.1f s (CPU %.1f s)", rows, load.wall, load.cpu))
var summary: [String: Any] = ["rows": rows, "build_wall": load.wall, "build_cpu": load.cpu]

// Range search: recall of the default search against the exact scan, and the exact scan against FAISS.
var rangeRows: [[String: Any]] = []
for (boundText, bound) in bounds {
    let oracle = try faissRanges("\(faissDir)/faiss-range-\(rows)-\(boundText).bin")
    var found = 0, wanted = 0, exactEqual = 0, capped = 0, symmetricDifference = 0
    var o = SearchOptions()
    o.minScore = bound
    var e = o
    e.exact = true
    for i in 0..<queryCount {
        let q = queries[row: i]
        do {
            let exact = Set(try c.search(vector: q, options: e).map { Int($0.id)! })
            let fast = Set(try c.search(vector: q, options: o).map { Int($0.id)! })
            found += fast.intersection(exact).count
            wanted += exact.count
            if exact == oracle[i] { exactEqual += 1 }
            symmetricDifference += exact.symmetricDifference(oracle[i]).count
        } catch {
            capped += 1   // more than Limits.maxK inside the bound
        }
    }
    let recall = wanted == 0 ? 1 : Double(found) / Double(wanted)
    print(String(format: "range >= %.2f: recall %.4f (%d of %d in-bound documents over %d queries, %d over the cap); exact:true equals FAISS for %d of %d queries (%d ids differ)",
                 bound, recall, found, wanted, queryCount - capped, capped, exactEqual, queryCount - capped, symmetricDifference))
    rangeRows.append(["bound": bound, "recall": recall, "inBound": wanted, "queries": queryCount - capped, "overCap": capped,
                      "exactEqualsFaiss": exactEqual, "idsDiffering": symmetricDifference])
}
summary["range"] = rangeRows

// Dedup: time, pair recall against FAISS's exact join, clusters against those of the exact pairs.
var dedupRows: [[String: Any]] = []
for (thresholdText, t) in thresholds {
    let exactPairs = try faissPairs("\(faissDir)/faiss-pairs-\(rows)-\(thresholdText).bin")
    let timed = try measure { try c.nearDuplicates(threshold: t) }
    let cpu = timed.cpu
    let report = timed.result
    let ours = Set(report.pairs.map { [Int($0.a)!, Int($0.b)!].sorted() })
    let theirs = Set(exactPairs.map { [Int($0.a), Int($0.b)] })
    let recall = theirs.isEmpty ? 1 : Double(ours.intersection(theirs).count) / Double(theirs.count)
    let extra = ours.subtracting(theirs).count
    let fromExact = NearDuplicateGrouping.clusters(exactPairs, clustering: .connected).map { g in (g.representative, g.members) }
    let fromOurs = report.clusters.map { (UInt64($0.representative)!, $0.members.map { UInt64($0)! }) }
    let identical = fromExact.count == fromOurs.count && zip(fromExact, fromOurs).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    print(String(format: "dedup >= %.2f: %d pairs (FAISS exact %d), pair recall %.4f, %d not in FAISS's; %d clusters, %@ those of the exact pairs; %.1f s wall, %.1f s CPU",
                 t, ours.count, theirs.count, recall, extra, report.clusters.count, identical ? "identical to" : "NOT identical to", timed.wall, cpu))
    dedupRows.append(["threshold": t, "pairs": ours.count, "exactPairs": theirs.count, "recall": recall, "extraPairs": extra,
                      "clusters": report.clusters.count, "clustersIdentical": identical, "wall": timed.wall, "cpu": cpu])
}
summary["dedup"] = dedupRows
db.close()
try? FileManager.default.removeItem(atPath: root)
let json = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys])
FileHandle.standardError.write(Data("summary ".utf8) + json + Data("\n".utf8))
print(String(decoding: json, as: UTF8.self))

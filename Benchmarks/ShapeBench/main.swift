// The cost of diversity (MMR) and grouping on the WordNet-gloss embeddings (tools/build-wordnet-data),
// through the engine's HNSW segments, against the plain search in the same run: CPU time per query
// (the thread's, robust to other processes on a shared machine) of
//   plain k 10; plain k 50 (the depth MMR reads by default); MMR with diversity 0.5 over 50;
//   grouping by the lexicographer file (`lex`, 45 values) with k 10 groups of 1 and of 3,
// each mode run over all queries in turn, for several rounds (the median round is reported).
// Quality beside it: for MMR, the distinct lexicographer files and the mean pairwise cosine among
// the 10 results, and their mean score, next to the plain top 10; for grouping, the share of
// queries whose groups equal those of the reference (a plain dictionary over the exact ranking of
// the first 10,000 documents), and the candidates walked.
//
// Usage: swift run -c release ShapeBench [--data DIR] [--db DIR] [--queries N] [--rounds N] [--checked N]
import Foundation
import Quiver
import QuiverCore
import BenchmarkSupport

let arguments = BenchmarkArguments()
let data = arguments.string("--data", "Benchmarks/data")
let dbPath = arguments.string("--db", data + "/results-h18search/shape.db")
let queryCount = arguments.int("--queries", 200)
let roundCount = arguments.int("--rounds", 3)
let checkedCount = arguments.int("--checked", 20)

let vectors = try BenchmarkFiles.fvecs(data + "/wordnet.fvecs")
let queryMatrix = try BenchmarkFiles.fvecs(data + "/wordnet_query.fvecs")
let queries = (0..<min(queryCount, queryMatrix.rows)).map { Array(queryMatrix[row: $0]) }
var lexOfRow = [Int64](repeating: -1, count: vectors.rows)
for line in try String(contentsOfFile: data + "/wordnet.meta.tsv", encoding: .utf8).split(separator: "\n").dropFirst() {
    let cells = line.split(separator: "\t")
    if cells[0] == "base", let row = Int(cells[1]), row < vectors.rows { lexOfRow[row] = Int64(cells[4])! }
}
print("\(vectors.rows) documents, \(queries.count) queries, \(roundCount) rounds")

if !FileManager.default.fileExists(atPath: dbPath + "/lmdb/data.mdb") {
    try FileManager.default.createDirectory(atPath: (dbPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    let db = try Database(path: dbPath, options: DatabaseOptions(durability: .relaxed(milliseconds: 500)))
    let c = try db.createCollection("wordnet", dimension: vectors.dimension, metric: .cosine,
                                    options: CollectionOptions(index: IndexSettings(segmentSize: 1 << 20), fullText: nil))
    let (_, loadWall, _) = try measure {
        for start in stride(from: 0, to: vectors.rows, by: 10_000) {
            try c.insert((start..<min(start + 10_000, vectors.rows)).map { r in
                Document(id: String(r), metadata: ["lex": .int(lexOfRow[r])], vector: Array(vectors[row: r]))
            })
        }
        try db.compact("wordnet")
    }
    print(String(format: "loaded and indexed (HNSW) in %.1f s", loadWall))
    db.close()
}

let db = try Database(path: dbPath)
let c = try db.collection("wordnet")
let k = 10

enum Mode: String, CaseIterable {
    case plain10 = "plain k 10", plain50 = "plain k 50", mmr = "MMR 0.5 over 50", group1 = "group by lex, 10 x 1", group3 = "group by lex, 10 x 3"
}

/// The ids each query returns in `mode` (groups flattened).
func runQuery(_ mode: Mode, _ q: [Float]) throws -> [String] {
    switch mode {
    case .plain10: return try c.search(vector: q, k: k).map(\.id)
    case .plain50: return try c.search(vector: q, k: 50).map(\.id)
    case .mmr: return try c.search(vector: q, k: k, options: SearchOptions(diversity: 0.5)).map(\.id)
    case .group1, .group3:
        return try c.searchGroups(vector: q, k: k, options: SearchOptions(groupBy: "lex", groupSize: mode == .group1 ? 1 : 3)).flatMap { $0.hits.map(\.id) }
    }
}

for q in queries.prefix(20) { for m in Mode.allCases { _ = try runQuery(m, q) } }  // warm-up
var seconds: [Mode: [Double]] = [:]
for _ in 0..<roundCount {
    for m in Mode.allCases {
        let t0 = threadCPUSeconds()
        for q in queries { _ = try runQuery(m, q) }
        seconds[m, default: []].append((threadCPUSeconds() - t0) / Double(queries.count))
    }
}
func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
let base = median(seconds[.plain10]!)
var figures: [String: Any] = [:]
for m in Mode.allCases {
    let s = median(seconds[m]!)
    print(m.rawValue.padding(toLength: 22, withPad: " ", startingAt: 0) + String(format: " %8.3f ms CPU per query  %5.2fx plain k 10", 1000 * s, s / base))
    figures[m.rawValue] = ["ms_cpu": 1000 * s, "ratio_to_plain10": s / base]
}

// MMR quality: distinct lexicographer files, mean pairwise cosine, mean score of the 10 results.
func spread(_ hits: [SearchResult]) -> (lexes: Double, cosine: Double, score: Double) {
    let lexes = Set(hits.map { $0.metadata["lex"]! }).count
    let v = hits.map { $0.vector!.normalized() }
    var sum = 0.0, pairs = 0
    for i in v.indices { for j in v.indices where j > i { sum += Double(zip(v[i], v[j]).reduce(0) { $0 + $1.0 * $1.1 }); pairs += 1 } }
    return (Double(lexes), sum / Double(max(pairs, 1)), hits.map { Double($0.score) }.reduce(0, +) / Double(max(hits.count, 1)))
}
var plainSpread = (0.0, 0.0, 0.0), mmrSpread = (0.0, 0.0, 0.0)
for q in queries {
    let p = spread(try c.search(vector: q, k: k, options: SearchOptions(includeVector: true)))
    var o = SearchOptions(diversity: 0.5)
    o.includeVector = true
    let m = spread(try c.search(vector: q, k: k, options: o))
    plainSpread = (plainSpread.0 + p.lexes, plainSpread.1 + p.cosine, plainSpread.2 + p.score)
    mmrSpread = (mmrSpread.0 + m.lexes, mmrSpread.1 + m.cosine, mmrSpread.2 + m.score)
}
let nq = Double(queries.count)
print(String(format: "plain top 10: %.2f distinct lex, mean pairwise cosine %.3f, mean score %.3f", plainSpread.0 / nq, plainSpread.1 / nq, plainSpread.2 / nq))
print(String(format: "MMR 0.5:      %.2f distinct lex, mean pairwise cosine %.3f, mean score %.3f", mmrSpread.0 / nq, mmrSpread.1 / nq, mmrSpread.2 / nq))

// Grouping against the reference over the exact ranking (the first 10,000 documents).
var equal = [1: 0, 3: 0], walked = [1: 0, 3: 0]
for q in queries.prefix(checkedCount) {
    let ranked = try c.search(vector: q, k: 10_000, options: SearchOptions(exact: true))
    for size in [1, 3] {
        var order: [MetadataValue] = [], members: [MetadataValue: [String]] = [:]
        for hit in ranked {
            let v = hit.metadata["lex"]!
            if members[v] == nil { if order.count == k { continue }; order.append(v); members[v] = [] }
            if members[v]!.count < size { members[v]!.append(hit.id) }
        }
        let (groups, plan) = try c.explainGroups(vector: q, k: k, options: SearchOptions(groupBy: "lex", groupSize: size))
        if groups.map(\.value) == order && groups.map({ $0.hits.map(\.id) }) == order.map({ members[$0]! }) { equal[size]! += 1 }
        let g = plan.grouping!
        let candidates = g.range(of: #"from [0-9]+ candidate"#, options: .regularExpression).map { Int(g[$0].split(separator: " ")[1])! } ?? 0
        walked[size]! += candidates
    }
}
for size in [1, 3] {
    print(String(format: "group by lex 10 x %d: %d of %d queries equal to the exact reference; %.0f candidates walked on average",
                 size, equal[size]!, min(checkedCount, queries.count), Double(walked[size]!) / Double(min(checkedCount, queries.count))))
}
db.close()

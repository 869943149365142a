// SciFact retrieval quality through the whole engine: the corpus is written into a collection with
// the built-in encoder and BM25 full-text indexing, and the 300 test claims are searched in dense,
// lexical and hybrid mode. Prints nDCG@10 for each (BEIR's definition: binary gains, log2 discount).
//
// Usage: swift run -c release SciFactBench [--data DIR] [--db DIR] [--vectors FILE] [--k1 1.5] [--b 0.75] [--encoder NAME]
//   --data     the SciFact folder (default ../shared/data/scifact)
//   --encoder  the collection's encoder (default all-MiniLM-L6-v2; all-MiniLM-L6-v2:int8 for int8)
//   --k1, --b  BM25's parameters (default the collection's standard full-text settings)
//   --vectors  the corpus embeddings as little-endian float32, 384 per document in corpus order
//              (EncoderBench writes them); without it the engine embeds the corpus on import
import Foundation
import Quiver
import QuiverTuning

let args = CommandLine.arguments
func option(_ name: String) -> String? { args.firstIndex(of: name).map { args[$0 + 1] } }
let data = option("--data") ?? "../shared/data/scifact"
let dbPath = option("--db") ?? NSTemporaryDirectory() + "/quiver-scifact-\(getpid())"

func jsonLines(_ path: String) throws -> [[String: Any]] {
    try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
        try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
    }
}

let corpus = try jsonLines(data + "/corpus.jsonl")
let queries = Dictionary(uniqueKeysWithValues: try jsonLines(data + "/queries.jsonl").map { ($0["_id"] as! String, $0["text"] as! String) })
var qrels: [String: Set<String>] = [:]
for line in try String(contentsOfFile: data + "/qrels_test.tsv", encoding: .utf8).split(separator: "\n").dropFirst() {
    let f = line.split(separator: "\t").map(String.init)
    if f.count >= 3, (Int(f[2]) ?? 0) > 0 { qrels[f[0], default: []].insert(f[1]) }
}

var vectors: [[Float]]?
if let path = option("--vectors") {
    let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    let floats = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    guard floats.count == corpus.count * 384 else { fatalError("\(path) holds \(floats.count) floats, not \(corpus.count) x 384") }
    vectors = (0..<corpus.count).map { Array(floats[$0 * 384..<($0 + 1) * 384]) }
}

try? FileManager.default.removeItem(atPath: dbPath)
let db = try Database(path: dbPath, options: DatabaseOptions(durability: .relaxed(milliseconds: 200)))
var fullText = FullTextSettings.standard
if let k1 = option("--k1") { fullText.k1 = Double(k1)! }
if let b = option("--b") { fullText.b = Double(b)! }
let c = try db.createCollection("scifact", encoder: option("--encoder") ?? "all-MiniLM-L6-v2", options: CollectionOptions(fullText: fullText))
let t0 = Date()
var batch: [Document] = []
for (i, d) in corpus.enumerated() {
    let text = (d["title"] as! String) + " " + (d["text"] as! String)
    batch.append(Document(id: d["_id"] as! String, text: text, vector: vectors?[i]))
    if batch.count == 256 || i == corpus.count - 1 {
        try c.insert(batch)
        batch = []
    }
}
print(String(format: "wrote %d documents in %.1f s (%@)", corpus.count, Date().timeIntervalSince(t0), vectors == nil ? "embedded by the engine" : "given vectors"))
try db.compact("scifact")

var summary: [String: Double] = [:]
for (label, mode) in [("dense", SearchMode.dense), ("lexical", .lexical), ("hybrid", .hybrid)] {
    var total = 0.0
    let start = Date()
    for qid in qrels.keys.sorted() {
        let hits = try c.search(text: queries[qid]!, k: 10, mode: mode, fusion: .reciprocalRank(k: 60), depth: 100)
        total += ndcg10(hits.map(\.id), relevant: qrels[qid]!)
    }
    let score = total / Double(qrels.count)
    summary[label] = score
    print(String(format: "%-8@ nDCG@10 %.4f over %d queries (%.1f queries/s)", label, score, qrels.count, Double(qrels.count) / Date().timeIntervalSince(start)))
}
db.close()
try? FileManager.default.removeItem(atPath: dbPath)
print(String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]), as: UTF8.self))

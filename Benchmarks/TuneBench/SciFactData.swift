import Foundation
import Quiver

/// SciFact as the tuning benchmark reads it: the corpus, the training claims with their judgments,
/// and the judged test claims.
struct SciFactData {
    var corpus: [(id: String, text: String)] = []
    var queries: [String: String] = [:]
    var trainQueries: [String: String] = [:]
    var trainQrels: [String: Set<String>] = [:]
    var testQrels: [String: Set<String>] = [:]

    init(folder: String) throws {
        func jsonLines(_ path: String) throws -> [[String: Any]] {
            try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
            }
        }
        func qrels(_ path: String) throws -> [String: Set<String>] {
            var out: [String: Set<String>] = [:]
            for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").dropFirst() {
                let f = line.split(separator: "\t").map(String.init)
                if f.count >= 3, (Int(f[2]) ?? 0) > 0 { out[f[0], default: []].insert(f[1]) }
            }
            return out
        }
        corpus = try jsonLines(folder + "/corpus.jsonl").map { d in
            (d["_id"] as! String, ((d["title"] as? String) ?? "") + " " + ((d["text"] as? String) ?? ""))
        }
        queries = Dictionary(uniqueKeysWithValues: try jsonLines(folder + "/queries.jsonl").map { ($0["_id"] as! String, $0["text"] as! String) })
        trainQueries = Dictionary(uniqueKeysWithValues: try jsonLines(folder + "/queries_train.jsonl").map { ($0["_id"] as! String, $0["text"] as! String) })
        trainQrels = try qrels(folder + "/qrels_train.tsv")
        testQrels = try qrels(folder + "/qrels_test.tsv")
    }

    /// The test claims none of whose relevant documents is relevant to any training claim.
    var unseenTestClaims: Set<String> {
        let trained = Set(trainQrels.values.flatMap { $0 })
        return Set(testQrels.filter { $0.value.isDisjoint(with: trained) }.keys)
    }
}

/// The corpus embeddings (384 float32 per document, corpus order), made once by the engine's own
/// encoder and kept in `path`: embedding 5,183 abstracts takes minutes on a loaded machine.
func cachedCorpusVectors(_ data: SciFactData, path: String, scratch: String) throws -> [[Float]] {
    if let bytes = FileManager.default.contents(atPath: path), bytes.count == data.corpus.count * 384 * 4 {
        let floats = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        return (0..<data.corpus.count).map { Array(floats[$0 * 384..<($0 + 1) * 384]) }
    }
    let dbPath = scratch + "/embed.db"
    try? FileManager.default.removeItem(atPath: dbPath)
    let db = try Database(path: dbPath, options: DatabaseOptions(durability: .relaxed(milliseconds: 200)))
    let c = try db.createCollection("corpus", encoder: "all-MiniLM-L6-v2", options: CollectionOptions(index: IndexSettings(kind: .flat), fullText: nil))
    let start = Date()
    for s in stride(from: 0, to: data.corpus.count, by: 128) {
        let part = data.corpus[s..<min(s + 128, data.corpus.count)]
        try c.insert(part.map { Document(id: $0.id, text: $0.text) })
        let done = min(s + 128, data.corpus.count)
        FileHandle.standardError.write(Data(String(format: "\rembedding the corpus: %d / %d (%.0f s)", done, data.corpus.count, Date().timeIntervalSince(start)).utf8))
    }
    FileHandle.standardError.write(Data("\n".utf8))
    let vectors = try c.get(ids: data.corpus.map(\.id)).map { $0!.vector! }
    db.close()
    try? FileManager.default.removeItem(atPath: dbPath)
    var out = Data(capacity: vectors.count * 384 * 4)
    for v in vectors { v.withUnsafeBytes { out.append(contentsOf: $0) } }
    try out.write(to: URL(fileURLWithPath: path), options: .atomic)
    return vectors
}

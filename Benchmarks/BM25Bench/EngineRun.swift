// BM25Bench --engine: lexical, dense and hybrid search through the engine (Collection.search over a
// real database), where users feel it, beside the in-memory index figures of the main run.
//
// Imports the corpus into a fresh database (a collection with the all-MiniLM-L6-v2 encoder, each
// document's text with its vector given from --vectors, whose row i is corpus document i, so that
// nothing is embedded at import), compacts it, then times on one thread, in alternating rounds, by
// the thread's CPU time: lexical at k 10 and at k 100 (the depth hybrid search reads), dense at
// k 100 from the query text (the encoder embeds it) and hybrid at k 10, depth 100. The hybrid
// overhead is hybrid's time per query less dense-100's and lexical-100's: what fusing costs beyond
// its two lists. A database this benchmark made before at --db, holding the whole corpus, is reused. Lexical results are checked against the in-memory index's (the same ids in order).
import BenchmarkSupport
import Foundation
import Quiver
import QuiverText

struct EngineFigures {
    var lexical10: Double
    var lexical100: Double
    var dense100: Double
    var hybrid: Double
    var encoderQueries: Int
    var documents: Int
    var importSeconds: Double
}

func engineRun(_ data: SciFact, vectors path: String, database: String, queries encoderQueries: Int, rounds: Int,
               bm25: BM25, analyzer: Analyzer) throws -> EngineFigures {
    let vectors = try BenchmarkFiles.fvecs(path)
    guard vectors.rows == data.documents.count else {
        throw BenchError.data("\(path) has \(vectors.rows) vectors for \(data.documents.count) documents")
    }
    guard analyzer == .default, bm25 == BM25() else {
        throw BenchError.usage("--engine runs the collection's standard full-text settings (the default analyzer, k1 1.5, b 0.75)")
    }
    // A database this benchmark made before, holding every document, is reused (--db).
    var complete = false
    if let db = try? Database(path: database) {
        complete = (try? db.collection("bench").count()) == data.documents.count
        db.close()
    }
    if !complete { try? FileManager.default.removeItem(atPath: database) }
    let db = try Database(path: database)
    defer { db.close() }
    let reused = (try? db.collection("bench")) != nil
    let collection = try (try? db.collection("bench")) ?? db.createCollection("bench", encoder: "all-MiniLM-L6-v2")
    let t0 = wallSeconds()
    for start in stride(from: 0, to: reused ? 0 : data.documents.count, by: 1000) {
        let batch = (start..<min(start + 1000, data.documents.count)).map { i in
            let d = data.documents[i]
            return Document(id: d._id, text: d.title + " " + d.text, vector: vectors[row: i])
        }
        try collection.upsert(batch)
        FileHandle.standardError.write(Data("\rimport \(start + batch.count)/\(data.documents.count)".utf8))
    }
    if !reused {
        try db.compact()
        try db.checkpoint()
    }
    let importSeconds = wallSeconds() - t0
    FileHandle.standardError.write(Data("\r\(reused ? "reused" : "imported and compacted") \(data.documents.count) documents in \(Int(importSeconds)) s\n".utf8))

    // The engine's lexical ranking must be the in-memory index's.
    var index = TextIndex(analyzer: analyzer, bm25: bm25)
    for (i, d) in data.documents.enumerated() { index.add(Int64(i), text: d.title + " " + d.text) }
    for q in data.queries {
        let engine = try collection.search(text: q.text, k: 10, mode: .lexical).map(\.id)
        let memory = index.search(q.text, k: 10).map { data.documents[Int($0.documentID)]._id }
        guard engine == memory else { throw BenchError.data("query \(q._id): the engine ranked \(engine), the in-memory index \(memory)") }
    }

    let encoded = Array(data.queries.prefix(encoderQueries))
    var seconds = [0.0, 0.0, 0.0, 0.0]
    func timed(_ slot: Int, _ body: () throws -> Void) rethrows {
        let t = threadCPUSeconds()
        try body()
        seconds[slot] += threadCPUSeconds() - t
    }
    // Dense, hybrid and lexical-100 query by query (the encoder's cost, most of dense and hybrid,
    // then drifts alike for both on a loaded machine), in turn first.
    for round in 0..<rounds {
        try timed(0) { for q in data.queries { _ = try collection.search(text: q.text, k: 10, mode: .lexical) } }
        for (i, q) in encoded.enumerated() {
            let dense = { _ = try collection.search(text: q.text, k: 100, mode: .dense) }
            let hybrid = { _ = try collection.search(text: q.text, k: 10, mode: .hybrid, depth: 100) }
            try timed(1) { _ = try collection.search(text: q.text, k: 100, mode: .lexical) }
            if (i + round) % 2 == 0 {
                try timed(2, dense)
                try timed(3, hybrid)
            } else {
                try timed(3, hybrid)
                try timed(2, dense)
            }
        }
        FileHandle.standardError.write(Data("\rround \(round + 1)/\(rounds)".utf8))
    }
    FileHandle.standardError.write(Data("\n".utf8))
    let n = Double(data.queries.count * rounds), m = Double(encoded.count * rounds)
    return EngineFigures(lexical10: n / seconds[0], lexical100: m / seconds[1], dense100: m / seconds[2], hybrid: m / seconds[3],
                         encoderQueries: encoded.count, documents: data.documents.count, importSeconds: importSeconds)
}

func printEngine(_ e: EngineFigures, json: Bool) {
    let overhead = 1e6 * (1 / e.hybrid - 1 / e.dense100 - 1 / e.lexical100)
    if json {
        print("{\"engine_lexical10_qps\":\(Int(e.lexical10)),\"engine_lexical100_qps\":\(Int(e.lexical100)),\"engine_dense100_qps\":\(Int(e.dense100)),\"engine_hybrid_qps\":\(Int(e.hybrid)),\"hybrid_overhead_us\":\(Int(overhead))}")
    } else {
        print(String(format: "engine (%d documents, CPU time): lexical k10 %.0f queries/s, k100 %.0f; dense k100 %.1f, hybrid k10 depth 100 %.1f (%d queries); hybrid - dense - lexical = %.0f us per query",
                     e.documents, e.lexical10, e.lexical100, e.dense100, e.hybrid, e.encoderQueries, overhead))
    }
}

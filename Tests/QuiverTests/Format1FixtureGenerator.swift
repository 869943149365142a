import Foundation
import Testing
import QuiverCore
import QuiverTestSupport
import QuiverStorage
@testable import Quiver

/// Makes the format-1 database of `Fixtures/format1/` (read by `FormatUpgradeTests`).
///
/// It must run on code that writes format 1: commit d5d9d13 plus this file, which is commit 29446ba,
/// the one that added the fixture (`git log -- Tests/QuiverTests/Fixtures/format1`). On later code it
/// writes the current format. To regenerate, check 29446ba out into a scratch worktree and run
///
///     QUIVER_MAKE_FORMAT1_FIXTURE=/tmp/format1 swift test --filter Format1FixtureGenerator
///
/// then copy /tmp/format1 over Tests/QuiverTests/Fixtures/format1. Without the variable the test
/// does nothing.
///
/// What it holds (every value kind of the LMDB layout, and log records past LMDB's state):
/// - `docs` (8-d cosine, HNSW, segment size 40): 150 documents with text and metadata (`tag`
///   keyword, `year` integer, `score` float, `flag` bool, `tags` list), payload indexes on `tag`
///   and `year`, full text on; 5 deleted, 3 replaced; sealed HNSW segments.
/// - `pq` (8-d l2, IVF-PQ, 2-byte codes, no full text): 1,500 vectors compacted into an IVF-PQ
///   segment; 10 deleted after the seal.
/// - `notes` (4-d dot, full text): texts, one of them zstd-compressed, imported from a JSONL file
///   (an `imports` checkpoint).
/// - `db/lmdb` is a copy taken before the last writes; `db/wal` holds those writes, so an open
///   replays them (after upgrading).
/// - `expected/<collection>.jsonl`: each collection exported by the format-1 code after every write;
///   `expected/searches.json`: queries and their results (ids and scores, index and exact).
struct Format1FixtureGenerator {
    struct Search: Codable, Equatable {
        var collection: String
        var vector: [Float]
        var k: Int
        var exact: Bool
        var ids: [String]
        var scores: [Float]
    }

    func vector(_ d: Int, _ rng: inout SplitMix64) -> [Float] {
        // Two decimals, so that the vectors print short and exactly in the JSONL files.
        (0..<d).map { _ in Float(Int(rng.next() % 201) - 100) / 100 }
    }

    let words = ["river", "stone", "apple", "quiet", "light", "north", "paper", "green", "storm", "glass", "music", "tiger"]

    @Test func makeFixture() throws {
        guard let out = ProcessInfo.processInfo.environment["QUIVER_MAKE_FORMAT1_FIXTURE"] else { return }
        try? FileSystem.removeTree(out)
        try FileSystem.createDirectory(out)
        try FileSystem.createDirectory(out + "/expected")
        let path = out + "/db"
        var rng = SplitMix64(seed: 20261204)
        var db = try Database(path: path)

        // docs: sealed HNSW segments, payload indexes, full text, deletes and replacements.
        let docs = try db.createCollection("docs", dimension: 8, metric: .cosine,
                                           options: CollectionOptions(index: IndexSettings(segmentSize: 40)))
        try docs.createPayloadIndex("tag", type: .keyword)
        var batch: [Document] = []
        for i in 0..<150 {
            let text = (0..<(3 + i % 5)).map { j in words[(i * 7 + j * 3) % words.count] }.joined(separator: " ")
            var metadata: Metadata = ["tag": .string(["red", "green", "blue"][i % 3]), "year": .int(Int64(2000 + i % 25))]
            if i % 4 == 0 { metadata["score"] = .double(Double(i) / 8) }
            if i % 5 == 0 { metadata["flag"] = .bool(i % 10 == 0) }
            if i % 6 == 0 { metadata["tags"] = .stringList(["x\(i % 4)", "y"]) }
            batch.append(Document(id: "doc-\(i)", text: text, metadata: metadata, vector: vector(8, &rng)))
        }
        try docs.insert(Array(batch[0..<100]))
        try docs.createPayloadIndex("year", type: .integer)
        try docs.insert(Array(batch[100...]))
        _ = try docs.delete(ids: ["doc-3", "doc-17", "doc-44", "doc-101", "doc-140"])
        try docs.upsert(["doc-5", "doc-60", "doc-120"].map { Document(id: $0, text: "replaced \($0) storm", metadata: ["tag": "red"], vector: vector(8, &rng)) })
        try db.compact("docs")

        // pq: an IVF-PQ segment.
        let pq = try db.createCollection("pq", dimension: 8, metric: .l2,
                                         options: CollectionOptions(index: IndexSettings(kind: .ivfpq, segmentSize: 400, pqBytes: 2), fullText: nil))
        try pq.insert((0..<1_500).map { Document(id: "p\($0)", metadata: ["n": .int(Int64($0))], vector: vector(8, &rng)) })
        try db.compact("pq")
        _ = try pq.delete(ids: (0..<10).map { "p\($0 * 37)" })

        // notes: imported from a file (an import checkpoint), one text compressed.
        let notes = try db.createCollection("notes", dimension: 4, metric: .dot)
        let input = out + "/notes-input.jsonl"
        var lines: [String] = []
        for i in 0..<30 {
            let text = i == 7 ? String(repeating: "a long note about rivers and stones, ", count: 30)
                : (0..<(2 + i % 4)).map { j in words[(i * 5 + j) % words.count] }.joined(separator: " ")
            let v = vector(4, &rng).map { "\($0)" }.joined(separator: ",")
            lines.append("{\"id\":\"n\(i)\",\"text\":\"\(text)\",\"metadata\":{\"i\":\(i)},\"vector\":[\(v)]}")
        }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: input))
        var importOptions = ImportOptions()
        importOptions.batchSize = 10
        _ = try notes.importFile(input, options: importOptions)
        try? FileSystem.remove(input)
        db.waitForMaintenance()

        // The LMDB state before the last writes; the log past it is replayed at the next open.
        try db.checkpoint()
        db.close()
        try FileSystem.createDirectory(out + "/lmdb-before")
        try FileManager.default.copyItem(atPath: path + "/lmdb/data.mdb", toPath: out + "/lmdb-before/data.mdb")
        db = try Database(path: path)
        let docs2 = try db.collection("docs")
        try docs2.upsert([Document(id: "late-1", text: "late river", metadata: ["tag": "blue", "year": 2030], vector: vector(8, &rng)),
                          Document(id: "doc-7", text: "replaced late", metadata: ["tag": "green"], vector: vector(8, &rng))])
        _ = try docs2.delete(ids: ["doc-8"])
        _ = try db.collection("notes").upsert(Document(id: "n-late", text: "late note", vector: vector(4, &rng)))

        // What the format-1 code answers, after every write.
        var searches: [Search] = []
        for name in ["docs", "pq", "notes"] {
            let c = try db.collection(name)
            try c.export(to: out + "/expected/\(name).jsonl", format: .jsonl)
            for q in 0..<4 {
                let v = vector(c.info.dimension, &rng)
                for exact in [false, true] {
                    let options = SearchOptions(exact: exact, efSearch: 1_000, nprobe: 1 << 20, rerank: 1 << 20)
                    let r = try c.search(vector: v, k: 5 + q, options: options)
                    searches.append(Search(collection: name, vector: v, k: 5 + q, exact: exact, ids: r.map(\.id), scores: r.map(\.score)))
                }
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(searches).write(to: URL(fileURLWithPath: out + "/expected/searches.json"))
        db.close()
        try FileSystem.remove(path + "/lmdb/data.mdb")
        try? FileSystem.remove(path + "/lmdb/lock.mdb")
        try? FileSystem.remove(path + "/LOCK")
        try FileManager.default.moveItem(atPath: out + "/lmdb-before/data.mdb", toPath: path + "/lmdb/data.mdb")
        try FileSystem.removeTree(out + "/lmdb-before")
    }
}

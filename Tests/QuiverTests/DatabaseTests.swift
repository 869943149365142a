import Foundation
import Testing
import QuiverTestSupport
import QuiverCore
import QuiverStorage
@testable import Quiver

func randomVector(_ d: Int, _ rng: inout some RandomNumberGenerator) -> [Float] {
    (0..<d).map { _ in Float.random(in: -1...1, using: &rng) }
}

struct DatabaseTests {
    @Test func createListDescribeDrop() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        try db.createCollection("b", dimension: 3, metric: .l2)
        try db.createCollection("a", dimension: 4)
        #expect(try db.collections().map(\.name) == ["a", "b"])
        #expect(try db.describe("b").metric == .l2)
        #expect(throws: QuiverError.collectionExists("a")) { try db.createCollection("a", dimension: 4) }
        try db.dropCollection("a")
        #expect(throws: QuiverError.unknownCollection("a")) { try db.describe("a") }
        #expect(throws: QuiverError.unknownCollection("zzz")) { try db.dropCollection("zzz") }
        // A new collection under a dropped name starts empty, and old handles are dead.
        let b = try db.collection("b")
        try b.upsert(Document(id: "x", vector: [1, 2, 3]))
        try db.dropCollection("b")
        let b2 = try db.createCollection("b", dimension: 3)
        #expect(try b2.count() == 0)
        #expect(try b2.get("x") == nil)
        #expect(throws: QuiverError.unknownCollection("b")) { try b.count() }
    }

    @Test func upsertInsertGetDeleteCount() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("docs", dimension: 2, metric: .dot)
        let long = String(repeating: "zstd likes repetition. ", count: 100)
        try c.insert([
            Document(id: "a", text: "short", metadata: ["n": 1, "tags": ["x", "y"], "ok": true, "f": 0.5, "none": nil], vector: [1, 0]),
            Document(id: "b", text: long, vector: [0, 1]),
        ])
        #expect(try c.count() == 2)
        let a = try #require(try c.get("a"))
        #expect(a.text == "short" && a.metadata["tags"] == .stringList(["x", "y"]) && a.metadata["none"] == .null && a.vector == [1, 0])
        #expect(try c.get("b")?.text == long)
        #expect(throws: QuiverError.duplicateID(collection: "docs", id: "a", index: 1)) {
            try c.insert([Document(id: "c", vector: [1, 1]), Document(id: "a", vector: [1, 1])])
        }
        #expect(try c.get("c") == nil)  // the rejected batch wrote nothing
        try c.upsert(Document(id: "a", text: "replaced", vector: [2, 2]))
        #expect(try c.count() == 2)
        #expect(try c.get("a")?.text == "replaced")
        #expect(try c.get("a")?.metadata == [:])
        #expect(try c.delete(ids: ["a", "missing", "a"]) == 1)
        #expect(try c.count() == 1)
        #expect(try c.get(ids: ["a", "b"]).map { $0?.id } == [nil, "b"])
        #expect(try c.ids() == ["b"])
    }

    @Test func longTextIsStoredCompressed() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("t", dimension: 1, options: CollectionOptions(textCompressionThreshold: 64))
        let text = String(repeating: "abcdefgh", count: 1000)
        try c.upsert(Document(id: "d", text: text, vector: [1]))
        let stored = try db.readTransaction { txn in try txn.get(db.tables.documents, Keys.document(c.info.number, "d"))! }
        #expect(stored.count < 500)
        #expect(try DocumentRecord(stored: stored, key: Keys.document(c.info.number, "d"), collection: "t").text == text)
    }

    @Test func exactSearchMatchesBruteForceForEveryMetric() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        var rng = SystemRandomNumberGenerator()
        for metric in Metric.allCases {
            let c = try db.createCollection("m-\(metric.rawValue)", dimension: 16, metric: metric)
            let docs = (0..<300).map { Document(id: "d\($0)", metadata: ["i": .int(Int64($0))], vector: randomVector(16, &rng)) }
            try c.upsert(docs)
            let q = randomVector(16, &rng)
            let hits = try c.search(vector: q, k: 10, options: SearchOptions(includeVector: true))
            func score(_ v: [Float]) -> Float {
                switch metric {
                case .cosine:
                    let a = q.normalized(), b = v.normalized()
                    return zip(a, b).map(*).reduce(0, +)
                case .dot: return zip(q, v).map(*).reduce(0, +)
                case .l2: return zip(q, v).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
                }
            }
            let expected = docs.sorted { metric.higherScoreIsCloser ? score($0.vector!) > score($1.vector!) : score($0.vector!) < score($1.vector!) }.prefix(10)
            #expect(hits.map(\.id) == expected.map(\.id), "\(metric)")
            for (h, e) in zip(hits, expected) {
                #expect(abs(h.score - score(e.vector!)) < 1e-4)
                #expect(h.metadata == e.metadata && h.vector == e.vector)
            }
        }
    }

    @Test func reopenKeepsEverything() throws {
        let dir = TemporaryDirectory()
        do {
            let db = try Database(path: dir.path)
            let c = try db.createCollection("c", dimension: 2)
            for i in 0..<20 { try c.upsert(Document(id: "d\(i)", text: "t\(i)", vector: [Float(i), 1])) }
            try c.delete(id: "d3")
            db.close()
        }
        let db = try Database(path: dir.path)
        let c = try db.collection("c")
        #expect(try c.count() == 19)
        #expect(try c.get("d7")?.text == "t7")
        #expect(try c.get("d3") == nil)
    }

    @Test func logIsReplayedWhenLMDBLagsBehind() throws {
        let dir = TemporaryDirectory()
        // Write with LMDB state captured before the last writes: copy LMDB aside, write more, then
        // put the old LMDB back. Reopening must replay the log into it.
        do {
            let db = try Database(path: dir.path)
            let c = try db.createCollection("c", dimension: 2)
            try c.upsert(Document(id: "early", vector: [1, 1]))
            try db.env.copy(to: dir.path + "/lmdb-old")
            try c.upsert(Document(id: "late", text: "from the log", vector: [2, 2]))
            try c.delete(id: "early")
            db.close()
        }
        try FileSystem.removeTree(dir.path + "/lmdb")
        try FileSystem.rename(dir.path + "/lmdb-old", dir.path + "/lmdb")
        let db = try Database(path: dir.path)
        #expect(db.openReport.replayedRecords == 2)
        let c = try db.collection("c")
        #expect(try c.get("late")?.text == "from the log")
        #expect(try c.get("early") == nil)
        #expect(try c.count() == 1)
    }

    @Test func checkpointTruncatesTheLog() throws {
        let dir = TemporaryDirectory()
        var options = DatabaseOptions()
        options.walFileSize = 4096
        options.checkpointBytes = 16_384
        let db = try Database(path: dir.path, options: options)
        let c = try db.createCollection("c", dimension: 8)
        var rng = SystemRandomNumberGenerator()
        for i in 0..<300 { try c.upsert(Document(id: "d\(i)", vector: randomVector(8, &rng))) }
        #expect((db.wal?.diskSize ?? .max) <= 16_384 + 4096)
        db.close()
        let reopened = try Database(path: dir.path, options: options)
        #expect(try reopened.collection("c").count() == 300)
    }

    @Test func secondOpenIsLocked() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        _ = db
        // flock locks belong to the open file description, so a second open in the same process
        // conflicts just as another process would.
        #expect(throws: QuiverError.databaseLocked(path: dir.path)) { try Database(path: dir.path) }
    }

    @Test func notADatabase() throws {
        let dir = TemporaryDirectory()
        #expect(FileManager.default.createFile(atPath: dir.path + "/stuff.txt", contents: Data("hi".utf8)))
        #expect(throws: QuiverError.self) { try Database(path: dir.path) }
        var options = DatabaseOptions()
        options.createIfMissing = false
        #expect(throws: QuiverError.self) { try Database(path: dir.path + "/missing", options: options) }
    }

    @Test func closedDatabaseRefusesCalls() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("c", dimension: 1)
        db.close()
        #expect(throws: QuiverError.self) { try c.upsert(Document(id: "a", vector: [1])) }
        #expect(throws: QuiverError.self) { try c.count() }
    }

    @Test func concurrentWritersAndReaders() async throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("c", dimension: 4)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<4 {
                group.addTask {
                    for i in 0..<50 { try c.upsert(Document(id: "t\(t)-\(i)", vector: [Float(t), Float(i), 1, 1])) }
                }
            }
            group.addTask {
                for _ in 0..<50 { _ = try c.search(vector: [1, 1, 1, 1], k: 5) }
            }
            try await group.waitForAll()
        }
        #expect(try c.count() == 200)
    }
}

import Foundation
import Testing
import QuiverTestSupport
@testable import Quiver

/// Every kind of bad input is rejected with its own error, naming the record, and writes nothing.
struct ValidationTests {
    func setUp() throws -> (TemporaryDirectory, Database, Collection) {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("c", dimension: 3)
        try c.upsert(Document(id: "existing", vector: [1, 2, 3]))
        return (dir, db, c)
    }

    func expectRejected(_ c: Collection, _ batch: [Document], _ expected: QuiverError, insert: Bool = false) throws {
        let before = try c.ids()
        let lastSeq = c.database.wal?.lastAppendedSequence
        #expect(throws: expected) { insert ? try c.insert(batch) : try c.upsert(batch) }
        #expect(try c.ids() == before)
        #expect(c.database.wal?.lastAppendedSequence == lastSeq, "a rejected batch reached the log")
    }

    @Test func wrongDimension() throws {
        let (_, _, c) = try setUp()
        try expectRejected(c, [Document(id: "ok", vector: [1, 2, 3]), Document(id: "bad", vector: [1, 2])],
                           .dimensionMismatch(collection: "c", id: "bad", index: 1, expected: 3, actual: 2))
    }

    @Test func nanAndInfinity() throws {
        let (_, _, c) = try setUp()
        try expectRejected(c, [Document(id: "n", vector: [1, .nan, 3])], .nonFiniteVector(collection: "c", id: "n", index: 0, component: 1))
        try expectRejected(c, [Document(id: "ok", vector: [1, 1, 1]), Document(id: "i", vector: [1, 2, -.infinity])],
                           .nonFiniteVector(collection: "c", id: "i", index: 1, component: 2))
    }

    @Test func dimensionBounds() throws {
        let (_, db, _) = try setUp()
        #expect(throws: QuiverError.invalidDimension(0)) { try db.createCollection("z", dimension: 0) }
        #expect(throws: QuiverError.invalidDimension(65_537)) { try db.createCollection("z", dimension: 65_537) }
        #expect(throws: QuiverError.invalidDimension(-1)) { try db.createCollection("z", dimension: -1) }
        #expect(try db.collections().map(\.name) == ["c"])
        try db.createCollection("max", dimension: 65_536)
    }

    @Test func badIDs() throws {
        let (_, _, c) = try setUp()
        try expectRejected(c, [Document(id: "", vector: [1, 2, 3])], .invalidDocumentID(id: "", index: 0, reason: "it is empty"))
        let long = String(repeating: "x", count: 501)
        try expectRejected(c, [Document(id: "fine", vector: [1, 2, 3]), Document(id: long, vector: [1, 2, 3])],
                           .invalidDocumentID(id: long, index: 1, reason: "it is 501 bytes long; the limit is 500"))
        try expectRejected(c, [Document(id: "a\u{0}b", vector: [1, 2, 3])], .invalidDocumentID(id: "a\u{0}b", index: 0, reason: "it contains a NUL character"))
        try c.upsert(Document(id: String(repeating: "é", count: 250), vector: [1, 2, 3]))  // 500 bytes exactly
    }

    @Test func badMetadata() throws {
        let (_, _, c) = try setUp()
        try expectRejected(c, [Document(id: "m", metadata: ["x": .double(.nan)], vector: [1, 2, 3])],
                           .invalidMetadata(id: "m", index: 0, reason: "the value of 'x' is NaN or infinite"))
        try expectRejected(c, [Document(id: "m", metadata: ["": 1], vector: [1, 2, 3])],
                           .invalidMetadata(id: "m", index: 0, reason: "an empty key"))
        // Metadata that is not an object is rejected when decoding JSON documents.
        for bad in [#"{"id":"m","metadata":[1,2],"vector":[1,2,3]}"#, #"{"id":"m","metadata":"text","vector":[1,2,3]}"#,
                    #"{"id":"m","metadata":{"nested":{"a":1}},"vector":[1,2,3]}"#] {
            #expect(throws: DecodingError.self) { try JSONDecoder().decode(Document.self, from: Data(bad.utf8)) }
        }
    }

    @Test func missingVectorWithoutEncoder() throws {
        let (_, _, c) = try setUp()
        try expectRejected(c, [Document(id: "t", text: "no vector")], .missingVector(collection: "c", id: "t", index: 0))
    }

    @Test func duplicateInBatchAndExisting() throws {
        let (_, _, c) = try setUp()
        try expectRejected(c, [Document(id: "a", vector: [1, 2, 3]), Document(id: "a", vector: [1, 2, 3])],
                           .duplicateID(collection: "c", id: "a", index: 1))
        try expectRejected(c, [Document(id: "new", vector: [1, 2, 3]), Document(id: "existing", vector: [1, 2, 3])],
                           .duplicateID(collection: "c", id: "existing", index: 1), insert: true)
    }

    @Test func unknownCollectionAndBadNames() throws {
        let (_, db, _) = try setUp()
        #expect(throws: QuiverError.unknownCollection("nope")) { try db.collection("nope") }
        for bad in ["", "has space", "../up", ".hidden", String(repeating: "n", count: 129), "naïve"] {
            #expect(throws: QuiverError.self) { try db.createCollection(bad, dimension: 2) }
        }
        #expect(try db.collections().count == 1)
    }

    @Test func badSearchArguments() throws {
        let (_, _, c) = try setUp()
        #expect(throws: QuiverError.self) { try c.search(vector: [1, 2], k: 3) }
        #expect(throws: QuiverError.self) { try c.search(vector: [1, 2, .nan], k: 3) }
        #expect(throws: QuiverError.self) { try c.search(vector: [1, 2, 3], k: 0) }
    }
}

import Foundation
import Testing
import QuiverCore
import QuiverTestSupport
import QuiverStorage
@testable import Quiver

/// The lookup of catalog entries by collection number never serves an entry that differs from the
/// snapshot it reads: after an alter, an aborted change, a drop, and in a second `Tables` (another
/// open of the same LMDB) whose cache was filled before the change.
struct CatalogCacheTests {
    struct Abort: Error {}

    func lookup(_ db: Database, _ number: UInt32, tables: Tables? = nil) throws -> CollectionInfo {
        try db.env.read { txn in try Database.info(number: number, txn: txn, tables: tables ?? db.tables) }
    }

    @Test func lookupsFollowEveryChangeOfTheCatalog() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path + "/db")
        let c = try db.createCollection("c", dimension: 2)
        try c.upsert(Document(id: "a", metadata: ["x": .int(1)], vector: [1, 0]))
        let number = c.info.number
        let other = try Tables(db.env)
        #expect(try lookup(db, number).payloadIndexes == nil)
        #expect(try lookup(db, number, tables: other).payloadIndexes == nil)

        // An alter: both caches (this one's and the other open's) see the new entry.
        try c.createPayloadIndex("x", type: .integer)
        let spec = PayloadIndexSpec(field: "x", type: .integer)
        #expect(try lookup(db, number).payloadIndexes == [spec])
        #expect(try lookup(db, number, tables: other).payloadIndexes == [spec])
        // The write after it indexes its document under the new index (apply read the new entry).
        try c.upsert(Document(id: "b", metadata: ["x": .int(1)], vector: [0, 1]))
        #expect(try c.explain(vector: [1, 0], k: 2, options: SearchOptions(filter: .field("x", .equal(.int(1))))).plan.indexesUsed == ["x"])
        #expect(try c.ids(matching: .field("x", .equal(.int(1)))) == ["a", "b"])

        // A change inside a transaction that aborts: seen inside it, never after it.
        var changed = try lookup(db, number)
        changed.payloadIndexes = []
        let stored = try changed.stored()
        #expect(throws: Abort.self) {
            try db.env.write { txn in
                try txn.put(db.tables.catalog, Array("c".utf8), stored)
                #expect(try Database.info(number: number, txn: txn, tables: db.tables).payloadIndexes == [])
                throw Abort()
            }
        }
        #expect(try lookup(db, number).payloadIndexes == [spec])

        // A drop: the number is no longer found, in either cache.
        try db.dropCollection("c")
        for tables in [db.tables, other] {
            #expect { try lookup(db, number, tables: tables) } throws: { ($0 as? StorageError)?.kind == .corrupt }
        }
        #expect(try db.verify().ok)
    }
}

import Foundation
import Testing
import QuiverTestSupport
import QuiverCore
import QuiverStorage
@testable import Quiver

/// The `vectors` table in pieces (`VectorTable`): the count chosen per dimension, full pages, every
/// read path getting back exactly what was written, damage to one piece found and never served, and
/// collections of the one-value layout still read and written as before.
struct VectorTableTests {
    @Test func piecesPackFourKilobytePages() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        // Small vectors pack best whole; 384 floats (1,536 bytes) fit two to a page whole, five
        // halves in two; 768 floats, five quarters.
        for d in [1, 2, 8, 64, 128, 192] { #expect(VectorTable.pieces(forDimension: d) == 1, "dimension \(d)") }
        #expect(VectorTable.pieces(forDimension: 256) == 2)
        #expect(VectorTable.pieces(forDimension: 384) == 2)
        #expect(VectorTable.pieces(forDimension: 768) == 4)
        for d in [1, 3, 100, 255, 384, 385, 1_000, 1_536, 4_096, 65_536] {
            let p = VectorTable.pieces(forDimension: d)
            #expect((1...VectorTable.maxPieces).contains(p) && p <= d)
            let t = VectorTable(table: db.tables.vectors, collection: 1, name: "x", dimension: d, pieces: p)
            // The pieces tile 0..<d in order, none empty.
            var next = 0
            for i in 0..<p {
                let r = t.range(ofPiece: i)
                #expect(r.lowerBound == next && !r.isEmpty)
                next = r.upperBound
            }
            #expect(next == d)
        }
    }

    @Test func aPiecedCollectionReadsBackExactlyWhatWasWrittenOnEveryPath() throws {
        let dir = TemporaryDirectory()
        var db = try Database(path: dir.path)
        var c = try db.createCollection("v", dimension: 384, metric: .cosine,
                                        options: CollectionOptions(index: IndexSettings(segmentSize: 300)))
        #expect(c.info.vectorPieces == 2)
        var rng = SplitMix64(seed: 11)
        var expected: [String: [Float]] = [:]
        for batch in 0..<8 {
            let docs = (0..<100).map { i in Document(id: "d\(batch * 100 + i)", vector: randomVector(384, &rng)) }
            for d in docs { expected[d.id] = d.vector }
            try c.insert(docs)
        }
        // Replaced and deleted rows lose both pieces.
        let replacement = randomVector(384, &rng)
        try c.upsert([Document(id: "d3", vector: replacement)])
        expected["d3"] = replacement
        try c.delete(ids: ["d4", "d5"])
        expected["d4"] = nil
        expected["d5"] = nil
        let entries = try db.readTransaction { txn in
            var n = 0
            try txn.forEach(db.tables.vectors, prefix: Keys.collection(c.info.number)) { _, _ in n += 1; return true }
            return n
        }
        #expect(entries == 2 * expected.count)
        func checkAll() throws {
            for (id, v) in expected { #expect(try c.get(id)?.vector == v, "\(id)") }
            for (id, v) in expected.prefix(20) {
                let exact = try c.search(vector: v, k: 1, options: SearchOptions(includeVector: true, exact: true))
                #expect(exact.first?.id == id && exact.first?.vector == v)
                let fast = try c.search(vector: v, k: 1, options: SearchOptions(includeVector: true, efSearch: 200))
                #expect(fast.first?.id == id && fast.first?.vector == v)
            }
            #expect(try c.count() == expected.count)
            #expect(try db.verify().ok)
        }
        try checkAll()
        // Sealed segments are built from the pieces; a reopen rebuilds the mutable segment from them.
        try db.compact("v")
        try checkAll()
        db.close()
        db = try Database(path: dir.path)
        c = try db.collection("v")
        try checkAll()
        // The export reads every vector.
        let out = dir.path + "/out.jsonl"
        _ = try c.export(to: out, format: .jsonl)
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == expected.count)
    }

    @Test func piecesFillLMDBPages() throws {
        let dir = TemporaryDirectory(inMemory: true)
        let db = try Database(path: dir.path, options: DatabaseOptions(durability: .relaxed(milliseconds: 1_000)))
        let c = try db.createCollection("v", dimension: 384)
        var rng = SplitMix64(seed: 5)
        for batch in 0..<20 {
            try c.insert((0..<100).map { i in Document(id: "n\(batch * 100 + i)", vector: randomVector(384, &rng)) })
        }
        // 4,000 halves of 772 bytes (with the checksum), five to a 4 KiB page: 800 leaf pages, 1,638
        // bytes a vector (whole vectors, two to a page, took 2,048).
        let bytes = try db.env.read { txn in try txn.pageBytes(db.tables.vectors) }
        #expect(bytes <= 2_000 * 1_638 + 8 * 4_096, "vectors take \(bytes) bytes of pages")
    }

    @Test func damageToOnePieceIsFoundAndNeverServed() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("v", dimension: 384)
        var rng = SplitMix64(seed: 7)
        let docs = (0..<30).map { i in Document(id: "d\(i)", vector: randomVector(384, &rng)) }
        try c.insert(docs)
        func row(_ id: String) throws -> UInt64 {
            let key = Keys.document(c.info.number, id)
            return try db.readTransaction { txn in try DocumentRecord(stored: txn.get(db.tables.documents, key)!, key: key, collection: "v").row }
        }
        let table = c.vectorTable
        // A flipped byte in the second half of d3's vector.
        let d3 = try row("d3")
        let flipped = table.key(d3, piece: 1)
        try db.env.write { txn in
            var v = try #require(try txn.get(db.tables.vectors, flipped))
            v[100] ^= 0x10
            try txn.put(db.tables.vectors, flipped, v)
        }
        // d8's second half gone.
        let d8 = try row("d8")
        try db.env.write { txn in _ = try txn.delete(db.tables.vectors, table.key(d8, piece: 1)) }
        func expectCorrupt(_ what: String, _ body: () throws -> Void) {
            do {
                try body()
                Issue.record("\(what): no error")
            } catch {
                #expect("\(error)".contains("is damaged"), "\(what): \(error)")
            }
        }
        expectCorrupt("get d3") { _ = try c.get("d3") }
        expectCorrupt("get d8") { _ = try c.get("d8") }
        expectCorrupt("a result with its vector") { _ = try c.search(vector: docs[3].vector!, k: 1, options: SearchOptions(includeVector: true, exact: true)) }
        #expect(try c.get("d2")?.vector == docs[2].vector)
        let report = try db.verify()
        #expect(!report.ok)
        #expect(report.problems.contains { $0.contains("piece 1 of the vector of row \(d3)") && $0.contains("damaged") }, "\(report.problems)")
        #expect(report.problems.contains { $0.contains("document 'd8'") && $0.contains("piece 1") && $0.contains("missing") }, "\(report.problems)")
        // A stray key of another shape is reported, not read as a row.
        try db.env.write { txn in
            let stray = Keys.row(c.info.number, 999)
            try txn.put(db.tables.vectors, stray, StoredValue.seal([0, 0, 0, 0], key: stray))
        }
        #expect(try db.verify().problems.contains { $0.contains("not of the collection's layout") })
        // Reopened, the mutable segment is rebuilt from the pieces without the damaged rows.
        db.close()
        let again = try Database(path: dir.path)
        let found = try again.collection("v").search(vector: docs[3].vector!, k: 30, options: SearchOptions(exact: true)).map(\.id)
        #expect(found.count == 28 && !found.contains("d3") && !found.contains("d8"), "\(found)")
    }

    @Test func theCatalogRefusesAnImpossiblePieceCount() throws {
        var info = CollectionInfo(name: "x", dimension: 8, metric: .l2, encoder: nil, textCompressionThreshold: 512,
                                  createdAt: Date(timeIntervalSince1970: 0), number: 1)
        for bad in [0, -1, 9, VectorTable.maxPieces + 1] {
            info.vectorPieces = bad
            #expect(throws: CodecError.self, "\(bad)") { _ = try CollectionInfo(encoded: try info.encoded()) }
        }
        info.vectorPieces = 8
        #expect(try CollectionInfo(encoded: try info.encoded()).pieces == 8)
    }

    @Test func aCollectionOfTheOneValueLayoutStillReadsAndWrites() throws {
        let dir = TemporaryDirectory()
        var db = try Database(path: dir.path)
        var c = try db.createCollection("v", dimension: 384)
        // As a collection created before pieces: no vectorPieces in its catalog entry.
        var info = c.info
        info.vectorPieces = nil
        try db.env.write { txn in try txn.put(db.tables.catalog, Array("v".utf8), try info.stored()) }
        db.close()
        db = try Database(path: dir.path)
        c = try db.collection("v")
        #expect(c.info.pieces == 1)
        var rng = SplitMix64(seed: 3)
        let docs = (0..<60).map { i in Document(id: "d\(i)", vector: randomVector(384, &rng)) }
        try c.insert(docs)
        let key = Keys.row(c.info.number, 1)
        #expect(try db.readTransaction { txn in try txn.get(db.tables.vectors, key)?.count } == 384 * 4 + 4)
        try db.compact("v")
        for d in docs.prefix(10) {
            #expect(try c.get(d.id)?.vector == d.vector)
            #expect(try c.search(vector: d.vector!, k: 1, options: SearchOptions(exact: true)).first?.id == d.id)
        }
        #expect(try db.verify().ok)
    }
}

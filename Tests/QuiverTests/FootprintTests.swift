import Foundation
import Testing
import QuiverTestSupport
import QuiverCore
import QuiverStorage
@testable import Quiver

/// Bytes on disk (issue 15, item 9): LMDB's pages for vectors stay full, bulk work leaves no log,
/// and `stats` reports the sum and its share per vector.
struct FootprintTests {
    /// The bytes of LMDB pages that hold `table`.
    func pageBytes(_ db: Database, _ table: KeyPath<Tables, LMDBTable>) throws -> Int {
        try db.env.read { txn in try txn.pageBytes(db.tables[keyPath: table]) }
    }

    @Test func vectorPagesStayFullAndOlderCollectionsStillWrite() throws {
        let dir = TemporaryDirectory(inMemory: true)
        let db = try Database(path: dir.path, options: DatabaseOptions(durability: .relaxed(milliseconds: 1_000)))
        let older = try db.createCollection("older", dimension: 384)
        let newer = try db.createCollection("newer", dimension: 384)
        var rng = SplitMix64(seed: 9)
        var expected: [String: [Float]] = [:]
        for batch in 0..<20 {
            let docs = (0..<50).map { i in Document(id: "n\(batch * 50 + i)", vector: randomVector(384, &rng)) }
            for d in docs { expected[d.id] = d.vector }
            try newer.insert(docs)
        }
        // 1,000 vectors of 1,540 bytes (with the checksum): two fit a 4 KiB leaf page, so full
        // pages take 2 MB; pages split in halves held one vector each (4 MB).
        let bytes = try pageBytes(db, \.vectors)
        #expect(bytes <= 1_000 * 2_048 + 16 * 4_096, "vectors take \(bytes) bytes of pages")
        // Rows of the older collection sort before the newer one's: they are not the table's last
        // and go in without MDB_APPEND, beside the appended ones, and both read back.
        var olderExpected: [String: [Float]] = [:]
        for batch in 0..<4 {
            let docs = (0..<25).map { i in Document(id: "o\(batch * 25 + i)", vector: randomVector(384, &rng)) }
            for d in docs { olderExpected[d.id] = d.vector }
            try older.insert(docs)
            try newer.insert([Document(id: "late\(batch)", vector: randomVector(384, &rng))])
        }
        for (id, v) in olderExpected { #expect(try older.get(id)?.vector == v) }
        for (id, v) in expected.prefix(100) { #expect(try newer.get(id)?.vector == v) }
        #expect(try older.count() == 100)
        #expect(try newer.count() == 1_004)
        #expect(try db.verify().ok)
    }

    @Test func importAndCompactCheckpointTheLog() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("v", dimension: 8)
        var rng = SplitMix64(seed: 3)
        var fvecs = Data()
        for _ in 0..<600 {
            withUnsafeBytes(of: Int32(8).littleEndian) { fvecs.append(contentsOf: $0) }
            for f in randomVector(8, &rng) { withUnsafeBytes(of: f.bitPattern.littleEndian) { fvecs.append(contentsOf: $0) } }
        }
        let file = dir.path + "/in.fvecs"
        try fvecs.write(to: URL(fileURLWithPath: file))
        var options = ImportOptions()
        options.batchSize = 100
        _ = try c.importFile(file, options: options)
        // Six batches were logged; the import's closing checkpoint leaves a fresh, empty log file.
        var s = try db.stats()
        #expect(s.walFiles == 1)
        #expect(s.walBytes <= WALFormat.fileHeaderSize, "the log holds \(s.walBytes) bytes after the import")
        try c.insert((0..<50).map { Document(id: "x\($0)", vector: randomVector(8, &rng)) })
        #expect(try db.stats().walBytes > WALFormat.fileHeaderSize)
        try db.compact("v")
        s = try db.stats()
        #expect(s.walBytes <= WALFormat.fileHeaderSize, "the log holds \(s.walBytes) bytes after compact")
        #expect(s.diskBytes == s.lmdbFileBytes + s.walBytes + s.segmentBytes)
        #expect(s.diskBytesPerVector == Double(s.diskBytes) / 650)
        // Nothing was lost by dropping the log: a reopen finds every document.
        db.close()
        let again = try Database(path: dir.path)
        #expect(try again.collection("v").count() == 650)
        #expect(try again.stats().collections.first?.documents == 650)
    }

    @Test func checkpointAfterBulkWorkCanBeTurnedOff() throws {
        let dir = TemporaryDirectory()
        var options = DatabaseOptions()
        options.checkpointAfterBulkWork = false
        let db = try Database(path: dir.path, options: options)
        let c = try db.createCollection("v", dimension: 4)
        try c.insert((0..<20).map { Document(id: "d\($0)", vector: [Float($0), 1, 2, 3]) })
        let before = try db.stats().walBytes
        try db.compact("v")
        #expect(try db.stats().walBytes >= before)
        try db.checkpoint()
        #expect(try db.stats().walBytes <= WALFormat.fileHeaderSize)
    }

    @Test func anEmptyDatabaseHasNoBytesPerVector() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        try db.createCollection("v", dimension: 3)
        let s = try db.stats()
        #expect(s.diskBytesPerVector == nil)
        #expect(s.diskBytes > 0)
    }
}

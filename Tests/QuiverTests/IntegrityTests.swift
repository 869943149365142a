import Foundation
import Testing
import QuiverCore
import QuiverTestSupport
import QuiverStorage
@testable import Quiver

/// Format 2's checksummed values: the upgrade of the format-1 fixture made by the release code, and
/// damage flipped into stored values through LMDB directly (reported by verify, an error where read).
struct IntegrityTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/format1").path

    /// A copy of the fixture's database in a temporary directory.
    static func fixtureCopy(_ dir: TemporaryDirectory) throws -> String {
        let path = dir.path + "/db"
        try FileManager.default.copyItem(atPath: fixture + "/db", toPath: path)
        return path
    }

    static func format(_ db: Database) throws -> UInt32? {
        try db.readTransaction { txn in try Meta.format(txn: txn, meta: db.tables.meta) }
    }

    @Test func formatOneFixtureUpgradesAndAnswersAsTheReleaseDid() throws {
        let dir = TemporaryDirectory()
        let path = try Self.fixtureCopy(dir)
        // Read-only: refused, with what to do.
        var options = DatabaseOptions()
        options.readOnly = true
        do {
            _ = try Database(path: path, options: options)
            Issue.record("a read-only open of a format-1 database succeeded")
        } catch let e as QuiverError {
            #expect(e.description.contains("format version 1") && e.description.contains("open it for writing once"), "\(e)")
        }
        // Writable: upgraded in one transaction, then the three logged writes replayed onto format 2.
        let started = Date()
        var db = try Database(path: path)
        let seconds = Date().timeIntervalSince(started)
        print("format upgrade: the format-1 fixture (\(db.openReport.upgradedValues) values) opened and upgraded in \(String(format: "%.3f", seconds)) s")
        #expect(db.openReport.upgradedFromFormat == 1)
        #expect(db.openReport.upgradedValues > 3_000)
        #expect(db.openReport.replayedRecords == 3)
        #expect(try Self.format(db) == 2)
        // Every document as the release exported it, byte for byte.
        for name in ["docs", "pq", "notes"] {
            let out = dir.path + "/\(name).jsonl"
            try db.collection(name).export(to: out, format: .jsonl)
            let expected = try String(contentsOfFile: Self.fixture + "/expected/\(name).jsonl", encoding: .utf8)
            let actual = try String(contentsOfFile: out, encoding: .utf8)
            #expect(actual == expected, "export of '\(name)' differs from the format-1 release's")
            // get agrees with the export (compared as export lines: JSON reads 1.0 as an integer).
            let c = try db.collection(name)
            for line in expected.split(separator: "\n").prefix(40) {
                let doc = try JSONDecoder().decode(Document.self, from: Data(line.utf8))
                let got = try #require(try c.get(doc.id))
                #expect(String(decoding: JSONLine.encode(got), as: UTF8.self) == line + "\n")
            }
        }
        // Every search answer as the release gave it.
        let searches = try JSONDecoder().decode([Format1FixtureGenerator.Search].self,
                                                from: Data(contentsOf: URL(fileURLWithPath: Self.fixture + "/expected/searches.json")))
        #expect(searches.count == 24)
        for s in searches {
            let options = SearchOptions(exact: s.exact, efSearch: 1_000, nprobe: 1 << 20, rerank: 1 << 20)
            let r = try db.collection(s.collection).search(vector: s.vector, k: s.k, options: options)
            #expect(r.map(\.id) == s.ids, "\(s.collection) exact \(s.exact)")
            #expect(zip(r.map(\.score), s.scores).allSatisfy { abs($0 - $1) <= 1e-5 }, "\(s.collection) exact \(s.exact)")
        }
        let report = try db.verify()
        #expect(report.ok, "\(report.problems)")
        #expect(report.damagedValues == 0 && report.storedValues > 3_000 && report.segmentVectorsCompared == 143 + 1_490)
        #expect(try db.verify(quick: true).ok)
        // A write after the upgrade, and a reopen: no second upgrade; read-only opens work now.
        try db.collection("docs").upsert(Document(id: "after", text: "after the upgrade", metadata: ["tag": "red"], vector: [1, 2, 3, 4, 5, 6, 7, 8]))
        db.close()
        db = try Database(path: path)
        #expect(db.openReport.upgradedFromFormat == nil && db.openReport.upgradedValues == 0 && db.openReport.replayedRecords == 0)
        #expect(try db.verify().ok)
        db.close()
        let reader = try Database(path: path, options: options)
        #expect(try reader.collection("docs").get("after")?.text == "after the upgrade")
        #expect(try reader.verify().ok)
    }

    /// The stored bytes are those docs/file-formats.md gives: payload, then the CRC-32C of key ++
    /// payload, little-endian; `meta` `format` is 2.
    @Test func storedBytesAreTheDocumentedLayout() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path + "/db")
        let c = try db.createCollection("c", dimension: 2, metric: .l2)
        try c.upsert(Document(id: "a", vector: [1.5, -2]))
        #expect(try Self.format(db) == 2)
        let n = c.info.number
        try db.readTransaction { txn in
            // vectors: C ++ R -> 2 x f32 LE ++ crc
            let key = Keys.row(n, 1)
            let value = try #require(try txn.get(db.tables.vectors, key))
            let payload: [UInt8] = [0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x00, 0xC0]
            let crc = CRC32C.checksum(key + payload)
            #expect(value == payload + [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24)])
            // rows: C ++ R -> id ++ crc; counters: C -> live, next row ++ crc
            let row = try #require(try txn.get(db.tables.rows, key))
            #expect(row == StoredValue.seal(Array("a".utf8), key: key) && row.count == 5)
            let counters = try #require(try txn.get(db.tables.counters, Keys.collection(n)))
            var w = ByteWriter()
            w.write(UInt64(1))
            w.write(UInt64(2))
            #expect(counters == StoredValue.seal(w.bytes, key: Keys.collection(n)))
            #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        }
    }

    /// A small database with every kind of value: text (BM25), payload indexes, sealed HNSW (cosine)
    /// and IVF-PQ segments, an import checkpoint.
    static func makeDatabase(_ dir: TemporaryDirectory) throws -> Database {
        let db = try Database(path: dir.path + "/db")
        var rng = SplitMix64(seed: 12)
        let h = try db.createCollection("h", dimension: 8, metric: .cosine, options: CollectionOptions(index: IndexSettings(segmentSize: 40)))
        try h.createPayloadIndex("tag", type: .keyword)
        try h.insert((0..<120).map { Document(id: "h\($0)", text: "word\($0 % 7) river", metadata: ["tag": .string("t\($0 % 3)")], vector: randomVector(8, &rng)) })
        try db.compact("h")
        let p = try db.createCollection("p", dimension: 8, metric: .l2,
                                        options: CollectionOptions(index: IndexSettings(kind: .ivfpq, segmentSize: 400, pqBytes: 2), fullText: nil))
        try p.insert((0..<1_500).map { Document(id: "p\($0)", vector: randomVector(8, &rng)) })
        try db.compact("p")
        let input = dir.path + "/in.jsonl"
        try Data("{\"id\":\"i1\",\"vector\":[1,0,0,0,0,0,0,0]}\n".utf8).write(to: URL(fileURLWithPath: input))
        _ = try h.importFile(input)
        // A query adapter (the `adapters` table), stored through its log record.
        let adapter = StoredAdapter(name: "a", adapter: QueryAdapter.identity(.lowRank(2), dimension: 8), encoderIdentifier: "none",
                                    encoderWeights: "none", report: TuneReport.untrained("test", adapter: "a", kind: "lowrank:2"))
        try db.write { _ in (.tuning(number: h.info.number, change: .put(name: "a", payload: try adapter.payload()), settings: nil), ()) }
        db.waitForMaintenance()
        return db
    }

    /// XORs byte `offset` of the value under `key` in `table` with `mask`, through LMDB, keeping the old
    /// trailer (`offset` may point into the trailer).
    static func flip(_ db: Database, _ table: LMDBTable, _ key: [UInt8], at offset: Int, mask: UInt8 = 0x10) throws {
        try db.env.write { txn in
            var v = try #require(try txn.get(table, key))
            v[offset] ^= mask
            try txn.put(table, key, v)
        }
    }

    @Test func aFlippedByteInAnyStoredVectorOrDocumentIsFoundAndNeverServed() throws {
        let dir = TemporaryDirectory()
        let db = try Self.makeDatabase(dir)
        #expect(try db.verify().ok)
        let h = try db.collection("h")
        let n = h.info.number
        let docKey = Keys.document(n, "h5")
        let row = try db.readTransaction { txn in try DocumentRecord(stored: txn.get(db.tables.documents, docKey)!, key: docKey, collection: "h").row }
        let rowKey = Keys.row(n, row)
        let vectorLength = try db.readTransaction { txn in try txn.get(db.tables.vectors, rowKey)!.count }
        let documentLength = try db.readTransaction { txn in try txn.get(db.tables.documents, docKey)!.count }
        #expect(vectorLength == 8 * 4 + 4)
        func expectDamageError(_ what: String, _ body: () throws -> Void) {
            do {
                try body()
                Issue.record("\(what): a damaged value was served")
            } catch {
                let m = "\(error)"
                #expect(m.contains("collection 'h'") && m.contains("damaged") && m.contains("quiver verify"), "\(what): \(m)")
            }
        }
        // Every byte of the vector value (payload and trailer).
        for offset in 0..<vectorLength {
            try Self.flip(db, db.tables.vectors, rowKey, at: offset)
            let report = try db.verify()
            #expect(report.damagedValues == 1 && report.problems.contains("'h': the stored vector of row \(row) is damaged (its checksum does not match)"),
                    "vector byte \(offset): \(report.problems)")
            #expect(try db.verify(quick: true).problems == report.problems)
            expectDamageError("get") { _ = try h.get("h5") }
            expectDamageError("export") { try h.export(to: dir.path + "/x\(offset).jsonl", format: .jsonl) }
            // The exact search scores the segment's own copy of the vector; the damaged value is
            // refused where it is read: the result's vector.
            expectDamageError("vector of an exact result") {
                _ = try h.search(vector: [1, 0, 0, 0, 0, 0, 0, 0], k: 200, options: SearchOptions(includeVector: true, exact: true))
            }
            expectDamageError("vector of a result") {
                let probe = try h.search(vector: [1, 0, 0, 0, 0, 0, 0, 0], k: 200, options: SearchOptions(includeVector: true, efSearch: 500))
                #expect(probe.contains { $0.id == "h5" })
            }
            try Self.flip(db, db.tables.vectors, rowKey, at: offset)
        }
        // Every byte of the document value.
        for offset in 0..<documentLength {
            try Self.flip(db, db.tables.documents, docKey, at: offset)
            let report = try db.verify()
            #expect(report.damagedValues == 1 && report.problems == ["'h': the stored document 'h5' is damaged (its checksum does not match)"],
                    "document byte \(offset): \(report.problems)")
            expectDamageError("get") { _ = try h.get("h5") }
            expectDamageError("export") { try h.export(to: dir.path + "/y\(offset).jsonl", format: .jsonl) }
            expectDamageError("filter scan") { _ = try h.ids(matching: try Filter(text: "other = 1"), allowUnknownFields: true) }
            expectDamageError("search result") { _ = try h.search(vector: try #require(try db.readTransaction { txn in
                try txn.withValue(db.tables.vectors, rowKey) { try VectorCodec.decode($0!, key: rowKey, collection: "h", dimension: 8) } }), k: 1) }
            try Self.flip(db, db.tables.documents, docKey, at: offset)
        }
        // A write that would read a damaged value is refused before it is logged (a logged record
        // that cannot apply would fail again at every open): replacing or deleting the damaged
        // document, or a text whose term's stored frequency is damaged. Other writes go on.
        try Self.flip(db, db.tables.documents, docKey, at: 5)
        let logged = try db.appliedSequence()
        expectDamageError("upsert over it") { try h.upsert(Document(id: "h5", vector: [1, 1, 1, 1, 1, 1, 1, 1])) }
        expectDamageError("delete") { _ = try h.delete(ids: ["h4", "h5"]) }
        #expect(try db.appliedSequence() == logged)
        try h.upsert(Document(id: "fresh", text: "fresh words", vector: [1, 1, 1, 1, 1, 1, 1, 1]))
        #expect(try db.appliedSequence() == logged + 1)
        try Self.flip(db, db.tables.documents, docKey, at: 5)
        let termKey = Keys.collection(n) + Array("river".utf8)
        try Self.flip(db, db.tables.terms, termKey, at: 0)
        do {
            try h.upsert(Document(id: "another", text: "a river", vector: [1, 1, 1, 1, 1, 1, 1, 1]))
            Issue.record("a write read a damaged term frequency")
        } catch {
            #expect("\(error)".contains("BM25 document frequency of term 'river' is damaged"), "\(error)")
        }
        #expect(try db.appliedSequence() == logged + 1)
        try Self.flip(db, db.tables.terms, termKey, at: 0)
        #expect(try h.delete(ids: ["fresh"]) == 1)
        #expect(try db.verify().ok)
        // A flipped key byte: the value is now under another key, which its trailer does not match.
        try db.env.write { txn in
            let v = try txn.get(db.tables.documents, docKey)!
            _ = try txn.delete(db.tables.documents, docKey)
            try txn.put(db.tables.documents, Keys.document(n, "h6x"), v)
        }
        var report = try db.verify()
        #expect(report.problems.contains("'h': the stored document 'h6x' is damaged (its checksum does not match)"), "\(report.problems)")
        expectDamageError("get under the wrong key") { _ = try h.get("h6x") }
        expectDamageError("ids") { _ = try h.ids() }
        try db.env.write { txn in
            let v = try txn.get(db.tables.documents, Keys.document(n, "h6x"))!
            _ = try txn.delete(db.tables.documents, Keys.document(n, "h6x"))
            try txn.put(db.tables.documents, docKey, v)
        }
        report = try db.verify()
        #expect(report.ok, "\(report.problems)")
        // The rest of the database is served while one value is damaged.
        try Self.flip(db, db.tables.vectors, rowKey, at: 3)
        #expect(try h.get("h7") != nil)
        #expect(try db.collection("p").search(vector: [0, 0, 0, 0, 0, 0, 0, 0], k: 5, options: SearchOptions(exact: true)).count == 5)
    }

    /// A damaged vector of the mutable segment (rebuilt from LMDB at open) does not stop the open:
    /// its row is left out of the index (so no search returns it, the exact one included, which
    /// scores the segments' vectors), get refuses it, verify names it once.
    @Test func aDamagedUnsealedVectorDoesNotStopTheOpen() throws {
        let dir = TemporaryDirectory()
        var db = try Self.makeDatabase(dir)
        let h = try db.collection("h")
        let docKey = Keys.document(h.info.number, "i1")
        let row = try db.readTransaction { txn in try DocumentRecord(stored: txn.get(db.tables.documents, docKey)!, key: docKey, collection: "h").row }
        try Self.flip(db, db.tables.vectors, Keys.row(h.info.number, row), at: 1)
        db.close()
        for readOnly in [false, true] {
            var options = DatabaseOptions()
            options.readOnly = readOnly
            db = try Database(path: dir.path + "/db", options: options)
            let c = try db.collection("h")
            #expect(throws: QuiverError.self) { _ = try c.get("i1") }
            let exact = try c.search(vector: [1, 0, 0, 0, 0, 0, 0, 0], k: 200, options: SearchOptions(exact: true))
            #expect(exact.count == 120 && !exact.contains { $0.id == "i1" })
            let found = try c.search(vector: [1, 0, 0, 0, 0, 0, 0, 0], k: 200, options: SearchOptions(efSearch: 500))
            #expect(found.count == 120 && !found.contains { $0.id == "i1" })
            #expect(try c.get("h1") != nil)
            let report = try db.verify()
            #expect(report.problems == ["'h': the stored vector of row \(row) is damaged (its checksum does not match)"], "\(report.problems)")
            db.close()
        }
        // A seal reads the damaged vector: it fails and says why; the rows it would have sealed stay
        // searchable in the mutable segment, writes and searches go on.
        db = try Database(path: dir.path + "/db")
        let c = try db.collection("h")
        var rng = SplitMix64(seed: 77)
        try c.insert((0..<45).map { Document(id: "late\($0)", vector: randomVector(8, &rng)) })
        db.waitForMaintenance()
        #expect(try db.stats().collections.first { $0.name == "h" }?.index?.lastMaintenanceError?.contains("the stored vector of row \(row) is damaged") == true)
        let found = try c.search(vector: [1, 0, 0, 0, 0, 0, 0, 0], k: 500, options: SearchOptions(efSearch: 1_000))
        #expect(found.count == 165 && found.contains { $0.id == "late44" })
        let report = try db.verify()
        #expect(report.problems == ["'h': the stored vector of row \(row) is damaged (its checksum does not match)"], "\(report.problems)")
    }

    /// A damaged catalog entry does not stop the open: that collection's uses report the damage,
    /// the others work, verify names it.
    @Test func aDamagedCatalogEntryDoesNotStopTheOpen() throws {
        let dir = TemporaryDirectory()
        var db = try Self.makeDatabase(dir)
        try Self.flip(db, db.tables.catalog, Array("h".utf8), at: 3)
        db.close()
        for readOnly in [false, true] {
            var options = DatabaseOptions()
            options.readOnly = readOnly
            db = try Database(path: dir.path + "/db", options: options)
            do {
                _ = try db.collection("h").get("h1")
                Issue.record("a damaged catalog entry was used")
            } catch {
                #expect("\(error)".contains("collection 'h': the stored catalog entry is damaged"), "\(error)")
            }
            #expect(try db.collection("p").search(vector: [0, 0, 0, 0, 0, 0, 0, 0], k: 3).count == 3)
            if !readOnly { _ = try db.collection("p").delete(ids: ["p1"]) }
            let report = try db.verify()
            #expect(report.problems == ["'h': the stored catalog entry is damaged (its checksum does not match)"], "\(report.problems)")
            db.close()
        }
        // Its segment files were not taken for orphans: with the entry mended, everything is back.
        #expect(FileSystem.isDirectory(dir.path + "/db/segments/1"))
        db = try Database(path: dir.path + "/db")
        try Self.flip(db, db.tables.catalog, Array("h".utf8), at: 3)
        db.close()
        db = try Database(path: dir.path + "/db")
        #expect(db.openReport.orphanSegmentFiles == 0)
        #expect(try db.collection("h").get("h1") != nil)
        #expect(try db.verify().ok)
    }

    @Test func everyCheckedTableReportsAFlippedByte() throws {
        let dir = TemporaryDirectory()
        let db = try Self.makeDatabase(dir)
        for table in StoredValue.checkedTables(db.tables) {
            let key = try db.readTransaction { txn -> [UInt8] in
                var first: [UInt8]?
                try txn.forEach(table) { k, _ in first = Array(k); return false }
                return try #require(first, "table \(table.name) is empty")
            }
            let length = try db.readTransaction { txn in try txn.get(table, key)!.count }
            for offset in Set([0, length / 2, length - 1]) {
                try Self.flip(db, table, key, at: offset, mask: 0x01)
                if table == db.tables.catalog {
                    // The catalog entry names the collection: reading the catalog fails, and says so.
                    #expect(throws: QuiverError.self) { try db.collections() }
                }
                let report = try db.verify()
                #expect(report.damagedValues == 1 && report.problems.contains { $0.contains("is damaged") },
                        "\(table.name) byte \(offset): \(report.problems)")
                try Self.flip(db, table, key, at: offset, mask: 0x01)
            }
        }
        #expect(try db.verify().ok)
        // Import checkpoint: a resume reads it, and refuses a damaged one.
        let input = dir.path + "/in.jsonl"
        let importKey = Keys.collection(1) + Array(URL(fileURLWithPath: input).resolvingSymlinksInPath().standardizedFileURL.path.utf8)
        try Self.flip(db, db.tables.imports, importKey, at: 2)
        var options = ImportOptions()
        options.resume = true
        #expect(throws: QuiverError.self) { _ = try db.collection("h").importFile(input, options: options) }
        try Self.flip(db, db.tables.imports, importKey, at: 2)
        #expect(try db.collection("h").importFile(input, options: options).resumedAfterRows == 1)
    }

    /// A segment that disagrees with LMDB (a vector rewritten with a valid checksum, as a bug or a
    /// stale segment would leave it): verify names the document, for HNSW and IVF-PQ.
    @Test func segmentsAreComparedWithLMDB() throws {
        let dir = TemporaryDirectory()
        let db = try Self.makeDatabase(dir)
        let report = try db.verify()
        #expect(report.ok && report.segmentVectorsCompared == 120 + 1_500, "\(report)")
        let quick = try db.verify(quick: true)
        #expect(quick.ok && quick.quick && quick.segmentVectorsCompared == 120 + 750, "\(quick)")
        for (name, id) in [("h", "h9"), ("p", "p33")] {
            let c = try db.collection(name)
            let docKey = Keys.document(c.info.number, id)
            let row = try db.readTransaction { txn in try DocumentRecord(stored: txn.get(db.tables.documents, docKey)!, key: docKey, collection: name).row }
            let rowKey = Keys.row(c.info.number, row)
            let original = try #require(try c.get(id)?.vector)
            let moved = original.enumerated().map { $0.offset % 2 == 0 ? -$0.element * 3 + 1 : $0.element + 2 }
            try db.env.write { txn in try txn.put(db.tables.vectors, rowKey, VectorCodec.stored(moved, key: rowKey)) }
            let r = try db.verify()
            let expected = name == "h" ? "holds a vector of document '\(id)' (row \(row)) that differs from the stored one"
                                       : "the code of document '\(id)' (row \(row)) does not encode its stored vector"
            #expect(r.problems.count == 1 && r.problems[0].contains(expected), "\(r.problems)")
            if name == "h" { #expect(try db.verify(quick: true).problems == r.problems) }
            try db.env.write { txn in try txn.put(db.tables.vectors, rowKey, VectorCodec.stored(original, key: rowKey)) }
        }
        #expect(try db.verify().ok)
        // Quick samples: a segment larger than the sample compares about 1,000 entries.
        let big = try db.createCollection("big", dimension: 4, options: CollectionOptions(index: IndexSettings(segmentSize: 3_000), fullText: nil))
        var rng = SplitMix64(seed: 5)
        try big.insert((0..<3_000).map { Document(id: "b\($0)", vector: randomVector(4, &rng)) })
        try db.compact("big")
        let full = try db.verify(), sampled = try db.verify(quick: true)
        #expect(full.ok && sampled.ok)
        #expect(full.segmentVectorsCompared == 120 + 1_500 + 3_000 && sampled.segmentVectorsCompared == 120 + 750 + 1_000)
    }

    /// What the trailers cost on the read path: a pass over 20,000 stored 128-d vectors that copies
    /// them out, with and without the checksum check (figures printed; docs/architecture.md).
    @Test func checksumCost() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path + "/db", options: DatabaseOptions(durability: .relaxed(milliseconds: 100)))
        let c = try db.createCollection("v", dimension: 128, metric: .l2, options: CollectionOptions(index: IndexSettings(kind: .flat), fullText: nil))
        var rng = SplitMix64(seed: 9)
        for b in 0..<4 { try c.insert((0..<5_000).map { Document(id: "\(b)-\($0)", vector: randomVector(128, &rng)) }) }
        var out = [Float](repeating: 0, count: 128)
        func pass(checked: Bool) throws -> Double {
            let t = Date()
            try db.readTransaction { txn in
                try out.withUnsafeMutableBufferPointer { o in
                    try txn.forEach(db.tables.vectors, prefix: Keys.collection(c.info.number)) { k, v in
                        if checked {
                            try VectorCodec.decode(v, key: k, collection: "v", dimension: 128, into: o.baseAddress!)
                        } else {
                            UnsafeMutableRawPointer(o.baseAddress!).copyMemory(from: v.baseAddress!, byteCount: 512)
                        }
                        return true
                    }
                }
            }
            return Date().timeIntervalSince(t)
        }
        var raw = Double.infinity, checked = Double.infinity
        for _ in 0..<3 {
            raw = min(raw, try pass(checked: false))
            checked = min(checked, try pass(checked: true))
        }
        let t0 = Date()
        _ = try c.search(vector: randomVector(128, &rng), k: 10, options: SearchOptions(exact: true))
        let exact = Date().timeIntervalSince(t0)
        let t1 = Date()
        #expect(try db.verify().ok)
        let verify = Date().timeIntervalSince(t1)
        print(String(format: "checksum cost: 20,000 x 128-d vectors read %.1f ms without the check, %.1f ms with it (%.2f us per vector more); exact search %.1f ms; verify %.1f ms",
                     raw * 1_000, checked * 1_000, (checked - raw) / 20_000 * 1e6, exact * 1_000, verify * 1_000))
        #expect(checked < raw + 0.5)
    }

    /// The CLI on the format-1 fixture: read commands refuse it and say what to do; a writing
    /// command upgrades it; then reads work.
    @Test func cliOnAFormatOneDatabase() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: try Self.fixtureCopy(dir))
        let refused = try cli.run(["get", "docs", "doc-0"])
        #expect(refused.status == 1 && refused.stderr.contains("format version 1") && refused.stderr.contains("quiver compact"), "\(refused.stderr)")
        #expect(try cli.run(["compact"]).status == 0)
        let get = try cli.run(["get", "docs", "doc-0", "--json"])
        #expect(get.status == 0 && get.stdout.contains("river quiet paper"), "\(get.stdout)\(get.stderr)")
        let verify = try cli.run(["verify", "--quick"])
        #expect(verify.status == 0 && verify.stdout.contains("OK"), "\(verify.stdout)")
    }

    @Test func cliVerifyQuick() throws {
        let dir = TemporaryDirectory()
        let db = try Self.makeDatabase(dir)
        db.close()
        let cli = CLI(db: dir.path + "/db")
        let quick = try cli.run(["verify", "--quick", "--json"])
        #expect(quick.status == 0, "\(quick.stderr)")
        let report = try JSONDecoder().decode(VerifyReport.self, from: Data(quick.stdout.utf8))
        #expect(report.ok && report.quick && report.segmentVectorsCompared == 120 + 750)
        #expect(try cli.run(["verify", "--help"]).stdout.contains("--quick"))
    }
}

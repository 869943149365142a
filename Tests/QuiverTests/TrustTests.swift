import Foundation
import Testing
import QuiverCore
@testable import QuiverIndex
import QuiverStorage
import QuiverTestSupport
@testable import Quiver

/// Issue 12: no input bricks a database (limits are checked before a record is logged, and a logged
/// record that cannot apply is set aside by `repair`), and damaged derived data heals.
@Suite(.serialized)
struct TrustTests {
    static func lastSequence(_ db: Database) throws -> UInt64 { try db.wal!.lastAppendedSequence }

    static func verifyClean(_ db: Database, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let report = try db.verify()
        #expect(report.problems == [], sourceLocation: sourceLocation)
    }

    // MARK: - Limits

    /// The issue's reproduction, in the library: a 600-byte keyword value under a keyword index.
    @Test func longKeywordValueAppliesAndIsFound() throws {
        let dir = TemporaryDirectory()
        let long = String(repeating: "x", count: 600)
        do {
            let db = try Database(path: dir.path + "/db")
            let c = try db.createCollection("c", dimension: 2)
            try c.createPayloadIndex("tag", type: .keyword)
            try c.upsert(Document(id: "a", metadata: ["tag": .string(long)], vector: [1, 0]))
            try c.upsert(Document(id: "b", vector: [0, 1]))
            // Same 256-byte prefix, another value: not a match.
            try c.upsert(Document(id: "c", metadata: ["tag": .string(long + "y")], vector: [1, 1]))
            #expect(try c.ids(matching: .field("tag", .equal(.string(long)))) == ["a"])
            #expect(try c.ids(matching: .field("tag", .inList([.string(long + "y"), .string("zz")]))) == ["c"])
            #expect(try c.ids(matching: .field("tag", .greater(.string(long)))) == ["c"])
            #expect(try c.ids(matching: .field("tag", .greaterOrEqual(.string(long)))) == ["a", "c"])
            #expect(try c.ids(matching: .field("tag", .less(.string(long + "y")))) == ["a"])
            #expect(try c.ids(matching: .field("tag", .less(.string("y")))) == ["a", "c"])
            let hits = try c.search(vector: [1, 0], k: 3, options: SearchOptions(filter: .field("tag", .equal(.string(long)))))
            #expect(hits.map(\.id) == ["a"])
            try Self.verifyClean(db)
        }
        let db = try Database(path: dir.path + "/db")
        try Self.verifyClean(db)
        #expect(try db.collection("c").ids(matching: .field("tag", .equal(.string(long)))) == ["a"])
    }

    /// The value stored first and the index declared after; a 600-byte field name with an index;
    /// values with NULs around the 256-byte cut.
    @Test func longValuesStoredBeforeTheIndexAndLongFieldNames() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path + "/db")
        let c = try db.createCollection("c", dimension: 2)
        let field = String(repeating: "f", count: 600)
        let nulAtCut = String(repeating: "n", count: 255) + "\u{0}" + String(repeating: "m", count: 40)
        let values = [String(repeating: "v", count: 700), nulAtCut, nulAtCut + "2", String(repeating: "é", count: 300)]
        for (i, v) in values.enumerated() {
            try c.upsert(Document(id: "d\(i)", metadata: ["tag": .string(v), field: .int(Int64(i))], vector: [1, Float(i)]))
        }
        try c.createPayloadIndex("tag", type: .keyword)
        try c.createPayloadIndex(field, type: .integer)
        for (i, v) in values.enumerated() {
            #expect(try c.ids(matching: .field("tag", .equal(.string(v)))) == ["d\(i)"])
            #expect(try c.ids(matching: .field(field, .equal(.int(Int64(i))))) == ["d\(i)"])
        }
        #expect(try c.ids(matching: .field(field, .greaterOrEqual(.int(2)))) == ["d2", "d3"])
        try c.upsert(Document(id: "after", vector: [0, 1]))
        try Self.verifyClean(db)
    }

    /// An import whose absolute input path is longer than LMDB's key limit resumes by it.
    @Test func longImportPath() throws {
        let dir = TemporaryDirectory()
        var folder = dir.path
        while folder.utf8.count < 700 { folder += "/" + String(repeating: "p", count: 120) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let file = folder + "/rows.jsonl"
        try Data("{\"id\":\"a\",\"vector\":[1,0]}\n{\"id\":\"b\",\"vector\":[0,1]}\n".utf8).write(to: URL(fileURLWithPath: file))
        let db = try Database(path: dir.path + "/db")
        let c = try db.createCollection("c", dimension: 2)
        let report = try c.importFile(file)
        #expect(report.imported == 2)
        var options = ImportOptions()
        options.resume = true
        #expect(try c.importFile(file, options: options).imported == 0)
        try c.upsert(Document(id: "next", vector: [1, 1]))
        try Self.verifyClean(db)
    }

    /// Random documents with every field at, just below and past every limit, under every payload
    /// index type: each write applies (and reads back, and a filter finds it) or is rejected before
    /// the log; afterwards a normal write succeeds, and the database reopens and verifies.
    @Test func everyLimitEitherAppliesOrIsRefusedBeforeTheLog() throws {
        let dir = TemporaryDirectory()
        var rng = SplitMix64(seed: 12)
        func around(_ n: Int) -> [Int] { [n - 1, n, n + 1] }
        func text(_ bytes: Int, _ unit: String = "a") -> String {
            let u = unit.utf8.count
            return String(repeating: unit, count: bytes / u) + String(repeating: "b", count: bytes % u)
        }
        let idLengths = around(Limits.maxIDBytes) + [1, 250, 511, 600]
        let fieldLengths = around(PayloadKeys.maxInlineFieldBytes) + [1, 490, 511, 1_024, 1_025, 4_000]
        let keywordLengths = around(PayloadKeys.maxInlineKeywordBytes) + [0, 300, 496, 511, 600, 5_000, 100_000]
        let listLengths = around(Limits.maxListItems) + [0, 1]
        let numbers: [MetadataValue] = [.int(.max), .int(.min), .int(1 << 53), .int((1 << 53) + 1), .double(-0.0),
                                        .double(.greatestFiniteMagnitude), .double(-.leastNonzeroMagnitude), .double(.nan), .double(.infinity),
                                        .bool(true), .bool(false), .null]
        var applied = 0, refused = 0
        let db = try Database(path: dir.path + "/db")
        for type in PayloadIndexType.allCases {
            let c = try db.createCollection("c-\(type.rawValue)", dimension: 2)
            let fields = fieldLengths.map { text($0, "k") } + ["tag"]
            for f in fields {
                if f.utf8.count <= 1_024 { try c.createPayloadIndex(f, type: type) } else {
                    #expect(throws: QuiverError.self) { try c.createPayloadIndex(f, type: type) }
                }
            }
            var cases: [Document] = []
            for n in idLengths { cases.append(Document(id: text(n, "é"), vector: [1, 0])); cases.append(Document(id: text(n), vector: [1, 0])) }
            for f in fields {
                for n in keywordLengths.shuffled(using: &rng).prefix(4) {
                    cases.append(Document(id: "kw-\(f.utf8.count)-\(n)", metadata: [f: .string(text(n, ["a", "\u{0}", "ß"].randomElement(using: &rng)!))], vector: [0, 1]))
                }
                for v in numbers.shuffled(using: &rng).prefix(4) { cases.append(Document(id: "num-\(f.utf8.count)-\(v)", metadata: [f: v], vector: [1, 1])) }
            }
            for n in listLengths { cases.append(Document(id: "list-\(n)", metadata: ["tag": .stringList((0..<n).map { "item\($0 % 5000)" })], vector: [1, 2])) }
            cases.append(Document(id: "list-long-items", metadata: ["tag": .stringList([text(600), text(601), text(256)])], vector: [1, 2]))
            cases.append(Document(id: "meta-bytes", metadata: ["tag": .string(text(Limits.maxMetadataBytes - 3))], vector: [2, 1]))
            cases.append(Document(id: "meta-bytes-past", metadata: ["tag": .string(text(Limits.maxMetadataBytes + 1))], vector: [2, 1]))
            cases.append(Document(id: "keys", metadata: Dictionary(uniqueKeysWithValues: (0...Limits.maxMetadataKeys).map { ("k\($0)", MetadataValue.int(Int64($0))) }), vector: [2, 2]))
            cases.append(Document(id: "text-word", text: text(70_000), vector: [2, 3]))
            cases.append(Document(id: "text-past", text: text(Limits.maxTextBytes + 1), vector: [2, 3]))
            cases.append(Document(id: "dim", vector: [1, 2, 3]))
            cases.append(Document(id: "nan", vector: [.nan, 0]))
            for d in cases {
                let before = try Self.lastSequence(db)
                do {
                    try c.upsert(d)
                } catch let e as QuiverError {
                    refused += 1
                    if case .storage = e { Issue.record("'\(d.id.prefix(40))' was refused by the storage, not validated: \(e)") }
                    #expect(try Self.lastSequence(db) == before, "'\(d.id.prefix(40))' was logged and then refused: \(e)")
                    continue
                }
                applied += 1
                #expect(try Self.lastSequence(db) == before + 1)
                let back = try c.get(d.id)
                #expect(back?.metadata == d.metadata && back?.vector == d.vector && back?.text == d.text, "'\(d.id.prefix(40))' reads back otherwise")
                for (field, value) in d.metadata {
                    let literal: FilterLiteral?
                    switch (type, value) {
                    case (.keyword, .string(let s)): literal = .string(s)
                    case (.integer, .int(let i)), (.float, .int(let i)): literal = .int(i)
                    case (.integer, .double(let x)), (.float, .double(let x)) where !x.isNaN: literal = .double(x)
                    case (.bool, .bool(let b)): literal = .bool(b)
                    default: literal = nil
                    }
                    if let l = literal { #expect(try c.ids(matching: .field(field, .equal(l))).contains(d.id), "a filter on '\(field.prefix(20))' misses '\(d.id.prefix(40))'") }
                }
                // The database always takes a normal write afterwards.
                try c.upsert(Document(id: "normal", metadata: ["tag": .string("t")], vector: [0.5, 0.5]))
            }
        }
        #expect(applied > 100 && refused > 10)
        try Self.verifyClean(db)
        db.close()
        let again = try Database(path: dir.path + "/db")
        #expect(again.openReport.unappliedRecord == nil)
        try Self.verifyClean(again)
        try again.collection("c-keyword").upsert(Document(id: "after-reopen", vector: [1, 0]))
    }

    // MARK: - Replay never bricks

    /// A closed database (collection `c`, document `a`) whose log then gets one write record per id
    /// (a 2-d vector each) that LMDB has not applied. Returns each record's offset in the log file.
    static func databaseWithUnappliedWrites(_ dir: TemporaryDirectory, ids: [String]) throws -> [Int] {
        do {
            let db = try Database(path: dir.path + "/db")
            let c = try db.createCollection("c", dimension: 2)
            try c.upsert(Document(id: "a", vector: [1, 0]))
            db.close()
        }
        let wal = try WriteAheadLog(directory: dir.path + "/db/wal", minimumNextSequence: 1)
        defer { wal.close() }
        var offsets: [Int] = []
        for id in ids {
            offsets.append(wal.diskSize)
            let record = LogRecord.write(number: 1, insert: false, documents: [Document(id: id, vector: [0, 1])])
            _ = try wal.append(type: record.type, payload: try record.payload())
        }
        return offsets
    }

    /// A logged record that cannot apply (the debug hook stands for a future bug): the database
    /// opens and serves reads, the error names the record, `repair` sets it aside into the
    /// quarantine directory, and writes resume with nothing else lost.
    @Test func unappliableRecordIsSetAsideByRepair() throws {
        let dir = TemporaryDirectory()
        var expected: [String: [Float]] = [:]
        do {
            let db = try Database(path: dir.path + "/db")
            let c = try db.createCollection("c", dimension: 2, options: CollectionOptions(index: IndexSettings(segmentSize: 16)))
            for i in 0..<40 {
                try c.upsert(Document(id: "d\(i)", metadata: ["i": .int(Int64(i))], vector: [Float(i), 1]))
                expected["d\(i)"] = [Float(i), 1]
            }
            DebugHooks.unappliableID = "poison"
            defer { DebugHooks.unappliableID = nil }
            #expect(throws: (any Error).self) { try c.upsert(Document(id: "poison", vector: [1, 1])) }
            // The write that failed to apply fail-stops this process's database.
            #expect(throws: QuiverError.self) { try c.upsert(Document(id: "later", vector: [1, 1])) }
            db.close()
        }
        // The hook stays on (the cause persists) until repair has run.
        DebugHooks.unappliableID = "poison"
        defer { DebugHooks.unappliableID = nil }
        let db = try Database(path: dir.path + "/db")
        let u = try #require(db.openReport.unappliedRecord)
        #expect(u.reason.contains("poison"))
        let c = try db.collection("c")
        // Reads work, document by document, and searches.
        for (id, v) in expected { #expect(try c.get(id)?.vector == v) }
        #expect(try c.get("poison") == nil)
        #expect(try c.search(vector: [39, 1], k: 1).first?.id == "d39")
        // Writes are refused with a message naming the record.
        do {
            try c.upsert(Document(id: "x", vector: [1, 1]))
            Issue.record("a write was taken with an unappliable record pending")
        } catch let e as QuiverError {
            #expect(e.description.contains("log record \(u.sequence)") && e.description.contains("quiver repair"))
        }
        let report = try db.repair()
        DebugHooks.unappliableID = nil
        #expect(report.setAside.map(\.sequence) == [u.sequence])
        let saved = dir.path + "/db/quarantine/" + String(format: "%020llu", u.sequence) + ".record"
        let bytes = try File(path: saved, mode: .readOnly).readAll()
        let (record, size) = try #require(WALFormat.decodeRecord(bytes, at: 0))
        #expect(size == bytes.count && record.sequence == u.sequence && record.type == 3)
        try c.upsert(Document(id: "x", vector: [1, 1]))
        expected["x"] = [1, 1]
        for (id, v) in expected { #expect(try c.get(id)?.vector == v) }
        #expect(try c.count() == expected.count)
        try Self.verifyClean(db)
        db.close()
        let again = try Database(path: dir.path + "/db")
        #expect(again.openReport.unappliedRecord == nil)
        #expect(try again.collection("c").count() == expected.count)
        try Self.verifyClean(again)
    }

    /// Records after the unappliable one are kept and replayed by `repair`.
    @Test func recordsAfterTheUnappliableOneAreReplayed() throws {
        let dir = TemporaryDirectory()
        // Two records appended to the log by hand: the unappliable write, then a normal one.
        _ = try Self.databaseWithUnappliedWrites(dir, ids: ["poison", "b"])
        DebugHooks.unappliableID = "poison"
        defer { DebugHooks.unappliableID = nil }
        let db = try Database(path: dir.path + "/db")
        #expect(db.openReport.unappliedRecord != nil)
        #expect(try db.collection("c").get("b") == nil)
        let report = try db.repair()
        #expect(report.setAside.count == 1 && report.replayedRecords == 1)
        #expect(try db.collection("c").get("b")?.vector == [0, 1])
        #expect(try db.collection("c").get("poison") == nil)
        try Self.verifyClean(db)
    }

    // MARK: - A damaged log

    /// Damage in log files whose records LMDB already holds is dropped by the open, losing nothing.
    @Test func damageInAppliedLogFilesIsDropped() throws {
        let dir = TemporaryDirectory()
        var options = DatabaseOptions()
        options.walFileSize = 1_024
        do {
            let db = try Database(path: dir.path + "/db", options: options)
            let c = try db.createCollection("c", dimension: 4)
            for i in 0..<60 { try c.upsert(Document(id: "d\(i)", vector: [Float(i), 1, 2, 3])) }
            db.close()
        }
        let files = try FileSystem.list(dir.path + "/db/wal").sorted()
        try #require(files.count >= 3)
        let f = try File(path: dir.path + "/db/wal/" + files[1], mode: .readWrite)
        try f.write([0xAB, 0xCD], at: 100)
        f.close()
        let db = try Database(path: dir.path + "/db", options: options)
        #expect(db.openReport.droppedDamagedLogFiles.count == 2)
        let c = try db.collection("c")
        for i in 0..<60 { #expect(try c.get("d\(i)")?.vector == [Float(i), 1, 2, 3]) }
        try c.upsert(Document(id: "more", vector: [1, 1, 1, 1]))
        try Self.verifyClean(db)
    }

    /// Damage among records LMDB does not hold: the open refuses, naming the file and byte; the
    /// repair open sets the damaged part aside and keeps everything before it.
    @Test func damageInUnappliedRecordsIsSalvagedByRepair() throws {
        let dir = TemporaryDirectory()
        // Three records that LMDB has not applied, the middle one then damaged.
        let offsets = try Self.databaseWithUnappliedWrites(dir, ids: ["b", "c", "d"])
        let file = try #require(try FileSystem.list(dir.path + "/db/wal").sorted().last)
        let f = try File(path: dir.path + "/db/wal/" + file, mode: .readWrite)
        try f.write([0xFF], at: offsets[1] + 20)
        f.close()
        #expect(throws: QuiverError.self) { try Database(path: dir.path + "/db") }
        var options = DatabaseOptions()
        options.salvageDamagedLog = true
        let db = try Database(path: dir.path + "/db", options: options)
        let salvage = try #require(db.openReport.salvagedLog)
        #expect(salvage.firstLostSequence == 4 && !salvage.setAsideFiles.isEmpty)
        #expect(FileSystem.exists(salvage.setAsideFiles[0]))
        let c = try db.collection("c")
        #expect(try c.get("a") != nil && c.get("b") != nil)
        #expect(try c.get("c") == nil && c.get("d") == nil)
        #expect(try db.repair().salvagedLog == salvage)
        try c.upsert(Document(id: "e", vector: [1, 1]))
        try Self.verifyClean(db)
        db.close()
        #expect(try Database(path: dir.path + "/db").openReport.salvagedLog == nil)
    }

    // MARK: - Derived data heals

    static func sealedDatabase(_ dir: TemporaryDirectory, kind: IndexKind = .hnsw, quantization: Quantization = .none,
                               count: Int = 400) throws -> [String: [Float]] {
        let db = try Database(path: dir.path + "/db")
        let c = try db.createCollection("c", dimension: 8, options: CollectionOptions(index: IndexSettings(kind: kind, segmentSize: 100,
                                                                                                          quantization: quantization)))
        var rng = SplitMix64(seed: 7)
        var docs: [String: [Float]] = [:]
        var batch: [Document] = []
        for i in 0..<count {
            let v = (0..<8).map { _ in Float.random(in: 0..<1, using: &rng) }
            docs["d\(i)"] = v
            batch.append(Document(id: "d\(i)", metadata: ["g": .int(Int64(i % 3))], vector: v))
        }
        try c.upsert(batch)
        try db.compact()
        try c.delete(ids: ["d3", "d150"])
        docs["d3"] = nil
        docs["d150"] = nil
        db.close()
        return docs
    }

    static func segmentFiles(_ dir: TemporaryDirectory) throws -> [String] {
        try FileSystem.list(dir.path + "/db/segments/1").sorted().map { dir.path + "/db/segments/1/" + $0 }
    }

    /// A damaged, truncated or deleted segment file: every read works (searches equal the exact
    /// scan), verify reports the damage until it is rebuilt, and `repair` (or the background
    /// rebuild of a writable open) leaves a clean database.
    @Test(arguments: ["flip", "truncate", "delete"])
    func damagedSegmentFileHeals(damage: String) throws {
        let dir = TemporaryDirectory()
        let docs = try Self.sealedDatabase(dir)
        let files = try Self.segmentFiles(dir)
        #expect(!files.isEmpty)
        let victim = files[0]
        switch damage {
        case "flip":
            let f = try File(path: victim, mode: .readWrite)
            var b = try f.read(count: 1, at: 700)
            b[0] ^= 0x40
            try f.write(b, at: 700)
            f.close()
        case "truncate":
            let f = try File(path: victim, mode: .readWrite)
            try f.truncate(to: try f.size() / 2)
            f.close()
        default:
            try FileSystem.remove(victim)
        }
        let queries: [[Float]] = [[Float](repeating: 0.5, count: 8), [1, 0, 0, 0, 0, 0, 0, 1], [0, 1, 0, 1, 0, 1, 0, 1]]
        // Read-only first: nothing is rebuilt, the damage is reported, the answers are exact.
        do {
            let ro = try Database(path: dir.path + "/db", options: DatabaseOptions(readOnly: true))
            #expect(ro.openReport.damagedSegments.count == 1)
            let c = try ro.collection("c")
            for q in queries {
                for filter: Filter? in [nil, .field("g", .equal(.int(1)))] {
                    // A list as long as a segment: the HNSW segments answer exactly too.
                    let got = try c.search(vector: q, k: 10, options: SearchOptions(efSearch: 400, filter: filter)).map(\.id)
                    let exact = try c.search(vector: q, k: 10, options: SearchOptions(exact: true, filter: filter)).map(\.id)
                    #expect(got == exact)
                }
            }
            for (id, v) in docs { #expect(try c.get(id)?.vector == v) }
            #expect(try !ro.verify().ok)
            ro.close()
        }
        let db = try Database(path: dir.path + "/db")
        #expect(db.openReport.damagedSegments.count == 1)
        let report = try db.repair()
        db.waitForMaintenance()
        _ = report
        #expect(db.segments.damagedSegments() == [])
        try Self.verifyClean(db)
        let c = try db.collection("c")
        for q in queries {
            let got = try c.search(vector: q, k: 10, options: SearchOptions(efSearch: 400)).map(\.id)
            let exact = try c.search(vector: q, k: 10, options: SearchOptions(exact: true)).map(\.id)
            #expect(got == exact)
        }
        #expect(try c.count() == docs.count)
        db.close()
        let again = try Database(path: dir.path + "/db")
        #expect(again.openReport.damagedSegments == [])
        try Self.verifyClean(again)
    }

    /// An sq8 segment file (16-bit links) written wrong, its checksums intact: a layer-0 link set to
    /// the node count is found by the structural checks (`openReport.damagedSegments`, `verify`), the
    /// searches stay exact, and `repair` rebuilds the file.
    @Test func sq8SegmentWithALinkBeyondTheCountHeals() throws {
        let dir = TemporaryDirectory()
        let docs = try Self.sealedDatabase(dir, quantization: .sq8)
        let victim = try #require(try Self.segmentFiles(dir).first { $0.hasSuffix(".sq8") })
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: victim)))
        let index = try SQ8HNSWCodec.decode(bytes)
        #expect(bytes[22] == 2 && index.linkWidth == 2)
        // Node 0's first link (element 0 starts the first section, at 384: count u16, then links).
        #expect(bytes[384] > 0)
        bytes[386] = UInt8(index.count & 0xFF)
        bytes[387] = UInt8(index.count >> 8)
        let crc0 = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[384 ..< 384 + index.count * index.elementSize])) }
        withUnsafeBytes(of: crc0.littleEndian) { for i in 0..<4 { bytes[120 + i] = $0[i] } }
        let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<380])) }
        withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { bytes[380 + i] = $0[i] } }
        #expect(throws: IndexError(.corrupt, "node 0 links to \(index.count), beyond \(index.count) nodes", offset: 386)) {
            try SQ8HNSWCodec.decode(bytes)
        }
        try Data(bytes).write(to: URL(fileURLWithPath: victim))
        // Read-only: the damage is reported, nothing is rebuilt, the answers are exact.
        do {
            let ro = try Database(path: dir.path + "/db", options: DatabaseOptions(readOnly: true))
            #expect(ro.openReport.damagedSegments.count == 1)
            let c = try ro.collection("c")
            for q: [Float] in [[Float](repeating: 0.5, count: 8), [1, 0, 0, 0, 0, 0, 0, 1]] {
                let got = try c.search(vector: q, k: 10, options: SearchOptions(efSearch: 400)).map(\.id)
                #expect(got == (try c.search(vector: q, k: 10, options: SearchOptions(exact: true)).map(\.id)))
            }
            #expect(try !ro.verify().ok)
            ro.close()
        }
        let db = try Database(path: dir.path + "/db")
        #expect(db.openReport.damagedSegments.count == 1)
        let c = try db.collection("c")
        _ = try db.repair()
        db.waitForMaintenance()
        #expect(db.segments.damagedSegments() == [])
        try Self.verifyClean(db)
        #expect(try c.count() == docs.count)
        #expect(try Self.segmentFiles(dir).allSatisfy { $0.hasSuffix(".sq8") })
        db.close()
    }

    /// An IVF-PQ segment file damaged: the same healing.
    @Test func damagedIVFPQSegmentHeals() throws {
        let dir = TemporaryDirectory()
        _ = try Self.sealedDatabase(dir, kind: .ivfpq, count: 1_300)
        let victim = try #require(try Self.segmentFiles(dir).first { $0.hasSuffix(".ivfpq") })
        let f = try File(path: victim, mode: .readWrite)
        var b = try f.read(count: 1, at: 300)
        b[0] ^= 0x01
        try f.write(b, at: 300)
        f.close()
        let db = try Database(path: dir.path + "/db")
        #expect(db.openReport.damagedSegments.count == 1)
        let c = try db.collection("c")
        let q = [Float](repeating: 0.3, count: 8)
        #expect(try c.search(vector: q, k: 5).map(\.id) == c.search(vector: q, k: 5, options: SearchOptions(exact: true)).map(\.id))
        db.waitForMaintenance()  // the background rebuild of a writable open
        #expect(db.segments.damagedSegments() == [])
        try Self.verifyClean(db)
    }

    /// Payload index entries and BM25 postings that disagree with the documents: verify reports
    /// them, repair rebuilds them from the documents.
    @Test func damagedPayloadAndTextIndexesAreRebuilt() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path + "/db")
        let c = try db.createCollection("c", dimension: 2)
        try c.createPayloadIndex("tag", type: .keyword)
        for i in 0..<20 {
            try c.upsert(Document(id: "d\(i)", text: "the quick brown fox number \(i)", metadata: ["tag": .string("t\(i % 4)")], vector: [1, Float(i)]))
        }
        // Drop one payload entry and one posting, and add a stray posting, straight in LMDB.
        try db.env.write { txn in
            var payloadKey: [UInt8]?, postingKey: [UInt8]?
            try txn.forEach(db.tables.payload, prefix: Keys.collection(1)) { k, _ in payloadKey = Array(k); return false }
            try txn.forEach(db.tables.postings, prefix: Keys.collection(1)) { k, _ in postingKey = Array(k); return false }
            _ = try txn.delete(db.tables.payload, payloadKey!)
            _ = try txn.delete(db.tables.postings, postingKey!)
            let stray = TextIndexStore.postingPrefix(1, "stray") + Keys.row(1, 5)[4...]
            try txn.put(db.tables.postings, stray, StoredValue.seal([1, 0, 0, 0, 5, 0, 0, 0], key: stray))
        }
        let found = try db.verify()
        #expect(found.problems.contains { $0.contains("payload") } && found.problems.contains { $0.contains("BM25") })
        let report = try db.repair()
        #expect(report.rebuiltPayloadIndexes == ["c"] && report.rebuiltTextIndexes == ["c"])
        try Self.verifyClean(db)
        #expect(try c.ids(matching: .field("tag", .equal(.string("t1")))).count == 5)
        #expect(try db.repair().nothingToDo)
    }

    /// The CLI: the repair command, and the open's warnings.
    @Test func cliRepair() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/db")
        try cli.run(["init"])
        try cli.run(["create", "c", "--dimension", "2"])
        #expect(try cli.run(["put", "c"], stdin: "{\"id\":\"a\",\"vector\":[1,0]}").status == 0)
        let poisoned = ["QUIVER_DEBUG_UNAPPLIABLE_ID": "poison"]
        #expect(try cli.run(["put", "c"], stdin: "{\"id\":\"poison\",\"vector\":[1,1]}", environment: poisoned).status == 1)
        let refused = try cli.run(["put", "c"], stdin: "{\"id\":\"b\",\"vector\":[0,1]}", environment: poisoned)
        #expect(refused.status == 1 && refused.stderr.contains("quiver repair") && refused.stderr.contains("log record 3"))
        #expect(try cli.run(["get", "c", "a"], environment: poisoned).status == 0)
        let repaired = try cli.run(["repair"], environment: poisoned)
        #expect(repaired.status == 0 && repaired.stdout.contains("set aside log record 3"))
        #expect(try cli.run(["put", "c"], stdin: "{\"id\":\"b\",\"vector\":[0,1]}").status == 0)
        #expect(try cli.run(["verify"]).status == 0)
        #expect(try cli.run(["repair", "--help"]).stdout.contains("quarantine"))
    }
}

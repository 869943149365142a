import Foundation
import Testing
import QuiverCore
import QuiverTestSupport
import QuiverStorage
@testable import Quiver

struct ImportExportTests {
    func all(_ c: Collection) throws -> [Document] { try c.get(ids: c.ids()).compactMap { $0 } }

    func write(_ text: String, _ path: String) throws { try text.write(toFile: path, atomically: true, encoding: .utf8) }

    @Test func jsonlRoundTrips() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path + "/db")
        let a = try db.createCollection("a", dimension: 3)
        var rng = SplitMix64(state: 9)
        let docs = (0..<250).map { i in
            Document(id: "doc-\(i)", text: i % 3 == 0 ? nil : "text \(i) " + String(repeating: "é", count: i),
                     metadata: ["i": .int(Int64(i)), "f": .double(Double(i) / 4), "big": .double(1e300), "tiny": .double(-1e-9), "ctl": .string("a\u{1}\"\\/\n"), "tags": .stringList(["t\(i % 5)"]), "b": .bool(i % 2 == 0), "n": .null],
                     vector: randomVector(3, &rng))
        }
        try a.insert(docs)
        #expect(try a.export(to: dir.path + "/a.jsonl", format: .jsonl) == 250)
        let b = try db.createCollection("b", dimension: 3)
        var options = ImportOptions()
        options.batchSize = 64
        let report = try b.importFile(dir.path + "/a.jsonl", options: options)
        #expect(report.imported == 250 && report.skippedCount == 0 && report.rowsRead == 250)
        #expect(try all(b) == all(a))
        // A second export of the re-imported collection is byte for byte the first.
        try b.export(to: dir.path + "/b.jsonl", format: .jsonl)
        #expect(FileManager.default.contents(atPath: dir.path + "/a.jsonl") == FileManager.default.contents(atPath: dir.path + "/b.jsonl"))
    }

    @Test func csvImportsAndRoundTripsThroughJSONL() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path + "/db")
        let c = try db.createCollection("c", dimension: 2)
        try write("""
            id,text,vector,year,score,ok,tags,note
            p1,"plain text","[1, 0]",2020,0.5,true,a|b,hello
            p2,"with ""quotes"", commas
            and a newline","0.5 0.5",2021,1e-3,false,c,
            p3,,"0,1",1999,2,true,,"x,y"
            """ + "\n", dir.path + "/in.csv")
        var options = ImportOptions()
        options.columnTypes = ["tags": .list, "note": .string]
        let report = try c.importFile(dir.path + "/in.csv", options: options)
        #expect(report.imported == 3, "\(report.skipped)")
        let p2 = try #require(try c.get("p2"))
        #expect(p2.text == "with \"quotes\", commas\nand a newline")
        #expect(p2.vector == [0.5, 0.5])
        #expect(p2.metadata == ["year": 2021, "score": .double(0.001), "ok": false, "tags": ["c"], "note": .null])
        #expect(try c.get("p1")?.metadata["tags"] == ["a", "b"])
        #expect(try c.get("p3")?.text == nil && c.get("p3")?.metadata["note"] == "x,y")
        try c.export(to: dir.path + "/c.jsonl", format: .jsonl)
        let again = try db.createCollection("again", dimension: 2)
        _ = try again.importFile(dir.path + "/c.jsonl")
        #expect(try all(again) == all(c))
        // CSV export reads back the same, lists declared as lists.
        try c.export(to: dir.path + "/c.csv", format: .csv)
        let fromCSV = try db.createCollection("fromcsv", dimension: 2)
        var csvOptions = ImportOptions()
        csvOptions.columnTypes = ["tags": .list, "note": ImportOptions.ColumnType(named: "keyword")!]
        let csvReport = try fromCSV.importFile(dir.path + "/c.csv", options: csvOptions)
        #expect(csvReport.imported == 3, "\(csvReport.skipped)")
        #expect(try all(fromCSV) == all(c))
        #expect(PayloadIndexType(named: "int") == .integer && PayloadIndexType(named: "string") == .keyword && ImportOptions.ColumnType(named: "integer") == .int)
    }

    @Test func csvBadRowsAreReportedByLine() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path + "/db")
        let c = try db.createCollection("c", dimension: 2)
        try write("id,vector,n\na,\"1,2\",1\nb,\"1,2\"\nc,\"x,y\",2\nd,\"1,2\",3\n", dir.path + "/in.csv")
        var options = ImportOptions(onError: .skip)
        options.columnTypes = ["n": .int]
        let report = try c.importFile(dir.path + "/in.csv", options: options)
        #expect(report.imported == 2)
        #expect(report.skipped.map(\.line) == [3, 4])
        #expect(report.skipped[0].reason.contains("2 fields"))
        options.onError = .abort
        #expect(throws: QuiverError.self) { try c.importFile(dir.path + "/missing.csv", options: options) }
        try write("name,vector\nx,\"1,1\"\n", dir.path + "/noid.csv")
        #expect(throws: QuiverError.badInput(file: dir.path + "/noid.csv", line: 1, reason: "the header has no id column 'id' (columns: name, vector)")) {
            try c.importFile(dir.path + "/noid.csv", options: options)
        }
    }

    /// Every good row of a JSONL file with malformed lines, wrong dimensions, NaN and duplicate ids
    /// is imported, and every bad one is reported with its line.
    @Test func badJSONLRowsAreSkippedAndReported() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path + "/db")
        let c = try db.createCollection("v", dimension: 3)
        try c.insert(Document(id: "stored", vector: [1, 1, 1]))
        try write("""
            {"id":"a","vector":[1,2,3],"metadata":{"k":1}}
            {"id":"b","vector":[1,2]}
            not json
            {"id":"c","vector":[1,2,NaN]}
            {"id":"a","vector":[3,3,3]}

            {"id":"d","vector":[1e39,0,0]}
            {"id":"e","text":"no vector"}
            {"id":"f","vector":[0,0,1],"metadata":[1]}
            {"id":"g","vector":[0,1,0]}
            {"id":"stored","vector":[0,1,0]}
            {"id":"","vector":[0,1,0]}
            {"id":"h","vector":[0,1,1]}
            """, dir.path + "/bad.jsonl")
        var options = ImportOptions(onError: .skip)
        options.batchSize = 4
        let report = try c.importFile(dir.path + "/bad.jsonl", options: options)
        #expect(Set(try c.ids()) == ["stored", "a", "g", "h"])
        #expect(report.imported == 3)
        #expect(report.skipped.map(\.line) == [2, 3, 4, 5, 7, 8, 9, 11, 12])
        #expect(report.skipped[0].reason.contains("has 2 components"))
        #expect(report.skipped[3].reason.contains("already exists"))
        // With abort, the rows before the first bad one are imported and the error names the line.
        let d = try db.createCollection("d", dimension: 3)
        #expect(throws: QuiverError.badInput(file: dir.path + "/bad.jsonl", line: 2,
                                             reason: "document 'b' in 'd': vector has 2 components, the collection has dimension 3")) {
            try d.importFile(dir.path + "/bad.jsonl")
        }
        #expect(try d.ids() == ["a"])
    }

    @Test func fvecsBvecsAndNpyImportAndRoundTrip() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path + "/db")
        var rng = SplitMix64(state: 12)
        let vectors = (0..<100).map { _ in randomVector(4, &rng) }
        // fvecs, positional ids with a prefix.
        var fvecs = Data()
        for v in vectors {
            withUnsafeBytes(of: Int32(4).littleEndian) { fvecs.append(contentsOf: $0) }
            for f in v { withUnsafeBytes(of: f.bitPattern.littleEndian) { fvecs.append(contentsOf: $0) } }
        }
        try fvecs.write(to: URL(fileURLWithPath: dir.path + "/base.fvecs"))
        let f = try db.createCollection("f", dimension: 4, metric: .l2)
        var options = ImportOptions()
        options.idPrefix = "v"
        #expect(try f.importFile(dir.path + "/base.fvecs", options: options).imported == 100)
        #expect(try f.get("v42")?.vector == vectors[42])
        // Round trips: export fvecs and npy, import both again with the ids files.
        for format in [ExportFormat.fvecs, .npy] {
            let out = dir.path + "/out.\(format.rawValue)"
            try f.export(to: out, format: format)
            let g = try db.createCollection("g-\(format.rawValue)", dimension: 4, metric: .l2)
            var o = ImportOptions()
            o.idsFile = out + ".ids"
            #expect(try g.importFile(out, options: o).imported == 100)
            #expect(try all(g).map(\.vector) == all(f).map(\.vector) && g.ids() == f.ids())
        }
        // bvecs: uint8 components.
        var bvecs = Data()
        for i in 0..<3 {
            withUnsafeBytes(of: Int32(4).littleEndian) { bvecs.append(contentsOf: $0) }
            bvecs.append(contentsOf: [UInt8(i), 255, 0, 7])
        }
        try bvecs.write(to: URL(fileURLWithPath: dir.path + "/b.bvecs"))
        let b = try db.createCollection("b", dimension: 4, metric: .l2)
        _ = try b.importFile(dir.path + "/b.bvecs")
        #expect(try b.get("2")?.vector == [2, 255, 0, 7])
        // npy float16 and uint8, written by hand.
        func npy(_ descr: String, _ shape: String, _ body: [UInt8]) -> Data {
            var dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
            dict += String(repeating: " ", count: (64 - (10 + dict.utf8.count + 1) % 64) % 64) + "\n"
            return Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(dict.utf8.count), 0] + Array(dict.utf8) + body)
        }
        try npy("<f2", "(2, 4)", [0x00, 0x3C, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x38, 0x00, 0x7C, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00])
            .write(to: URL(fileURLWithPath: dir.path + "/h.npy"))
        let h = try db.createCollection("h", dimension: 4, metric: .l2)
        let report = try h.importFile(dir.path + "/h.npy", options: ImportOptions(onError: .skip))
        #expect(try h.get("0")?.vector == [1, -2, 0, 0.5])
        #expect(report.skipped.map(\.line) == [1])  // +infinity in float16 is rejected as non-finite
        try npy("|u1", "(1, 4)", [1, 2, 3, 250]).write(to: URL(fileURLWithPath: dir.path + "/u.npy"))
        let u = try db.createCollection("u", dimension: 4, metric: .l2)
        _ = try u.importFile(dir.path + "/u.npy")
        #expect(try u.get("0")?.vector == [1, 2, 3, 250])
        // float64 (numpy's default) and integer arrays are converted; a float64 beyond float32's
        // range is a bad row.
        var f8: [UInt8] = []
        for x in [1.5, -2.0, 1e300, 0.25, 3, 4, 5, 6] as [Double] { withUnsafeBytes(of: x.bitPattern.littleEndian) { f8.append(contentsOf: $0) } }
        try npy("<f8", "(2, 4)", f8).write(to: URL(fileURLWithPath: dir.path + "/d.npy"))
        let d = try db.createCollection("d", dimension: 4, metric: .l2)
        let dReport = try d.importFile(dir.path + "/d.npy", options: ImportOptions(onError: .skip))
        #expect(dReport.skipped.map(\.line) == [0] && dReport.skipped.first?.reason.contains("float32") == true)
        #expect(try d.get("1")?.vector == [3, 4, 5, 6])
        var i8: [UInt8] = []
        for x in [-7, 0, 1 << 40, 9] as [Int64] { withUnsafeBytes(of: x.littleEndian) { i8.append(contentsOf: $0) } }
        try npy("<i8", "(1, 4)", i8).write(to: URL(fileURLWithPath: dir.path + "/i.npy"))
        try npy("|i1", "(1, 4)", [0xFF, 0x80, 1, 2]).write(to: URL(fileURLWithPath: dir.path + "/i1.npy"))
        _ = try d.importFile(dir.path + "/i.npy", options: { var o = ImportOptions(); o.idPrefix = "i8-"; return o }())
        _ = try d.importFile(dir.path + "/i1.npy", options: { var o = ImportOptions(); o.idPrefix = "i1-"; return o }())
        #expect(try d.get("i8-0")?.vector == [-7, 0, Float(1 << 40), 9])
        #expect(try d.get("i1-0")?.vector == [-1, -128, 1, 2])
        // Damaged headers and unsupported types are errors naming the file (and no line).
        try npy(">f4", "(1, 4)", [UInt8](repeating: 0, count: 16)).write(to: URL(fileURLWithPath: dir.path + "/bad.npy"))
        do {
            _ = try u.importFile(dir.path + "/bad.npy")
            Issue.record("a big-endian array was imported")
        } catch let e as QuiverError {
            #expect(e.description.hasPrefix(dir.path + "/bad.npy: element type >f4"), "\(e)")
        }
        try npy("<f4", "(5, 4)", [UInt8](repeating: 0, count: 16)).write(to: URL(fileURLWithPath: dir.path + "/short.npy"))
        #expect(throws: QuiverError.self) { try u.importFile(dir.path + "/short.npy") }
        try Data([0xFF, 0xFF, 0xFF, 0x7F, 1, 2]).write(to: URL(fileURLWithPath: dir.path + "/bad.fvecs"))
        #expect(throws: QuiverError.self) { try f.importFile(dir.path + "/bad.fvecs", options: ImportOptions(onError: .skip)) }
    }

    @Test func textIsEncodedOnImport() throws {
        let dir = TemporaryDirectory()
        let registry = EncoderRegistry()
        registry.register("letters", encoder: LetterCountEncoder())
        var dbOptions = DatabaseOptions()
        dbOptions.encoders = registry
        let db = try Database(path: dir.path + "/db", options: dbOptions)
        let c = try db.createCollection("t", encoder: "letters")
        try write("{\"id\":\"x\",\"text\":\"aab\"}\n{\"id\":\"y\",\"text\":\"zz\"}\n", dir.path + "/t.jsonl")
        _ = try c.importFile(dir.path + "/t.jsonl")
        #expect(try c.get("x")?.vector == LetterCountEncoder().vector("aab"))
    }

    /// kill -9 during `quiver import`, then `--resume`, several times: at the end every row is
    /// there exactly once (insert mode: a repeated row would fail as a duplicate).
    @Test func killDuringImportThenResume() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/db")
        try cli.run(["init"])
        try cli.run(["create", "big", "--dimension", "8"])
        let rows = 20_000
        var text = ""
        var rng = SplitMix64(state: 77)
        for i in 0..<rows {
            let v = randomVector(8, &rng).map { String($0) }.joined(separator: ",")
            text += "{\"id\":\"r\(i)\",\"text\":\"row \(i)\",\"vector\":[\(v)]}\n"
        }
        try write(text, dir.path + "/big.jsonl")
        var kills = 0
        var rngKill = SystemRandomNumberGenerator()
        for _ in 0..<6 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: try builtProduct("quiver"))
            p.arguments = ["import", "big", dir.path + "/big.jsonl", "--resume", "--batch-size", "100", "--db", dir.path + "/db"]
            p.standardError = FileHandle.nullDevice
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            usleep(UInt32.random(in: 150_000...600_000, using: &rngKill))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            if p.terminationReason == .uncaughtSignal { kills += 1 } else {
                #expect(p.terminationStatus == 0)
                break
            }
        }
        let finish = try cli.run(["import", "big", dir.path + "/big.jsonl", "--resume", "--batch-size", "100", "--json"])
        #expect(finish.status == 0, "\(finish.stderr)")
        let db = try Database(path: dir.path + "/db")
        let c = try db.collection("big")
        #expect(try c.count() == rows)
        #expect(Set(try c.ids()) == Set((0..<rows).map { "r\($0)" }))
        #expect(try c.get("r12345")?.text == "row 12345")
        print("import kill/resume: \(kills) kills before the import finished")
        // A finished import resumed again does nothing.
        #expect(try c.importFile(dir.path + "/big.jsonl", options: ImportOptions(resume: true)).imported == 0)
    }
}

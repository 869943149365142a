import Foundation
import Testing
import QuiverTestSupport
@testable import Quiver

/// Careless and hostile input on the command line: invalid UTF-8, malformed vectors, unknown
/// columns, and names that must not be echoed whole or raw.
extension CLITests {
    /// `put` refuses invalid UTF-8 as `import` does (never turning it into U+FFFD, which would make
    /// two different ids one), naming the line, in JSON Lines and in a JSON array.
    @Test func putRefusesInvalidUTF8AsImportDoes() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/db")
        try cli.run(["init"])
        try cli.run(["create", "c", "--dimension", "2"])
        // "a\xFF" and "a\xFE" are two different ids that U+FFFD would have made one.
        let lines = Array(#"{"id":"ok","vector":[1,0]}"#.utf8) + [10] + Array(#"{"id":"a"#.utf8) + [0xFF] + Array(#"","vector":[0,1]}"#.utf8) + [10]
            + Array(#"{"id":"a"#.utf8) + [0xFE] + Array(#"","vector":[1,1]}"#.utf8) + [10]
        try Data(lines).write(to: URL(fileURLWithPath: dir.path + "/bad.jsonl"))
        let put = try cli.run(["put", "c", dir.path + "/bad.jsonl"])
        #expect(put.status == 1 && put.stderr.contains("line 2: invalid UTF-8 at byte 9 (0xFF)"), "\(put.stderr)")
        let array = Array("[\n".utf8) + Array(#"{"id":"ok","vector":[1,0]},"#.utf8) + [10] + Array(#"{"id":"a"#.utf8) + [0xC3, 0x28] + Array(#"","vector":[0,1]}]"#.utf8)
        try Data(array).write(to: URL(fileURLWithPath: dir.path + "/bad.json"))
        let putArray = try cli.run(["put", "c", dir.path + "/bad.json"])
        #expect(putArray.status == 1 && putArray.stderr.contains("line 3: invalid UTF-8"), "\(putArray.stderr)")
        let db = try Database(path: dir.path + "/db", options: DatabaseOptions(readOnly: true))
        #expect(try db.collection("c").count() == 0, "a rejected input wrote documents")
        let imported = try cli.run(["import", "c", dir.path + "/bad.jsonl"])
        #expect(imported.status == 1 && imported.stderr.contains(":2: invalid UTF-8 at byte 9 (0xFF)"), "\(imported.stderr)")
        // The library's JSON reader is the shared path.
        #expect(throws: QuiverError.invalidArgument("invalid UTF-8 at byte 9 (0xFF)")) { try Document(json: Data(Array(#"{"id":"a"#.utf8) + [0xFF] + Array(#""}"#.utf8))) }
        #expect(Document.invalidUTF8Offset(Array("héllo".utf8)) == nil)
        #expect(Document.invalidUTF8Offset([0x61, 0xE2, 0x82]) == 1)  // a truncated sequence
        // CRLF line ends are whitespace, not part of the document.
        #expect(try cli.run(["put", "c"], stdin: "{\"id\":\"r\",\"vector\":[1,0]}\r\n{\"id\":\"s\",\"vector\":[0,1]}\r\n").stdout.contains("Wrote 2"))
    }

    @Test func malformedVectorsAndUnknownColumnsAreRefused() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/db")
        try cli.run(["init"])
        try cli.run(["create", "c", "--dimension", "2"])
        try cli.run(["put", "c"], stdin: #"{"id":"a","vector":[1,0]}"#)
        for (bad, says) in [("[1,2,3,4", "no closing ']'"), ("1,0]", "no opening '['"), ("[1,,0]", "component 2"), ("[]", "empty"),
                            ("[1,0],", "no closing"), ("1,x", "'x', is not a number"), ("[[1,0]]", "is not a number"), ("[", "no closing")] {
            let r = try cli.run(["search", "c", "--vector", bad])
            #expect(r.status == 2 && r.stderr.contains(says), "--vector \(bad): \(r.status) \(r.stderr)")
        }
        for good in ["[1, 0]", " 1,0 ", "[0.5,0.5]"] {
            let r = try cli.run(["search", "c", "--vector", good])
            #expect(r.status == 0 && r.stdout.contains("a"), "--vector \(good): \(r.stderr)")
        }
        try "id,vector,year\nb,1 1,2020\n".write(toFile: dir.path + "/in.csv", atomically: true, encoding: .utf8)
        let unknown = try cli.run(["import", "c", dir.path + "/in.csv", "--type", "nocol:int"])
        #expect(unknown.status == 1 && unknown.stderr.contains("column 'nocol', which the header does not have (columns: id, vector, year)"), "\(unknown.stderr)")
        let known = try cli.run(["import", "c", dir.path + "/in.csv", "--type", "year:int"])
        #expect(known.status == 0, "\(known.stderr)")
    }

    /// A 10 KB name is shortened in messages, and control characters in names are escaped, in the
    /// library's descriptions and in what the CLI prints.
    @Test func namesInMessagesAreShortenedAndEscaped() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/db")
        try cli.run(["init"])
        let long = String(repeating: "x", count: 10_240)
        for args in [["create", long, "--dimension", "2"], ["get", long, "a"], ["search", long, "--vector", "1,2"]] {
            let r = try cli.run(args)
            #expect(r.status == 1 && r.stderr.contains("xxxx…' (10240 bytes)") && r.stderr.utf8.count < 400, "\(args[0]): \(r.stderr.prefix(300))")
        }
        let hostile = "a\u{1B}[31mred\nline2"
        for args in [["create", hostile, "--dimension", "2"], ["get", hostile, "a"], ["drop", hostile], ["search", "c", "--mode", hostile, "--text", "t"]] {
            let r = try cli.run(args)
            #expect(r.status != 0 && !r.stderr.utf8.contains(0x1B) && r.stderr.split(separator: "\n").count == 1, "\(args[0]): \(r.stderr.debugDescription)")
            #expect(r.stderr.contains(#"a\u{1B}[31mred\nline2"#), "\(args[0]): \(r.stderr.debugDescription)")
        }
        // The library's descriptions do the same.
        #expect(QuiverError.unknownCollection(long).description == "no collection named '" + String(repeating: "x", count: 64) + "…' (10240 bytes)")
        #expect(QuiverError.duplicateID(collection: "c", id: "x\u{7F}\u{202E}y\tz", index: 0).description == #"document 'x\u{7F}\u{202E}y\tz' (record 0) already exists in 'c'"#)
        #expect(MessageText.quoted("short") == "'short'")
    }
}

extension CLITests {
    @Test func unknownCommandsAndOptionsSuggestTheClosest() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/db")
        let command = try cli.run(["serch"])
        #expect(command.status == 2 && command.stderr.contains("did you mean 'search'?"))
        let option = try cli.run(["search", "c", "--filtr", "x"])
        #expect(option.status == 2 && option.stderr.contains("did you mean '--filter'?"))
        #expect(try !cli.run(["zzzzzz"]).stderr.contains("did you mean"))
        #expect(MessageText.closest(to: "yaer", among: ["year", "venue"]) == "year")
        #expect(MessageText.closest(to: "title", among: ["year", "venue"]) == nil)
    }

    @Test func getIndentsMultiLineText() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/db")
        try cli.run(["init"])
        try cli.run(["create", "c", "--dimension", "2"])
        try cli.run(["put", "c"], stdin: #"{"id":"a","text":"one\ntwo","vector":[1,0]}"#)
        #expect(try cli.run(["get", "c", "a"]).stdout.contains("text:     one\n          two\n"))
    }
}

import Foundation
import Testing
import QuiverTestSupport
@testable import Quiver

/// `quiver search --diversity` and `--group-by`: the same answers as the library, the documented
/// output shapes, and usage errors.
struct SearchShapeCLITests {
    /// A database with 200 3-d vectors; `cat` is one of 5 strings, missing on every 4th document.
    static func prepared() throws -> (TemporaryDirectory, CLI) {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/db")
        #expect(try cli.run(["init"]).status == 0)
        #expect(try cli.run(["create", "p", "--dimension", "3"]).status == 0)
        var lines: [String] = []
        for i in 0..<200 {
            let a = Double(i) * 0.05
            let meta = i % 4 == 0 ? "{}" : #"{"cat": "c\#(i % 5)"}"#
            lines.append(#"{"id": "d\#(i)", "metadata": \#(meta), "vector": [\#(cos(a)), \#(sin(a)), \#(Double(i % 7) / 7)]}"#)
        }
        #expect(try cli.run(["put", "p"], stdin: lines.joined(separator: "\n")).status == 0)
        return (dir, cli)
    }

    @Test func answersEqualTheLibrarysAndShapesAreAsDocumented() throws {
        let (dir, cli) = try Self.prepared()
        let query: [Float] = [1, 0.2, 0.3]
        // Diversity: JSON results as the library's.
        let mmr = try cli.run(["search", "p", "--vector", "1,0.2,0.3", "-k", "4", "--diversity", "0.6", "--diversity-candidates", "30", "--json"])
        #expect(mmr.status == 0, "\(mmr.stderr)")
        let mmrJSON = try JSONDecoder().decode([SearchResult].self, from: Data(mmr.stdout.utf8))
        // Group by: JSON groups as the library's, each {"value": ..., "hits": [...]}.
        let grouped = try cli.run(["search", "p", "--vector", "1,0.2,0.3", "-k", "3", "--group-by", "cat", "--group-size", "2", "--json"])
        #expect(grouped.status == 0, "\(grouped.stderr)")
        let groupsJSON = try JSONDecoder().decode([SearchGroup].self, from: Data(grouped.stdout.utf8))
        let db = try Database(path: dir.path + "/db", options: DatabaseOptions(readOnly: true))
        let c = try db.collection("p")
        let library = try c.search(vector: query, k: 4, options: SearchOptions(diversity: 0.6, candidates: 30))
        #expect(mmrJSON.map(\.id) == library.map(\.id) && mmrJSON.count == 4)
        let libraryGroups = try c.searchGroups(vector: query, k: 3, options: SearchOptions(groupBy: "cat", groupSize: 2))
        #expect(groupsJSON.map(\.value) == libraryGroups.map(\.value) && groupsJSON.map { $0.hits.map(\.id) } == libraryGroups.map { $0.hits.map(\.id) })
        #expect(groupsJSON.count == 3 && groupsJSON.allSatisfy { $0.hits.count == 2 })
        db.close()
        // Human output: a heading per group, and the plan's lines with --explain.
        let human = try cli.run(["search", "p", "--vector", "1,0.2,0.3", "-k", "2", "--group-by", "cat", "--explain"])
        #expect(human.status == 0)
        #expect(human.stdout.contains("cat = \"\(libraryGroups[0].value.stringValue!)\" (1 hit(s))"), "\(human.stdout)")
        #expect(human.stdout.contains("grouping: group by 'cat', size 1: 2 group(s)"), "\(human.stdout)")
        let explained = try cli.run(["search", "p", "--vector", "1,0.2,0.3", "-k", "3", "--diversity", "0.5", "--explain"])
        #expect(explained.stdout.contains("diversity: MMR with diversity 0.5"), "\(explained.stdout)")
        let help = try cli.run(["search", "--help"])
        #expect(help.stdout.contains("--diversity <0..1>") && help.stdout.contains("--group-by <field>"))
    }

    @Test func badValuesAreUsageErrors() throws {
        let (dir, cli) = try Self.prepared()
        defer { withExtendedLifetime(dir) {} }  // the database lives until the end
        let v = ["search", "p", "--vector", "1,0,0"]
        for (extra, status, message) in [
            (["--diversity", "1.5"], Int32(2), "--diversity must be a number between 0"),
            (["--diversity", "nan"], 2, "--diversity must be a number between 0"),
            (["--diversity", "abc"], 2, "--diversity must be a number between 0"),
            (["--diversity-candidates", "20"], 2, "--diversity-candidates needs --diversity"),
            (["--diversity", "0.5", "--diversity-candidates", "3"], 2, "--diversity-candidates must be an integer between 10"),
            (["--group-size", "2"], 2, "--group-size needs --group-by"),
            (["--group-by", "cat", "--group-size", "0"], 2, "--group-size must be an integer between 1"),
            (["--group-by", "cat", "--diversity", "0.5"], 2, "do not combine"),
            (["--group-by", "caat"], 1, "no document of 'p' has the field 'caat'"),
        ] {
            let r = try cli.run(v + extra)
            #expect(r.status == status && r.stderr.contains(message), "\(extra): \(r.status) \(r.stderr)")
        }
    }
}

import Foundation
import Testing
import QuiverTestSupport
@testable import Quiver

/// Runs the built `quiver` binary as a user would.
struct CLI {
    let db: String

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    @discardableResult
    func run(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try builtProduct("quiver"))
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["QUIVER_DB"] = db
        env.merge(environment) { $1 }
        p.environment = env
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input
        try p.run()
        if let s = stdin { input.fileHandleForWriting.write(Data(s.utf8)) }
        try input.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}

struct CLITests {
    @Test func everyCommandHasHelpWithAnExample() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/db")
        let top = try cli.run(["--help"])
        #expect(top.status == 0)
        let names = ["init", "create", "collections", "drop", "put", "get", "delete", "search", "embed", "stats", "compact", "verify", "backup", "restore", "import", "export", "index", "demo"]
        for name in names {
            #expect(top.stdout.contains("  \(name) "), "\(name) missing from quiver --help")
            let r = try cli.run([name, "--help"])
            #expect(r.status == 0 && r.stdout.contains("USAGE: quiver \(name)") && r.stdout.contains("EXAMPLES:"), "quiver \(name) --help")
        }
    }

    @Test func endToEndWithJSONOutput() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/db")
        #expect(try cli.run(["init"]).status == 0)
        #expect(try cli.run(["create", "pts", "--dimension", "3", "--metric", "l2"]).status == 0)
        let input = """
        {"id": "a", "text": "first", "metadata": {"n": 1, "tags": ["x"]}, "vector": [0, 0, 0]}
        {"id": "b", "vector": [1, 0, 0]}

        {"id": "c", "vector": [5, 5, 5]}
        """
        let put = try cli.run(["put", "pts", "-"], stdin: input)
        #expect(put.status == 0 && put.stdout.contains("Wrote 3"), "\(put.stderr)")
        let search = try cli.run(["search", "pts", "--vector", "[0.9, 0, 0]", "-k", "2", "--json"])
        #expect(search.status == 0)
        let hits = try JSONDecoder().decode([SearchResult].self, from: Data(search.stdout.utf8))
        #expect(hits.map(\.id) == ["b", "a"])
        #expect(abs(hits[0].score - 0.1) < 1e-5)
        let get = try cli.run(["get", "pts", "a", "--json"])
        let docs = try JSONDecoder().decode([Document].self, from: Data(get.stdout.utf8))
        #expect(docs == [Document(id: "a", text: "first", metadata: ["n": 1, "tags": ["x"]], vector: [0, 0, 0])])
        let collections = try cli.run(["collections"])
        #expect(collections.stdout.contains("pts") && collections.stdout.contains("3"))
        let compact = try cli.run(["compact", "pts"])
        #expect(compact.status == 0 && compact.stdout.contains("1 sealed segment(s), 3 vectors") && compact.stderr.contains("sealing 3 vectors"), "\(compact.stdout)\(compact.stderr)")
        #expect(try cli.run(["delete", "pts", "a"]).stdout.contains("Deleted 1"))
        // No document has tags any more: allowed explicitly.
        #expect(try cli.run(["delete", "pts", "--filter", "tags = \"nope\"", "--allow-unknown-fields"]).stdout.contains("Deleted 0"))
        #expect(try cli.run(["delete", "pts"]).status == 2)
        let verify = try cli.run(["verify"])
        #expect(verify.status == 0 && verify.stdout.contains("OK"), "\(verify.stdout)")
        let stats = try cli.run(["stats", "--json"])
        let s = try JSONDecoder().decode(DatabaseStats.self, from: Data(stats.stdout.utf8))
        #expect(s.collections.first?.documents == 2)
        #expect(s.collections.first?.index?.sealedVectors == 3 && s.collections.first?.index?.deletedVectors == 1)
        #expect(s.collections.first?.index?.kinds == ["hnsw"])
    }

    /// `create --index` and its IVF-PQ options, their errors, `search --nprobe/--rerank`, and the
    /// per-kind memory table of `stats`.
    @Test func indexKindsFromTheCommandLine() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/db")
        try cli.run(["init"])
        #expect(try cli.run(["create", "x", "--dimension", "8", "--index", "bogus"]).stderr.contains("--index must be hnsw, ivfpq, flat or auto"))
        #expect(try cli.run(["create", "x", "--dimension", "8", "--index", "ivfpq", "--pq-bytes", "3"]).stderr.contains("pqBytes (3) must divide the dimension (8)"))
        #expect(try cli.run(["create", "x", "--dimension", "8", "--memory-budget", "1G"]).status == 2)
        #expect(try cli.run(["create", "x", "--dimension", "8", "--index", "auto", "--memory-budget", "lots"]).status == 2)
        let created = try cli.run(["create", "v", "--dimension", "8", "--metric", "l2", "--index", "ivfpq", "--pq-bytes", "2",
                                   "--segment-size", "1000", "--nprobe", "4", "--json"])
        #expect(created.status == 0 && created.stdout.contains("\"kind\" : \"ivfpq\""), "\(created.stdout)")
        var lines = ""
        for i in 0..<1_200 { lines += "{\"id\":\"\(i)\",\"vector\":[\((0..<8).map { j in String(Double((i * 7 + j * 13) % 101) / 10) }.joined(separator: ","))]}\n" }
        #expect(try cli.run(["put", "v"], stdin: lines).status == 0)
        #expect(try cli.run(["compact", "v"]).status == 0)
        let stats = try cli.run(["stats"])
        #expect(stats.stdout.contains("BYTES/VECTOR") && stats.stdout.contains("ivfpq"), "\(stats.stdout)")
        let hit = try cli.run(["search", "v", "--vector", "0,1.3,2.6,3.9,5.2,6.5,7.8,9.1", "-k", "1", "--nprobe", "64", "--rerank", "1000", "--explain"])
        #expect(hit.status == 0 && hit.stdout.contains("IVF-PQ segment(s) probe"), "\(hit.stdout)")
        #expect(try cli.run(["search", "v", "--vector", "0,0,0,0,0,0,0,0", "--nprobe", "0"]).status == 2)
    }

    @Test func errorsAreOneLineWithExitCodes() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/db")
        let noDB = try cli.run(["collections"])
        #expect(noDB.status == 1 && noDB.stderr.hasPrefix("quiver: error: ") && noDB.stderr.split(separator: "\n").count == 1)
        try cli.run(["init"])
        try cli.run(["create", "pts", "--dimension", "2"])
        let badLine = try cli.run(["put", "pts"], stdin: "{\"id\":\"ok\",\"vector\":[1,2]}\n{\"id\":\"bad\",\"vector\":[1,\"x\"]}\n")
        #expect(badLine.status == 1 && badLine.stderr.contains("line 2"), "\(badLine.stderr)")
        #expect(try Database(path: dir.path + "/db").collection("pts").count() == 0, "a rejected input wrote documents")
        let wrongDim = try cli.run(["put", "pts"], stdin: "{\"id\":\"w\",\"vector\":[1,2,3]}\n")
        #expect(wrongDim.status == 1 && wrongDim.stderr.contains("'w'") && wrongDim.stderr.contains("dimension 2"))
        #expect(try cli.run(["search", "pts", "--vector", "1,2", "--bogus"]).status == 2)
        #expect(try cli.run(["search", "pts"]).status == 2)
        #expect(try cli.run(["create", "x", "--dimension", "0"]).status == 2)
        #expect(try cli.run(["nonsense"]).status == 2)
        #expect(try cli.run(["get", "nope", "a"]).stderr.contains("no collection named 'nope'"))
        let missing = try cli.run(["get", "pts", "ghost"])
        #expect(missing.status == 1 && missing.stderr.contains("ghost"))
        #expect(try cli.run(["drop", "pts"]).status == 1)
        #expect(try cli.run(["drop", "pts", "--yes"]).status == 0)
    }

    @Test func textCollectionsEmbedAndSearch() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/db")
        try cli.run(["init"])
        #expect(try cli.run(["create", "notes", "--encoder", "all-MiniLM-L6-v2"]).stdout.contains("384-d"))
        let put = try cli.run(["put", "notes"], stdin: """
            {"id": "cat", "text": "The cat sat on the mat."}
            {"id": "stocks", "text": "Stock markets fell sharply on Monday."}
            """)
        #expect(put.status == 0, "\(put.stderr)")
        let hits = try JSONDecoder().decode([SearchResult].self, from: Data(try cli.run(["search", "notes", "--text", "a kitten", "--json"]).stdout.utf8))
        #expect(hits.first?.id == "cat" && hits.first?.text == "The cat sat on the mat.")
        let embedded = try JSONDecoder().decode([Float].self, from: Data(try cli.run(["embed", "hello world", "--json"]).stdout.utf8))
        #expect(embedded.count == 384 && abs(embedded.map { $0 * $0 }.reduce(0, +) - 1) < 1e-3)
        #expect(try cli.run(["search", "notes", "--text", "x", "--vector", "1"]).status == 2)
        #expect(try cli.run(["embed", "x", "--encoder", "nope"]).status == 1)
    }

    @Test func largeDeleteByFilterNeedsConfirmation() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/db")
        try cli.run(["init"])
        try cli.run(["create", "c", "--dimension", "1"])
        let input = (0..<150).map { "{\"id\":\"d\($0)\",\"metadata\":{\"old\":\($0 < 120)},\"vector\":[1]}" }.joined(separator: "\n")
        #expect(try cli.run(["put", "c"], stdin: input).status == 0)
        let refused = try cli.run(["delete", "c", "--filter", "old = true"])
        #expect(refused.status == 1 && refused.stderr.contains("matches 120 documents"))
        #expect(try cli.run(["delete", "c", "--filter", "{\"old\": true}", "--yes"]).stdout.contains("Deleted 120"))
        #expect(try cli.run(["delete", "c", "--filter", "old = false"]).stdout.contains("Deleted 30"))
    }

    @Test func demoRuns() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/unused")
        let r = try cli.run(["demo", dir.path + "/demo"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("1  red"))
        #expect(r.stdout.contains("texts embedded on write by all-MiniLM-L6-v2"))
        // Running it again replaces the demo collection.
        #expect(try cli.run(["demo", dir.path + "/demo"]).status == 0)
    }
}

import Foundation
import Testing
import QuiverCore
import QuiverEncoder
import QuiverTestSupport
@testable import Quiver

/// Near-duplicate detection: planted duplicates of real SciFact sentences (small edits and
/// paraphrases, embedded by the built-in encoder) are all found, the index join agrees with the
/// exact join, the two clusterings follow their definitions, and `--delete` keeps one per cluster
/// by the rule asked for, only after the dry run and with --yes.
struct NearDuplicateTests {
    /// The first sentence of each of the first `n` SciFact abstracts (long enough to be distinct).
    static func sentences(_ n: Int) throws -> [String] {
        let lines = try String(contentsOf: SharedData.data("scifact").appendingPathComponent("corpus.jsonl"), encoding: .utf8).split(separator: "\n")
        var out: [String] = []
        for line in lines where out.count < n {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            let text = (object?["text"] as? String) ?? ""
            guard let end = text.range(of: ". ") else { continue }
            let sentence = String(text[..<end.lowerBound]) + "."
            if sentence.count > 60 && !out.contains(sentence) { out.append(sentence) }
        }
        return out
    }

    /// Small edits of a sentence, the kind a copy-paste or a re-typing makes.
    static func edits(_ s: String) -> [String] {
        var words = s.split(separator: " ").map(String.init)
        // A doubled letter in the last long word (a typo that leaves the word recognisable).
        let typo = words.indices.last { words[$0].count > 6 }.map { i -> String in
            var w = Array(words[i]); w.insert(w[3], at: 3); var copy = words; copy[i] = String(w); return copy.joined(separator: " ")
        } ?? s
        words.removeLast()
        return [s.lowercased(), typo, "In short: " + s, words.joined(separator: " ") + "."]
    }

    @Test func plantedNearDuplicatesAreAllFound() throws {
        let originals = try Self.sentences(400)
        #expect(originals.count == 400)
        let planted = Array(stride(from: 0, to: 400, by: 40))   // 10 planted clusters
        var documents = originals.enumerated().map { Document(id: "s\($0.offset)", text: $0.element) }
        var plantedClusters: [Set<String>] = []
        for i in planted {
            var members: Set<String> = ["s\(i)"]
            for (j, e) in Self.edits(originals[i]).enumerated() {
                documents.append(Document(id: "s\(i)-e\(j)", text: e))
                members.insert("s\(i)-e\(j)")
            }
            plantedClusters.append(members)
        }
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("s", encoder: EncoderRegistry.defaultEncoderName,
                                        options: CollectionOptions(index: IndexSettings(kind: .hnsw, segmentSize: 150)))
        // Shuffled so that duplicates land in different segments, some in the mutable one.
        var rng = SplitMix64(state: 3)
        _ = try c.insert(documents.shuffled(using: &rng))
        db.waitForMaintenance()
        #expect(try db.stats().collections[0].index!.byKind.contains { $0.kind == .hnsw })
        let report = try c.nearDuplicates(threshold: 0.9)
        let exact = try c.nearDuplicates(threshold: 0.9, exact: true)
        #expect(report.documents == documents.count && report.exact == false && exact.exact)
        #expect(Set(report.pairs.map { [$0.a, $0.b] }) == Set(exact.pairs.map { [$0.a, $0.b] }))
        // The same pairs give the same clusters (scores may differ in the last bits between kinds).
        #expect(report.clusters.map(\.members) == exact.clusters.map(\.members))
        #expect(report.clusters.map(\.representative) == exact.clusters.map(\.representative))
        for members in plantedClusters {
            let found = report.clusters.filter { !Set($0.members).isDisjoint(with: members) }
            let ok = found.count == 1 && members.isSubset(of: Set(found.first?.members ?? []))
            #expect(ok, "planted \(members.sorted()) found as \(found.map(\.members))")
            if !ok { print("missed planted near-duplicates:", members.sorted(), documents.filter { members.contains($0.id) }.map { $0.text ?? "" }) }
        }
        // Each pair once, every score at or above the threshold, every cluster's pairs inside it.
        #expect(Set(report.pairs.map { [$0.a, $0.b].sorted() }).count == report.pairs.count)
        #expect(report.pairs.allSatisfy { $0.score >= 0.9 && $0.a != $0.b })
        for cluster in report.clusters {
            #expect(cluster.members.contains(cluster.representative))
            #expect(cluster.pairs.allSatisfy { cluster.members.contains($0.a) && cluster.members.contains($0.b) })
        }
        // A filter restricts both sides: only the originals (no edits) leaves no planted pair.
        try c.upsert(documents.map { d in var d = d; d.metadata = ["edit": .bool(d.id.contains("-e"))]; return d })
        let originalsOnly = try c.nearDuplicates(threshold: 0.9, filter: .field("edit", .equal(.bool(false))))
        #expect(originalsOnly.documents == originals.count)
        #expect(originalsOnly.pairs.allSatisfy { !$0.a.contains("-e") && !$0.b.contains("-e") })
    }

    /// Hand-written paraphrases (the duplicate questions and restated claims the seed names), not
    /// edits: embedded by the built-in encoder, each group of three is one cluster at 0.75, and the
    /// distractors (the same topics, other questions) join none. The pairs' scores with this model
    /// were 0.72-0.95 inside a group (each group connected above 0.77) and at most 0.58 across.
    @Test func plantedParaphrasesAreFound() throws {
        let groups = [
            ["How do I reset my password?", "I forgot my password, how can I reset it?", "What is the way to reset a forgotten password?"],
            ["The app crashes when I open the camera.", "Opening the camera makes the app crash.", "Every time I open the camera the application crashes."],
            ["Can I get a refund for my order?", "I would like a refund for my order.", "How do I get my money back for an order?"],
            ["Vitamin D supplementation reduces the risk of bone fractures in older adults.",
             "In older adults, taking vitamin D supplements lowers the risk of fractured bones.",
             "Older people who take vitamin D supplements have fewer bone fractures."],
            ["Smoking increases the risk of lung cancer.", "The risk of lung cancer is higher in smokers.", "Smokers are more likely to develop lung cancer."],
        ]
        let distractors = ["How do I change my email address?", "The app is slow when loading photos.", "Where can I download my invoice?",
                           "Vitamin C does not prevent the common cold.", "Regular exercise lowers blood pressure.", "My order arrived damaged.",
                           "How do I delete my account?", "Alcohol consumption is linked to liver disease."]
        var documents: [Document] = []
        for (g, texts) in groups.enumerated() {
            for (i, t) in texts.enumerated() { documents.append(Document(id: "g\(g)-\(i)", text: t)) }
        }
        for (i, t) in distractors.enumerated() { documents.append(Document(id: "x\(i)", text: t)) }
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("tickets", encoder: EncoderRegistry.defaultEncoderName)
        var rng = SplitMix64(state: 7)
        _ = try c.insert(documents.shuffled(using: &rng))
        let report = try c.nearDuplicates(threshold: 0.75)
        let expected = groups.indices.map { g in Set(groups[g].indices.map { "g\(g)-\($0)" }) }
        #expect(Set(report.clusters.map { Set($0.members) }) == Set(expected))
        #expect(Set(report.pairs.map { [$0.a, $0.b].sorted() }) == Set(try c.nearDuplicates(threshold: 0.75, exact: true).pairs.map { [$0.a, $0.b].sorted() }))
    }

    /// Connected components join chains; the representative clustering keeps every member within
    /// the threshold of its representative.
    @Test func clusteringFollowsItsDefinition() {
        // 1-2-3-4 a chain, 2-5 a branch; 10-11 apart.
        let pairs: [(a: UInt64, b: UInt64)] = [(1, 2), (2, 3), (3, 4), (2, 5), (10, 11)]
        let connected = NearDuplicateGrouping.clusters(pairs, clustering: .connected)
        #expect(connected.map(\.members) == [[1, 2, 3, 4, 5], [10, 11]])
        #expect(connected.map(\.representative) == [2, 10])
        let strict = NearDuplicateGrouping.clusters(pairs, clustering: .representative)
        // 2 has the most pairs: {1, 2, 3, 5}; 4's only neighbour is taken, so 4 is in no cluster.
        #expect(strict.map(\.members) == [[1, 2, 3, 5], [10, 11]])
        #expect(strict.map(\.representative) == [2, 10])
        for g in strict {
            #expect(g.members.allSatisfy { m in m == g.representative || pairs.contains { ($0.a == m && $0.b == g.representative) || ($0.b == m && $0.a == g.representative) } })
        }
        #expect(NearDuplicateGrouping.clusters([], clustering: .connected).isEmpty)
    }

    /// Three clusters of exact copies (score 1) with different texts and a `rank` field.
    static func duplicated(_ dir: TemporaryDirectory) throws -> (Database, Collection) {
        let db = try Database(path: dir.path)
        let c = try db.createCollection("d", dimension: 3, metric: .cosine)
        try c.insert([
            Document(id: "a1", text: "short", metadata: ["rank": 2], vector: [1, 0, 0]),
            Document(id: "a2", text: "the longest text", metadata: ["rank": 1], vector: [1, 0, 0.001]),
            Document(id: "a3", text: "medium text", metadata: ["rank": 5], vector: [1, 0.001, 0]),
            Document(id: "b1", text: "bb", vector: [0, 1, 0]),
            Document(id: "b2", text: "bbbb", metadata: ["rank": 0], vector: [0, 1, 0.001]),
            Document(id: "lone", text: "alone", vector: [0, 0, 1]),
        ])
        return (db, c)
    }

    @Test(arguments: [("first", ["a1", "b1"]), ("longest", ["a2", "b2"]), ("rank", ["a3", "b2"])])
    func deleteKeepsOnePerClusterByTheRule(rule: String, kept: [String]) throws {
        let dir = TemporaryDirectory()
        let (db, c) = try Self.duplicated(dir)
        let report = try c.nearDuplicates(threshold: 0.99)
        #expect(report.clusters.map(\.members) == [["a1", "a2", "a3"], ["b1", "b2"]])
        let plan = try c.deletions(report.clusters, keep: NearDuplicateKeep(parsing: rule))
        #expect(plan.map(\.keep) == kept)
        #expect(try c.count() == 6)   // the dry run deletes nothing
        let logged = try db.stats().lastSequence
        #expect(try c.apply(plan) == 3)
        // One atomic batch per cluster: one log record each, whatever the cluster's size.
        #expect(try db.stats().lastSequence == logged + 2)
        #expect(try Set(c.ids()) == Set(kept + ["lone"]))
        #expect(try c.nearDuplicates(threshold: 0.99).clusters.isEmpty)
        #expect(throws: QuiverError.self) { try c.deletions(report.clusters, keep: .field("nosuchfield")) }
    }

    @Test func theCLIDeletesOnlyAfterTheDryRunAndWithYes() throws {
        let dir = TemporaryDirectory()
        let (db, _) = try Self.duplicated(dir)
        db.close()
        let cli = CLI(db: dir.path)
        let help = try cli.run(["dedup", "--help"])
        #expect(help.status == 0 && help.stdout.contains("--threshold") && help.stdout.contains("EXAMPLES:"))
        let listed = try cli.run(["dedup", "d", "--threshold", "0.99", "--output", dir.path + "/clusters.jsonl"])
        #expect(listed.status == 0 && listed.stdout.contains("2 cluster(s)"), "\(listed.stdout)\(listed.stderr)")
        let lines = try String(contentsOfFile: dir.path + "/clusters.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2 && lines[0].contains("\"representative\""))
        let dry = try cli.run(["dedup", "d", "--threshold", "0.99", "--delete", "--keep", "longest"])
        #expect(dry.status == 0 && dry.stdout.contains("Dry run") && dry.stdout.contains("keep a2; delete a1, a3") && dry.stdout.contains("Nothing was deleted"), "\(dry.stdout)")
        #expect(try cli.run(["get", "d", "a1"]).status == 0)
        #expect(try cli.run(["dedup", "d", "--threshold", "0.99", "--yes"]).status == 2)
        #expect(try cli.run(["dedup", "d", "--threshold", "0.99", "--keep", "first"]).status == 2)
        #expect(try cli.run(["dedup", "d"]).status == 2)
        #expect(try cli.run(["dedup", "d", "--threshold", "abc"]).status == 2)
        let done = try cli.run(["dedup", "d", "--threshold", "0.99", "--delete", "--keep", "longest", "--yes", "--json"])
        #expect(done.status == 0, "\(done.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(done.stdout.utf8)) as? [String: Any]
        #expect(object?["deleted"] as? Int == 3 && object?["dryRun"] as? Bool == false)
        let left = try cli.run(["get", "d", "a1"])
        #expect(left.status != 0)
        #expect(try cli.run(["get", "d", "a2"]).status == 0 && cli.run(["get", "d", "b2"]).status == 0 && cli.run(["get", "d", "lone"]).status == 0)
    }

    /// The swift block of docs/library.md's "Range search and near-duplicates", run as written: the
    /// lines between the markers below are that block (indented), which this test checks first.
    @Test func libraryExampleRunsAsWritten() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        // docs/library.md begin
        let tickets = try db.createCollection("tickets", dimension: 3)
        try tickets.upsert([
            Document(id: "t1", text: "Printer jams", vector: [1, 0, 0]),
            Document(id: "t2", text: "The printer jams again", vector: [0.99, 0.1, 0]),
            Document(id: "t3", text: "Login fails", vector: [0, 1, 0]),
            Document(id: "t4", text: "Cannot log in", vector: [0.05, 1, 0]),
        ])
        // Range search: every document scoring at least 0.9, best first (k, when given, caps it).
        var range = SearchOptions()
        range.minScore = 0.9
        let close = try tickets.search(vector: [1, 0.2, 0], options: range)
        precondition(close.map(\.id) == ["t2", "t1"])

        // Near-duplicates: every pair at or above 0.95, in clusters.
        let report = try tickets.nearDuplicates(threshold: 0.95) { p in print("\(p.done) of \(p.total) documents") }
        precondition(report.clusters.map(\.members) == [["t1", "t2"], ["t3", "t4"]])
        precondition(report.pairs.allSatisfy { $0.score >= 0.95 })

        // Keep the longest text of each cluster: the dry run first, then one atomic batch per cluster.
        let plan = try tickets.deletions(report.clusters, keep: .longest)
        precondition(plan.map(\.keep) == ["t2", "t4"] && plan.map(\.delete) == [["t1"], ["t3"]])
        try tickets.apply(plan)
        let left = try tickets.ids()
        precondition(left == ["t2", "t4"])
        // docs/library.md end
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("docs/library.md"), encoding: .utf8)
        let shown = doc.components(separatedBy: "## Range search and near-duplicates")[1].components(separatedBy: "```swift\n")[1].components(separatedBy: "```")[0]
        let source = try String(contentsOfFile: #filePath, encoding: .utf8)
        let here = source.components(separatedBy: "// docs/library.md begin\n")[1].components(separatedBy: "        // docs/library.md end")[0]
        let unindented = here.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasPrefix("        ") ? String($0.dropFirst(8)) : String($0) }.joined(separator: "\n")
        #expect(unindented == shown, "the block of docs/library.md differs from this test's")
    }
}

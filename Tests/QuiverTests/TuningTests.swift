import Foundation
import Testing
import QuiverTestSupport
import QuiverCore
import QuiverTuning
import QuiverEncoder
@testable import Quiver

/// Query adapters on real text with the real model: SciFact titles as documents (the documents
/// judged relevant to at least two claims, then other titles as distractors) and SciFact claims as
/// queries, small enough to embed in seconds.
struct TuningTests {
    /// The shared data, embedded once for the whole suite.
    final class Fixture: @unchecked Sendable {
        let directory = TemporaryDirectory()
        let titles: [(id: String, text: String)]
        let pairs: [TrainingPair]

        init() throws {
            let folder = SharedData.data("scifact")
            func lines(_ file: String) throws -> [[String: Any]] {
                try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8).split(separator: "\n").map {
                    try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
                }
            }
            var judged: [String: Set<String>] = [:]
            for file in ["qrels_train.tsv", "qrels_test.tsv"] {
                for line in try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8).split(separator: "\n").dropFirst() {
                    let f = line.split(separator: "\t").map(String.init)
                    if f.count >= 3, (Int(f[2]) ?? 0) > 0 { judged[f[0], default: []].insert(f[1]) }
                }
            }
            // Documents that at least two claims are about, with all their claims, up to 400 claims:
            // most held-back claims are then about a document some training claim is about too.
            var claimsOf: [String: [String]] = [:]
            for (claim, docs) in judged { for d in docs { claimsOf[d, default: []].append(claim) } }
            let texts = Dictionary(uniqueKeysWithValues: (try lines("queries_train.jsonl") + lines("queries.jsonl")).map { ($0["_id"] as! String, $0["text"] as! String) })
            var chosenClaims: [String] = [], seen = Set<String>(), shared = Set<String>()
            for d in claimsOf.keys.sorted() where claimsOf[d]!.count >= 2 && chosenClaims.count < 400 {
                shared.insert(d)
                for c in claimsOf[d]!.sorted() where texts[c] != nil && seen.insert(c).inserted { chosenClaims.append(c) }
            }
            let corpus = try lines("corpus.jsonl").map { ($0["_id"] as! String, $0["title"] as! String) }
            titles = corpus.filter { shared.contains($0.0) } + corpus.filter { !shared.contains($0.0) }.prefix(150)
            var rng = SplitMix64(seed: 3)
            pairs = chosenClaims.map { c in TrainingPair(query: texts[c]!, positives: judged[c]!.filter(shared.contains).sorted()) }
                .filter { !$0.positives.isEmpty }.shuffled(using: &rng)
            let encoder = try EncoderRegistry.shared.encoder(named: "all-MiniLM-L6-v2")
            let m = try encoder.encode(documents: titles.map(\.text))
            vectors = Dictionary(uniqueKeysWithValues: titles.enumerated().map { ($1.id, m[row: $0]) })
        }

        /// A new database with the titles in collection `claims`.
        func database(_ path: String) throws -> (Database, Collection) {
            let db = try Database(path: path, options: DatabaseOptions(durability: .relaxed(milliseconds: 50)))
            let c = try db.createCollection("claims", encoder: "all-MiniLM-L6-v2", options: CollectionOptions(index: IndexSettings(kind: .flat)))
            try c.insert(titles.map { Document(id: $0.id, text: $0.text, vector: vectors[$0.id]) })
            return (db, c)
        }

        let vectors: [String: [Float]]
    }

    static let fixture = Result { try Fixture() }

    /// The collection's encoder identity check covers its adapters: an adapter stored for another
    /// encoder, or for other weights of the same one, is refused (never applied to vectors of a
    /// tower it was not trained on); the untuned search still works. `store` itself refuses such a
    /// binding, so the adapter is written into LMDB directly, as an adapter left from before the
    /// collection's encoder binding changed would be.
    @Test func anAdapterOfAnotherEncoderIsRefused() throws {
        let f = try Self.fixture.get()
        let (db, c) = try f.database(f.directory.path + "/other-encoder")
        defer { db.close() }
        var none = SearchOptions()
        none.adapter = .none
        let untuned = try c.search(text: f.pairs[0].query, k: 3, options: none)
        for (name, change) in [("other-model", { (b: inout EncoderBinding) in b.identifier = "all-MiniLM-L12-v2" }),
                               ("other-weights", { (b: inout EncoderBinding) in b.weightsChecksum = String(repeating: "0", count: 64) })] {
            var binding = c.info.encoder!
            change(&binding)
            #expect(throws: QuiverError.self) {
                try c.store(TuneReport.untrained(name, adapter: name, kind: "linear"), adapter: QueryAdapter.identity(.linear, dimension: 384),
                            fusion: nil, binding: binding, options: TuneOptions())
            }
            let key = StoredAdapter.key(c.info.number, name)
            let payload = try StoredAdapter(name: name, adapter: QueryAdapter.identity(.linear, dimension: 384), encoderIdentifier: binding.identifier,
                                            encoderWeights: binding.weightsChecksum, report: TuneReport.untrained(name, adapter: name, kind: "linear")).payload()
            try db.env.write { txn in try txn.put(db.tables.adapters, key, StoredValue.seal(payload, key: key)) }
            var named = SearchOptions()
            named.adapter = .named(name)
            #expect {
                try c.search(text: f.pairs[0].query, k: 3, options: named)
            } throws: { error in
                guard case QuiverError.encoder(let m) = error else { return false }
                return m.contains("'\(name)'") && m.contains("train it again")
            }
            #expect(try c.search(text: f.pairs[0].query, k: 3, options: none) == untuned)
        }
    }

    @Test func identityAdapterReproducesUntunedResultsExactly() throws {
        let f = try Self.fixture.get()
        let (db, c) = try f.database(f.directory.path + "/identity")
        defer { db.close() }
        let report = TuneReport.untrained("identity", adapter: "identity", kind: "linear")
        var options = TuneOptions()
        options.name = "identity"
        try c.store(report, adapter: QueryAdapter.identity(.linear, dimension: 384), fusion: nil, binding: c.info.encoder!, options: options)
        var none = SearchOptions()
        none.adapter = .none
        for pair in f.pairs.prefix(25) {
            let (tuned, plan) = try c.explain(text: pair.query, k: 10)
            #expect(plan.adapter == "identity")
            #expect(tuned == (try c.search(text: pair.query, k: 10, options: none)))
        }
        #expect(try c.adapters().map(\.name) == ["identity"])
    }

    /// An adapter trained on the right labels improves the held-back queries; one trained on labels
    /// shuffled between queries does not, beyond noise.
    @Test func shuffledLabelsDoNotImproveValidation() throws {
        let f = try Self.fixture.get()
        let (db, c) = try f.database(f.directory.path + "/shuffled")
        defer { db.close() }
        let corpus = try TuningCorpus(c)
        let queries = try Quiver.encode(f.pairs.map(\.query), with: try db.encoder(for: c.info), queries: true)
        let examples = f.pairs.enumerated().map { i, p in TrainingExample(query: queries[row: i], positives: p.positives.map { corpus.index[$0]! }) }
        let validation = Array(examples.suffix(60)), training = Array(examples.dropLast(60))
        var rng = SplitMix64(seed: 7)
        let shuffledPositives = training.map(\.positives).shuffled(using: &rng)
        let shuffled = zip(training, shuffledPositives).map { TrainingExample(query: $0.query, positives: $1) }
        var config = TrainerConfiguration()
        config.epochs = 30
        config.learningRate = 5e-4
        let trainer = AdapterTrainer(documents: corpus.vectors, configuration: config)
        let right = trainer.train(training, validation: validation)
        let wrong = trainer.train(shuffled, validation: validation)
        for e in right.epochs { print("right", e) }
        for e in wrong.epochs { print("wrong", e) }
        print("validation nDCG@10: untuned \(right.validationBefore), right labels \(right.validationAfter), shuffled \(wrong.validationAfter)")
        #expect(right.validationAfter - right.validationBefore > 0.03)
        #expect(wrong.validationAfter - wrong.validationBefore < 0.015)
    }

    @Test func adapterSurvivesReopenAndBackupRestore() throws {
        let f = try Self.fixture.get()
        let path = f.directory.path + "/survives"
        var (db, c) = try f.database(path)
        var options = TuneOptions()
        options.trainer.epochs = 4
        options.force = true
        let report = try c.tune(pairs: f.pairs, options: options)
        #expect(report.stored && report.trainingExamples + report.validationExamples == f.pairs.count)
        let queries = f.pairs.prefix(10).map(\.query)
        let before = try queries.map { try c.search(text: $0, k: 5) }
        var none = SearchOptions()
        none.adapter = .none
        #expect(try queries.map { try c.search(text: $0, k: 5, options: none) } != before)
        #expect(try db.backup(to: f.directory.path + "/backup").files > 0)
        db.close()
        db = try Database(path: path)
        c = try db.collection("claims")
        #expect(try queries.map { try c.search(text: $0, k: 5) } == before)
        #expect(try c.adapters().first?.report == report)
        db.close()
        _ = try Database.restore(backup: f.directory.path + "/backup", to: f.directory.path + "/restored")
        let restored = try Database(path: f.directory.path + "/restored")
        defer { restored.close() }
        #expect(try queries.map { try restored.collection("claims").search(text: $0, k: 5) } == before)
        #expect(try restored.verify().problems.isEmpty)
    }

    /// The catalog entry names the default adapter by the SHA-256 of its stored payload: an adapter
    /// put under that name behind the catalog's back (a valid checksum trailer, the right encoder)
    /// is refused by a search that would apply it as the default, naming both digests; the untuned
    /// search still works. Fails with the digest comparison in `adapter(for:)` removed.
    @Test func aDefaultAdapterThatIsNotTheCatalogsIsRefused() throws {
        let f = try Self.fixture.get()
        let (db, c) = try f.database(f.directory.path + "/digest")
        defer { db.close() }
        var options = TuneOptions()
        options.name = "guarded"
        // Never searched before the swap, so no decoded copy of it is cached under its digest.
        try c.store(TuneReport.untrained("digest-test", adapter: "guarded", kind: "linear"), adapter: QueryAdapter.identity(.linear, dimension: 384),
                    fusion: nil, binding: c.info.encoder!, options: options)
        let named = try #require(try db.describe("claims").tuning?.adapterDigest)
        var weights = [Float](repeating: 0, count: 384 * 384)
        for i in 0..<384 { weights[i * 384 + (i + 1) % 384] = 0.5 }
        let other = try StoredAdapter(name: "guarded", adapter: QueryAdapter(kind: .linear, dimension: 384, weights: weights),
                                      encoderIdentifier: c.info.encoder!.identifier, encoderWeights: c.info.encoder!.weightsChecksum,
                                      report: TuneReport.untrained("digest-test-other", adapter: "guarded", kind: "linear")).payload()
        let key = StoredAdapter.key(c.info.number, "guarded")
        try db.env.write { txn in try txn.put(db.tables.adapters, key, StoredValue.seal(other, key: key)) }
        #expect {
            try c.search(text: f.pairs[0].query, k: 3)
        } throws: { error in
            guard case QuiverError.storage(let e) = error else { return false }
            return "\(e)".contains("not the one its catalog entry names") && "\(e)".contains(String(named.prefix(16)))
                && "\(e)".contains(String(SHA256.hex(other).prefix(16)))
        }
        var none = SearchOptions()
        none.adapter = .none
        #expect(try c.search(text: f.pairs[0].query, k: 3, options: none).count == 3)
    }

    /// An adapter and the tuned fusion survive export of the collection's settings: documents
    /// exported and imported into another database, then the settings file applied, give the tuned
    /// searches (dense and hybrid) of the source exactly, with the same adapters and defaults. A
    /// damaged settings file, and one applied to a collection without the encoder, are refused and
    /// write nothing.
    @Test func adapterSurvivesExportOfSettings() throws {
        let f = try Self.fixture.get()
        let dir = f.directory.path
        let (db, c) = try f.database(dir + "/settings-source")
        defer { db.close() }
        var options = TuneOptions()
        options.trainer.epochs = 4
        options.force = true
        options.fusion = true
        options.name = "exported"
        #expect(try c.tune(pairs: f.pairs, options: options).stored)
        let queries = f.pairs.prefix(10).map(\.query)
        let dense = try queries.map { try c.search(text: $0, k: 5) }
        let hybrid = try queries.map { try c.search(text: $0, k: 5, mode: .hybrid) }
        try c.export(to: dir + "/settings-docs.jsonl", format: .jsonl)
        #expect(try c.exportSettings(to: dir + "/settings.json") == 1)

        let target = try Database(path: dir + "/settings-target", options: DatabaseOptions(durability: .relaxed(milliseconds: 50)))
        defer { target.close() }
        let t = try target.createCollection("copy", encoder: "all-MiniLM-L6-v2", options: CollectionOptions(index: IndexSettings(kind: .flat)))
        #expect(try t.importFile(dir + "/settings-docs.jsonl").imported == f.titles.count)
        #expect(try queries.map { try t.search(text: $0, k: 5) } != dense)

        // A damaged file (one payload byte changed) is refused by its digest; nothing is written.
        var damaged = try JSONDecoder().decode(CollectionSettingsFile.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/settings.json")))
        var bytes = Array(Data(base64Encoded: damaged.adapters[0].payload)!)
        bytes[bytes.count - 1] ^= 1
        damaged.adapters[0].payload = Data(bytes).base64EncodedString()
        #expect(throws: QuiverError.self) { try t.applySettings(damaged) }
        #expect(try t.adapters().isEmpty && target.describe("copy").tuning == nil)
        // A collection without the encoder (same dimension and metric) cannot take them.
        let bare = try target.createCollection("bare", dimension: 384)
        #expect {
            try bare.importSettings(from: dir + "/settings.json")
        } throws: { error in
            guard case QuiverError.encoder(let m) = error else { return false }
            return m.contains("not the encoder of 'bare'")
        }
        #expect(try bare.adapters().isEmpty)

        #expect(try t.importSettings(from: dir + "/settings.json") == 1)
        #expect(try queries.map { try t.search(text: $0, k: 5) } == dense)
        #expect(try queries.map { try t.search(text: $0, k: 5, mode: .hybrid) } == hybrid)
        #expect(try t.adapters() == c.adapters())
        #expect(try target.describe("copy").tuning == db.describe("claims").tuning)
        #expect(try t.settings().adapters == c.settings().adapters)
    }

    /// `quiver export --format settings` and `quiver import --format settings`.
    @Test func cliExportsAndImportsSettings() throws {
        let f = try Self.fixture.get()
        let path = f.directory.path + "/cli-settings"
        let (db, c) = try f.database(path)
        var options = TuneOptions()
        options.trainer.epochs = 2
        options.force = true
        _ = try c.tune(pairs: f.pairs, options: options)
        db.close()
        let cli = CLI(db: path)
        let file = f.directory.path + "/cli-settings.json"
        let exported = try cli.run(["export", "claims", file, "--format", "settings"])
        #expect(exported.status == 0 && exported.stdout.contains("1 query adapter(s)"), "\(exported.stderr)")
        #expect(try cli.run(["create", "again", "--encoder", "all-MiniLM-L6-v2"]).status == 0)
        let imported = try cli.run(["import", "again", file, "--format", "settings"])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(try cli.run(["adapters", "again"]).stdout.contains("default"))
        #expect(try cli.run(["import", "again", file, "--format", "settings", "--upsert"]).status == 2)
        #expect(try cli.run(["export", "claims", file, "--format", "settings"]).status == 1)
    }

    /// `distill(queries:vectors:)` refuses vectors that cannot be the queries' (count, dimension,
    /// NaN), and distillation refuses a teacher fusion out of range, each naming what is wrong; nothing
    /// is stored.
    @Test func distillationRefusesBadVectorsAndTeacherFusion() throws {
        let f = try Self.fixture.get()
        let (db, c) = try f.database(f.directory.path + "/distill-inputs")
        defer { db.close() }
        let queries = f.pairs.prefix(8).map(\.query)
        let good = try queries.map { try c.embed($0) }
        var nan = good
        nan[2][5] = .nan
        for (vectors, says) in [(Array(good.dropLast()), "7 query vectors for 8 queries"), (good.map { Array($0.prefix(383)) }, "has 383 components"),
                                (nan, "query vector 2: component 5 is NaN")] {
            #expect {
                try c.distill(queries: queries, vectors: vectors)
            } throws: { error in "\(error)".contains(says) }
        }
        var options = TuneOptions.distillation
        options.teacherFusion = .weighted(dense: 1.5)
        #expect {
            try c.distill(queries: queries, vectors: good, options: options)
        } throws: { error in "\(error)".contains("the teacher's fusion") }
        #expect(try c.adapters().isEmpty)
    }

    @Test func badPairsFileNamesLinesAndStoresNothing() throws {
        let f = try Self.fixture.get()
        let (db, c) = try f.database(f.directory.path + "/bad")
        defer { db.close() }
        let file = f.directory.path + "/pairs.jsonl"
        var lines = f.pairs.prefix(40).map { p in
            String(decoding: try! JSONSerialization.data(withJSONObject: ["query": p.query, "positive": p.positives]), as: UTF8.self)
        }
        lines[3] = "{not json"
        lines[7] = #"{"query": "  ", "positive": "x"}"#
        lines[11] = #"{"query": "a real question", "positive": ["no-such-document"]}"#
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        var options = TuneOptions()
        options.trainer.epochs = 2
        options.force = true
        #expect {
            try c.tune(pairsFile: file, options: options)
        } throws: { e in
            let text = "\(e)"
            return text.contains("\(file):4: not a JSON object") && text.contains("\(file):8: the query is empty")
                && text.contains("\(file):12: unknown document id(s) 'no-such-document'")
        }
        #expect(try c.adapters().isEmpty && db.describe("claims").tuning == nil)
        options.badLines = .skip
        let report = try c.tune(pairsFile: file, options: options)
        #expect(report.skippedLines.count == 3 && report.trainingExamples + report.validationExamples == 37)
        #expect(try c.adapters().count == 1)
    }

    /// `quiver tune` with a progress line and a before/after table, `quiver adapters`, and `search
    /// --explain` naming the adapter; `--adapter none` searches without it.
    @Test func cliTunesListsAndExplains() throws {
        let f = try Self.fixture.get()
        let path = f.directory.path + "/cli"
        let (db, _) = try f.database(path)
        db.close()
        let file = f.directory.path + "/cli-pairs.jsonl"
        try f.pairs.map { p in
            String(decoding: try JSONSerialization.data(withJSONObject: ["query": p.query, "positive": p.positives]), as: UTF8.self)
        }.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let cli = CLI(db: path)
        let tuned = try cli.run(["tune", "claims", "--pairs", file, "--epochs", "3", "--force", "--name", "first"])
        #expect(tuned.status == 0, "\(tuned.stderr)")
        #expect(tuned.stdout.contains("VALIDATION") && tuned.stdout.contains("adapter 'first' (linear)") && tuned.stderr.contains("embedding queries: "))
        let listed = try cli.run(["adapters", "claims"])
        #expect(listed.stdout.contains("first") && listed.stdout.contains("yes"))
        let explained = try cli.run(["search", "claims", "--text", f.pairs[0].query, "--explain"])
        #expect(explained.stdout.contains("adapter: first"))
        let plain = try cli.run(["search", "claims", "--text", f.pairs[0].query, "--explain", "--adapter", "none"])
        #expect(plain.stdout.contains("adapter: none"))
        let wrong = try cli.run(["search", "claims", "--text", "x", "--adapter", "missing"])
        #expect(wrong.status == 1 && wrong.stderr.contains("no adapter named 'missing'"))
        #expect(try cli.run(["adapters", "claims", "--remove", "first"]).status == 0)
        #expect(try cli.run(["adapters", "claims"]).stdout.contains("No adapters"))
        #expect(try cli.run(["tune", "claims"]).status == 2)
    }

    /// docs/library.md's tuning example, compiled here (its text must equal this function's body).
    static func libraryGuideExample(_ papers: Quiver.Collection) throws {
        var tuning = TuneOptions()            // a full-rank linear adapter named "default"
        tuning.fusion = true                  // also choose the hybrid fusion from the same pairs
        let report = try papers.tune(pairsFile: "train.jsonl", options: tuning) { p in
            print(p.phase, p.done, p.total, p.epoch.map { String(format: "%.4f", $0.validationNDCG) } ?? "")
        }
        print(report.validationBefore, report.validationAfter, report.fusion?.description ?? "no fusion", report.stored)

        // Text searches now apply the adapter, and hybrid searches the tuned fusion; explain names both.
        let (_, plan) = try papers.explain(text: "does vitamin D help bones", k: 10, mode: .hybrid)
        print(plan.adapter ?? "none", plan.fusion ?? "")
        var untuned = SearchOptions()
        untuned.adapter = .none               // or .named("other")
        let baseline = try papers.search(text: "does vitamin D help bones", k: 10, options: untuned)
    }

    @Test func libraryGuideTuningExampleIsThisCode() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("docs/library.md"), encoding: .utf8)
        let block = doc.components(separatedBy: "## Tuning a collection to its queries")[1].components(separatedBy: "```swift\n")[1]
            .components(separatedBy: "```\n")[0]
        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        let body = source.components(separatedBy: "static func libraryGuideExample(_ papers: Quiver.Collection) throws {\n")[1]
            .components(separatedBy: "\n    }\n")[0] + "\n"
        #expect(body.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasPrefix("        ") ? $0.dropFirst(8) : $0 }
            .joined(separator: "\n") == block)
    }
}

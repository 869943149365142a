import Foundation
import Testing
import QuiverCore
import QuiverTestSupport
@testable import Quiver
import QuiverEncoder

/// A clock that moves only when told (by the encoder below), so rates and ETAs are exact.
final class VirtualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var seconds = 0.0
    var now: Double { lock.lock(); defer { lock.unlock() }; return seconds }
    func advance(_ s: Double) { lock.lock(); seconds += s; lock.unlock() }
}

/// A real encoder (deterministic vectors from the text's bytes) that counts how often it embeds each
/// text, can spend virtual time per text, can fail once a budget of texts is spent (like an
/// interrupted run), and makes a NaN vector for a text containing "NaN!" (an encoder's bad vector).
final class CountingEncoder: TextEncoder, @unchecked Sendable {
    let identifier = "counting-v1"
    let weightsChecksum = "c0ffee"
    var dimension: Int { 8 }
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    private var total = 0
    var clock: VirtualClock?
    var secondsPerText = 0.0
    var failAfterTexts: Int?

    func vector(_ text: String) -> [Float] {
        if text.contains("NaN!") { return [Float](repeating: .nan, count: 8) }
        var v = [Float](repeating: 0, count: 8)
        for (i, b) in text.utf8.enumerated() { v[i % 8] += Float(b) / 256 }
        return v
    }

    func encode(documents: [String]) throws -> Matrix {
        lock.lock()
        defer { lock.unlock() }
        if let budget = failAfterTexts, total + documents.count > budget {
            throw EncoderError(.io, "the test encoder's budget of \(budget) texts is spent")
        }
        total += documents.count
        for t in documents { counts[t, default: 0] += 1 }
        clock?.advance(secondsPerText * Double(documents.count))
        return Matrix(dimension: 8, rows: documents.map(vector))
    }
    func encode(queries: [String]) throws -> Matrix { Matrix(dimension: 8, rows: queries.map(vector)) }

    var embedded: [String: Int] { lock.lock(); defer { lock.unlock() }; return counts }
    var texts: Int { lock.lock(); defer { lock.unlock() }; return total }
    func reset() { lock.lock(); counts = [:]; total = 0; lock.unlock() }
}

struct ImportEmbeddingTests {
    func open(_ dir: TemporaryDirectory, _ encoder: CountingEncoder) throws -> (Database, Collection) {
        let registry = EncoderRegistry()
        registry.register("counting", encoder: encoder)
        var options = DatabaseOptions()
        options.encoders = registry
        let db = try Database(path: dir.path + "/db", options: options)
        let c = try db.createCollection("t", encoder: "counting")
        return (db, c)
    }

    func text(_ i: Int) -> String { "text of row \(i)" }

    /// Rows r0..r<n-1> as JSONL, each with its own text.
    func jsonl(_ n: Int, extra: [Int: String] = [:]) -> String {
        (0..<n).map { i in extra[i] ?? "{\"id\":\"r\(i)\",\"text\":\"\(text(i))\"}" }.joined(separator: "\n") + "\n"
    }

    /// Stores rows `ids` with given vectors (so storing them embeds nothing).
    func store(_ c: Collection, _ ids: [Int], _ encoder: CountingEncoder) throws {
        try c.upsert(ids.map { Document(id: "r\($0)", text: "stored \($0)", vector: encoder.vector("stored \($0)")) })
        #expect(encoder.texts == 0)
    }

    @Test func skipEmbedsEachRowAtMostOnceAndNothingItRefuses() throws {
        let dir = TemporaryDirectory()
        let encoder = CountingEncoder()
        let (_, c) = try open(dir, encoder)
        let n = 200
        let stored = Array(stride(from: 3, to: n, by: 7))  // spread over every batch
        try store(c, stored, encoder)
        // Also a row with bad metadata (refused before embedding) and an id repeated in the file.
        let bad = [50: "{\"id\":\"bad\",\"text\":\"bad row text\",\"metadata\":{\"\":1}}",
                   51: "{\"id\":\"r0\",\"text\":\"repeat of r0\"}"]
        try jsonl(n, extra: bad).write(toFile: dir.path + "/in.jsonl", atomically: true, encoding: .utf8)
        var options = ImportOptions(onError: .skip)
        options.batchSize = 16
        let report = try c.importFile(dir.path + "/in.jsonl", options: options)
        #expect(report.skippedCount == stored.count + 2)  // r0's repeat is in a later batch: stored by then
        #expect(report.imported == n - stored.count - 2)
        let counts = encoder.embedded
        #expect(counts.values.allSatisfy { $0 == 1 }, "a text was embedded twice: \(counts.filter { $0.value > 1 })")
        for i in stored { #expect(counts[text(i)] == nil, "stored row r\(i) was embedded") }
        #expect(counts["bad row text"] == nil && counts["repeat of r0"] == nil)
        #expect(encoder.texts == report.imported)
        // Stored rows kept their documents; new ones have the encoder's vectors.
        #expect(try c.get("r3")?.text == "stored 3")
        #expect(try c.get("r1")?.vector == encoder.vector(text(1)))
        #expect(try c.count() == n - 2)

        // Re-importing everything with skip embeds nothing at all.
        encoder.reset()
        let again = try c.importFile(dir.path + "/in.jsonl", options: options)
        #expect(again.imported == 0 && again.skippedCount == n && encoder.texts == 0)
    }

    @Test func abortEmbedsOnlyTheRowsBeforeTheBadOne() throws {
        let dir = TemporaryDirectory()
        let encoder = CountingEncoder()
        let (_, c) = try open(dir, encoder)
        try store(c, [5, 30], encoder)
        try jsonl(40).write(toFile: dir.path + "/in.jsonl", atomically: true, encoding: .utf8)
        var options = ImportOptions(onError: .abort)
        options.batchSize = 16
        #expect(throws: QuiverError.badInput(file: dir.path + "/in.jsonl", line: 6, reason: "document 'r5' already exists in 't'")) {
            try c.importFile(dir.path + "/in.jsonl", options: options)
        }
        #expect(encoder.embedded == Dictionary(uniqueKeysWithValues: (0..<5).map { (text($0), 1) }))
        #expect(try c.count() == 2 + 5)

        // The first row bad: nothing is embedded, nothing written.
        encoder.reset()
        try jsonl(40).write(toFile: dir.path + "/again.jsonl", atomically: true, encoding: .utf8)
        #expect(throws: QuiverError.self) { try c.importFile(dir.path + "/again.jsonl", options: options) }
        #expect(encoder.texts == 0)
        #expect(try c.count() == 7)

        // A malformed first line, too.
        try ("{not json\n" + jsonl(3)).write(toFile: dir.path + "/broken.jsonl", atomically: true, encoding: .utf8)
        #expect(throws: QuiverError.self) { try c.importFile(dir.path + "/broken.jsonl", options: options) }
        #expect(encoder.texts == 0)
    }

    /// A vector refused only after embedding (the encoder made a NaN) is skipped, and the rest of the
    /// batch is written with the vectors already made: no text is embedded twice.
    @Test func aRetryReusesTheVectorsAlreadyMade() throws {
        let dir = TemporaryDirectory()
        let encoder = CountingEncoder()
        let (_, c) = try open(dir, encoder)
        let bad = [2: "{\"id\":\"r2\",\"text\":\"NaN! two\"}", 9: "{\"id\":\"r9\",\"text\":\"NaN! nine\"}"]
        try jsonl(12, extra: bad).write(toFile: dir.path + "/in.jsonl", atomically: true, encoding: .utf8)
        let report = try c.importFile(dir.path + "/in.jsonl", options: ImportOptions(onError: .skip))
        #expect(report.imported == 10 && report.skipped.map(\.line) == [3, 10])
        #expect(report.skipped.first?.reason.contains("NaN or infinite") == true)
        #expect(encoder.embedded.values.allSatisfy { $0 == 1 } && encoder.texts == 12)

        // With abort: the rows before the bad one are written, each embedded once.
        encoder.reset()
        let c2 = try c.database.createCollection("u", encoder: "counting")
        #expect(throws: QuiverError.self) { try c2.importFile(dir.path + "/in.jsonl") }
        #expect(try c2.count() == 2)
        #expect(encoder.embedded.values.allSatisfy { $0 == 1 })
    }

    /// The library's insert and upsert refuse before embedding, and write a document that has both
    /// text and a vector as given.
    @Test func libraryWritesRefuseBeforeEmbedding() throws {
        let dir = TemporaryDirectory()
        let encoder = CountingEncoder()
        let (db, c) = try open(dir, encoder)
        try store(c, [1], encoder)
        let batch = (0..<5).map { Document(id: "r\($0)", text: text($0)) }
        #expect(throws: QuiverError.duplicateID(collection: "t", id: "r1", index: 1)) { try c.insert(batch) }
        #expect(encoder.texts == 0)
        // A document with neither vector nor text, and one with bad metadata: refused before embedding.
        let c2 = try db.collection("t")
        #expect(throws: QuiverError.missingVectorAndText(collection: "t", id: "none", index: 1)) {
            try c2.upsert([Document(id: "ok", text: "ok"), Document(id: "none")])
        }
        #expect(throws: QuiverError.self) { try c2.upsert([Document(id: "ok", text: "ok"), Document(id: "m", text: "m", metadata: ["": .int(1)])]) }
        #expect(encoder.texts == 0)
        // A given vector that is bad is found before embedding the others.
        #expect(throws: QuiverError.nonFiniteVector(collection: "t", id: "v", index: 1, component: 0)) {
            try c2.upsert([Document(id: "ok", text: "ok"), Document(id: "v", text: "v", vector: [Float](repeating: .nan, count: 8))])
        }
        #expect(encoder.texts == 0)
        // Text with a vector is written as is; text alone is embedded once.
        try c2.upsert([Document(id: "given", text: "given text", vector: [Float](repeating: 1, count: 8)), Document(id: "made", text: "made text")])
        #expect(encoder.embedded == ["made text": 1])
        #expect(try c2.get("given")?.vector == [Float](repeating: 1, count: 8))
        // The in-transaction checks still decide: upsert over a stored id is fine, insert is not.
        try c2.upsert(batch)
        #expect(throws: QuiverError.self) { try c2.insert([Document(id: "made", text: "again")]) }
        #expect(encoder.embedded["again"] == nil)
    }

    /// With an encoder that takes 10 ms (of virtual time) per text: progress comes every few dozen
    /// rows and well within a second while embedding, the default batch (64) commits as it goes, and
    /// after an interrupted run, the ETA of the resumed run (which also loads the encoder, in 3 s) is
    /// within 20% of the time it really takes.
    @Test func progressMovesAndTheETAAfterResumeIsRight() throws {
        let dir = TemporaryDirectory()
        let encoder = CountingEncoder()
        let clock = VirtualClock()
        encoder.clock = clock
        encoder.secondsPerText = 0.01
        let (db, c) = try open(dir, encoder)
        let n = 1_000
        // Rows of one size, so that bytes and rows agree.
        let lines = (0..<n).map { i in "{\"id\":\"r\(String(format: "%05d", i))\",\"text\":\"row \(String(format: "%05d", i)) text\"}" }
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir.path + "/in.jsonl", atomically: true, encoding: .utf8)
        var options = ImportOptions()
        options.clock = { clock.now }

        // The first run is interrupted (the encoder fails) after 400 texts: 6 batches of 64 are in.
        encoder.failAfterTexts = 400
        var first: [ImportProgress] = []
        #expect(throws: QuiverError.self) { try c.importFile(dir.path + "/in.jsonl", options: options) { first.append($0) } }
        #expect(try c.count() == 6 * 64)
        #expect(first.first.map { $0.rowsDone <= 32 && $0.elapsed <= 1 } == true)
        for (a, b) in zip(first, first.dropFirst()) {
            #expect(b.elapsed - a.elapsed <= 1.0 && b.rowsDone - a.rowsDone <= 64)
        }
        #expect(Set(first.map(\.imported)).isSuperset(of: [64, 128, 192, 256, 320, 384]))

        // The resumed run, in a new process as it were: loading the encoder takes 3 s (like reading
        // and hashing a model's weights), which must not count against the rows' rate.
        db.close()
        encoder.failAfterTexts = nil
        let registry = EncoderRegistry()
        registry.register("counting") { _ in clock.advance(3); return encoder }
        var dbOptions = DatabaseOptions()
        dbOptions.encoders = registry
        let reopened = try Database(path: dir.path + "/db", options: dbOptions)
        let resumed = try reopened.collection("t")
        options.resume = true
        let resumedAt = clock.now
        var reports: [ImportProgress] = []
        let report = try resumed.importFile(dir.path + "/in.jsonl", options: options) { reports.append($0) }
        #expect(report.resumedAfterRows == 384 && report.imported == n - 384)
        let total = clock.now - resumedAt
        #expect(abs(report.seconds - total) < 1e-9)
        #expect(reports.count >= 12)
        var checked = 0
        for p in reports where p.elapsed < total {
            let remaining = total - p.elapsed
            let eta = try #require(p.etaSeconds)
            #expect(abs(eta - remaining) <= 0.2 * remaining, "ETA \(eta) s with \(remaining) s to go at \(p.rowsDone) rows")
            #expect(p.resumedAfterRows == 384 && p.startBytes > 0 && abs(p.setupSeconds - 3) < 1e-9, "setup \(p.setupSeconds)")
            checked += 1
        }
        #expect(checked >= 12)
        // The rate counts only this run's rows: 100 rows/s exactly.
        #expect(abs(reports[reports.count / 2].rowsPerSecond - 100) < 1)
        // What the ETA was before (the rows of the earlier run counted at this run's rate) is far off.
        let early = reports[0]
        let naive = early.elapsed * (1 - early.fraction) / early.fraction
        #expect(abs(naive - (total - early.elapsed)) > 0.2 * (total - early.elapsed))
    }
}

import Foundation
import Testing
import QuiverTestSupport
import QuiverCore
@testable import Quiver
@testable import QuiverCrashWriter

/// Two processes on one database: a writer child (QuiverCrashWriter, writing batches of the
/// deterministic CrashWorkload into a collection of 16-vector segments, so that it also seals and
/// merges in the background) and this process or the `quiver` CLI beside it.
struct MultiProcessTests {
    /// Starts the writer child on a fresh database and waits until it acknowledged a few batches.
    func startWriter(_ dir: String, seed: UInt64) throws -> (Process, db: String, acks: String) {
        let db = dir + "/db", acks = dir + "/acks"
        do {
            let d = try Database(path: db)
            try d.createCollection(CrashWorkload.collection, dimension: CrashWorkload.dimension,
                                   options: CollectionOptions(index: IndexSettings(segmentSize: 16, rewriteDeletedShare: 0.25)))
            d.close()
        }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: try builtProduct("QuiverCrashWriter"))
        child.arguments = [db, acks, String(seed), "0"]
        child.standardError = FileHandle.nullDevice
        try child.run()
        let deadline = Date().addingTimeInterval(20)
        while child.isRunning && Date() < deadline && acknowledged(acks) < 5 { usleep(2_000) }
        return (child, db, acks)
    }

    /// Batches the writer acknowledged so far.
    func acknowledged(_ acks: String) -> Int {
        ((try? String(contentsOfFile: acks, encoding: .utf8)) ?? "").split(separator: "\n").count
    }

    @Test func aSecondWriterProcessIsRefused() throws {
        let dir = TemporaryDirectory()
        let (child, db, acks) = try startWriter(dir.path, seed: 7)
        defer { kill(child.processIdentifier, SIGKILL); child.waitUntilExit() }
        #expect(child.isRunning && acknowledged(acks) >= 5, "the writer child did not start writing")
        let cli = CLI(db: db)
        let put = try cli.run(["put", CrashWorkload.collection], stdin: #"{"id":"x","vector":[0,0,0,0,0,0,0,1]}"#)
        #expect(put.status == 1)
        #expect(put.stderr.contains("open for writing in another process"), "\(put.stderr)")
        #expect(throws: QuiverError.databaseLocked(path: db)) { try Database(path: db) }
    }

    /// A reader process beside a writer process: every snapshot the read-only database gives is
    /// the state after some prefix of the writer's batches, between what was acknowledged before
    /// the read and what was acknowledged after it (plus the batch in flight); every search result
    /// is a document of such a state; the CLI's read commands work meanwhile.
    @Test func aReadOnlyReaderBesideAWriterProcess() throws {
        let dir = TemporaryDirectory()
        let seed: UInt64 = 11
        let workload = CrashWorkload(seed: seed)
        let (child, db, acks) = try startWriter(dir.path, seed: seed)
        defer { kill(child.processIdentifier, SIGKILL); child.waitUntilExit() }
        let reader = try Database(path: db, options: DatabaseOptions(readOnly: true))
        defer { reader.close() }
        #expect(throws: QuiverError.unavailable("the database at \(db) is open read-only")) {
            try reader.collection(CrashWorkload.collection).upsert([Document(id: "x", vector: [Float](repeating: 0, count: 8))])
        }
        let c = try reader.collection(CrashWorkload.collection)
        let pool = (0..<CrashWorkload.idPool).map { "doc-\($0)" }
        var states: [Int: [String: Document]] = [:]
        func state(_ k: Int) -> [String: Document] {
            if let s = states[k] { return s }
            let s = workload.state(after: k)
            states[k] = s
            return s
        }
        let started = Date()
        var reads = 0, searches = 0, cliReads = 0, problems: [String] = []
        var rng = SplitMix64(seed: 3)
        while Date().timeIntervalSince(started) < 4 && problems.isEmpty {
            let before = acknowledged(acks)
            let got = try c.get(ids: pool)
            var snapshot: [String: Document] = [:]
            for (id, d) in zip(pool, got) { if let d { snapshot[id] = d } }
            let q = (0..<CrashWorkload.dimension).map { _ in Float.random(in: -1...1, using: &rng) }
            let hits = try c.search(vector: q, k: 5)
            let after = acknowledged(acks)
            reads += 1
            searches += 1
            let candidates = (before...(after + 1)).map(state)
            if !candidates.contains(snapshot) {
                problems.append("a snapshot of \(snapshot.count) documents is no prefix state between batches \(before) and \(after + 1)")
            }
            for hit in hits where !candidates.contains(where: { $0[hit.id] != nil }) {
                problems.append("search returned '\(hit.id)', live in no state between batches \(before) and \(after + 1)")
            }
            if reads % 10 == 0 {
                let cli = CLI(db: db)
                for args in [["stats"], ["get", CrashWorkload.collection, hits.first?.id ?? "doc-0"], ["search", CrashWorkload.collection, "--vector", q.map { "\($0)" }.joined(separator: ",")]] {
                    let r = try cli.run(args)
                    cliReads += 1
                    // `get` of a document deleted meanwhile is an error that says so.
                    if r.status != 0 && !(args[0] == "get" && r.stderr.contains("doc-")) {
                        problems.append("quiver \(args[0]) beside the writer: exit \(r.status): \(r.stderr)")
                    }
                }
            }
        }
        #expect(child.isRunning, "the writer child stopped")
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        let sealed = try reader.stats().collections[0].index?.sealedVectors ?? 0
        let verify = try reader.verify()
        // The writer keeps writing while verify reads, so only problems that a moving database
        // cannot explain count: verify reads one snapshot, and reloads segments from a newer one.
        print("read-only reader beside a writer process: \(reads) snapshot reads, \(searches) searches, \(cliReads) CLI reads in 4 s, \(acknowledged(acks)) batches written, \(sealed) sealed vectors seen, verify \(verify.ok ? "clean" : "\(verify.problems)")")
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        // With the writer gone, the read-only view is the acknowledged state (or it plus the batch
        // in flight), and verify is clean.
        let final = try Database(path: db, options: DatabaseOptions(readOnly: true))
        defer { final.close() }
        let n = acknowledged(acks)
        var stored: [String: Document] = [:]
        for (id, d) in zip(pool, try final.collection(CrashWorkload.collection).get(ids: pool)) { if let d { stored[id] = d } }
        #expect(stored == state(n) || stored == state(n + 1))
        let finalVerify = try final.verify()
        #expect(finalVerify.ok, "\(finalVerify.problems)")
    }
}

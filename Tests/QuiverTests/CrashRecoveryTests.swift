import Foundation
import Testing
import QuiverTestSupport
@testable import Quiver
@testable import QuiverCrashWriter

/// The path of an executable built beside the test bundle.
func builtProduct(_ name: String) throws -> String {
    var candidates: [URL] = []
    candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
    candidates.append(Bundle.main.bundleURL)
    for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
        candidates.append(bundle.bundleURL.deletingLastPathComponent())
    }
    for dir in candidates {
        let path = dir.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw QuiverError.invalidArgument("cannot find the built product \(name) near \(candidates.map(\.path))")
}

/// The kill -9 harness: a child process writes batches with full durability and records each
/// acknowledged batch in a side file; the parent kills it with SIGKILL at random moments, reopens
/// the database, and checks that every acknowledged batch is there, that at most the one batch in
/// flight is also there, and that no document is torn (every stored document equals one written).
struct CrashRecoveryTests {
    static let soak = ProcessInfo.processInfo.environment["QUIVER_SOAK"] != nil

    /// The plain harness: 60 kills (500 with QUIVER_SOAK=1).
    @Test func killNineAtRandomMomentsLosesNoAcknowledgedWrite() throws {
        try run(kills: Self.soak ? 500 : 60, segmentSize: nil)
    }

    /// The same with segments of 16 vectors, so that the writer child seals and compacts all the
    /// time and kills land during both; after each kill the segment search must also equal the
    /// exact scan, so no deleted or replaced vector comes back.
    @Test func killNineDuringSealingAndCompaction() throws {
        try run(kills: Self.soak ? 300 : 40, segmentSize: 16)
    }

    func run(kills: Int, segmentSize: Int?) throws {
        let dir = TemporaryDirectory()
        let dbPath = dir.path + "/db", ackPath = dir.path + "/acks"
        do {
            let db = try Database(path: dbPath)
            var options = CollectionOptions()
            if let s = segmentSize { options.index = IndexSettings(segmentSize: s, rewriteDeletedShare: 0.25) }
            try db.createCollection(CrashWorkload.collection, dimension: CrashWorkload.dimension, options: options)
            db.close()
        }
        let writer = try builtProduct("QuiverCrashWriter")
        let seed = UInt64.random(in: 1...1_000_000)
        let workload = CrashWorkload(seed: seed)
        var rng = SystemRandomNumberGenerator()
        var acknowledged = 0  // batches 0..<acknowledged were acknowledged
        var killsMidWrite = 0, orphans = 0, sealed = 0
        for round in 0..<kills {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: writer)
            child.arguments = [dbPath, ackPath, String(seed), String(acknowledged)]
            let errors = Pipe()
            child.standardError = errors
            let ackedBefore = (try? FileManager.default.attributesOfItem(atPath: ackPath)[.size] as? Int) ?? 0
            try child.run()
            // Wait until the child is writing (its start-up time varies with the machine's load),
            // then kill it at a random moment of its stream of writes.
            let deadline = Date().addingTimeInterval(20)
            while child.isRunning && Date() < deadline,
                  ((try? FileManager.default.attributesOfItem(atPath: ackPath)[.size] as? Int) ?? 0) == ackedBefore {
                usleep(1_000)
            }
            if ((try? FileManager.default.attributesOfItem(atPath: ackPath)[.size] as? Int) ?? 0) == ackedBefore && child.isRunning {
                kill(child.processIdentifier, SIGKILL)
                Issue.record("round \(round): the writer acknowledged nothing in 20 s")
                return
            }
            usleep(UInt32.random(in: 0...150_000, using: &rng))
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            if child.terminationReason == .exit {
                let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                Issue.record("round \(round): the writer exited by itself (\(child.terminationStatus)): \(message)")
                return
            }
            let lines = (try? String(contentsOfFile: ackPath, encoding: .utf8))?.split(separator: "\n") ?? []
            let last = lines.last.flatMap { Int($0) }.map { $0 + 1 } ?? acknowledged
            #expect(last >= acknowledged, "round \(round): the ack file went backwards")
            acknowledged = max(acknowledged, last)

            let db = try Database(path: dbPath)
            let c = try db.collection(CrashWorkload.collection)
            var stored: [String: Document] = [:]
            for id in try c.ids() { stored[id] = try c.get(id) }
            let expected = workload.state(after: acknowledged)
            var withInFlight = expected
            workload.apply(workload.batch(acknowledged), to: &withInFlight)
            if stored == withInFlight && stored != expected { killsMidWrite += 1 }
            #expect(stored == expected || stored == withInFlight,
                    "round \(round): after \(acknowledged) acknowledged batches the database holds \(stored.count) documents that match neither the acknowledged state nor it plus the batch in flight")
            #expect(try c.count() == stored.count)
            let verify = try db.verify()
            #expect(verify.ok, "round \(round): verify after recovery: \(verify.problems)")
            orphans += db.openReport.orphanSegmentFiles
            sealed = max(sealed, try db.stats().collections[0].index?.sealedVectors ?? 0)
            var rng = SystemRandomNumberGenerator()
            for _ in 0..<3 where !stored.isEmpty {
                let q = (0..<CrashWorkload.dimension).map { _ in Float.random(in: -1...1, using: &rng) }
                let fast = try c.search(vector: q, k: 10, options: SearchOptions(efSearch: 200))
                let exact = try c.search(vector: q, k: 10, options: SearchOptions(exact: true))
                #expect(fast.map(\.id) == exact.map(\.id), "round \(round): segment search differs from the exact scan after recovery")
            }
            db.close()
            if stored != expected && stored != withInFlight { return }
        }
        #expect(acknowledged >= kills, "the writer made too little progress for the test to mean anything")
        if segmentSize != nil { #expect(sealed > 0, "no segment was ever sealed") }
        print("kill -9 harness (segment size \(segmentSize.map(String.init) ?? "default")): \(kills) kills, \(acknowledged) acknowledged batches, \(killsMidWrite) kills left the batch in flight applied, \(orphans) orphan segment files removed at reopen, up to \(sealed) sealed vectors")
    }
}

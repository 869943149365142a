import Foundation
import Testing
import QuiverTestSupport
@testable import Quiver
@testable import QuiverCrashWriter

/// The crash-point sweep: the sweep workload passes N durability-relevant steps (log writes and
/// fsyncs, LMDB commits, segment files written and renamed, manifest switches, merged files
/// removed, log truncation). For every n in 1...N a child process runs the workload and dies at
/// step n as `kill -9` would; the parent reopens the database and checks it against the model:
/// every acknowledged operation present, the one in flight all or nothing, verify clean, and the
/// segment search equal to the exact scan.
struct CrashPointTests {
    func runChild(_ db: String, _ ack: String, crashAt: Int) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try builtProduct("QuiverCrashWriter"))
        p.arguments = ["--sweep", db, ack]
        var env = ProcessInfo.processInfo.environment
        env["QUIVER_CRASH_AT"] = String(crashAt)
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func everyCrashPointRecovers() throws {
        let dir = TemporaryDirectory()
        // Count the steps.
        let counted = try runChild(dir.path + "/count.db", dir.path + "/count.acks", crashAt: 0)
        #expect(counted.status == 0)
        guard let steps = counted.output.split(separator: " ").last.flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }), steps > 20 else {
            Issue.record("the workload reported no crash points: \(counted.output)")
            return
        }
        var violations = 0
        for n in 1...steps {
            let db = dir.path + "/db-\(n)", ack = dir.path + "/acks-\(n)"
            let run = try runChild(db, ack, crashAt: n)
            #expect(run.status == 86, "crash point \(n) of \(steps): the child exited with \(run.status)")
            let acked = ((try? String(contentsOfFile: ack, encoding: .utf8)) ?? "").split(separator: "\n").count
            guard FileManager.default.fileExists(atPath: db + "/lmdb/data.mdb") else {
                #expect(acked == 0, "crash point \(n): acknowledged operations but no database")
                continue
            }
            let acceptable = [SweepWorkload.state(after: acked), SweepWorkload.state(after: min(acked + 1, SweepWorkload.operations.count))]
            let problems = SweepOracle.check(db, acceptable: acceptable, collectionRequired: acked > 0)
            if !problems.isEmpty { violations += 1 }
            #expect(problems.isEmpty, "crash point \(n) of \(steps), \(acked) operations acknowledged: \(problems)")
            try? FileManager.default.removeItem(atPath: db)
            try? FileManager.default.removeItem(atPath: ack)
        }
        print("crash-point sweep: \(steps) crash points, \(violations) violations")
    }
}

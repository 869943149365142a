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
            let database = try Database(path: db)
            defer { database.close(); try? FileManager.default.removeItem(atPath: db) }
            guard let c = try? database.collection(SweepWorkload.collection) else {
                #expect(acked == 0, "crash point \(n): the collection is missing after \(acked) acknowledged operations")
                continue
            }
            var stored: [String: Document] = [:]
            for id in try c.ids() { stored[id] = try c.get(id) }
            let ok = stored == SweepWorkload.state(after: acked) || stored == SweepWorkload.state(after: min(acked + 1, SweepWorkload.operations.count))
            if !ok { violations += 1 }
            #expect(ok, "crash point \(n): the documents match neither the \(acked) acknowledged operations nor them plus the one in flight")
            let verify = try database.verify()
            #expect(verify.ok, "crash point \(n): \(verify.problems)")
            if !stored.isEmpty {
                let q: [Float] = [0.5, -0.5, 0.25, 0, 1, -1, 0.1, 0.2]
                #expect(try c.search(vector: q, k: 5, options: SearchOptions(efSearch: 100)).map(\.id)
                        == c.search(vector: q, k: 5, options: SearchOptions(exact: true)).map(\.id), "crash point \(n)")
            }
            try? FileManager.default.removeItem(atPath: ack)
        }
        print("crash-point sweep: \(steps) crash points, \(violations) violations")
    }
}

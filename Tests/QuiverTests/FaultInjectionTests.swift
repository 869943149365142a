import Foundation
import Testing
import QuiverStorage
import QuiverTestSupport
@testable import Quiver
@testable import QuiverCrashWriter

/// Fault injection in the file layer (Sources/QuiverStorage/File/FaultInjection.swift) over the
/// sweep workload of the crash-point sweep (writes, deletes, seals, merges, a payload index, a
/// checkpoint that truncates the log), in-process:
///
/// - every open, write, fsync, ftruncate, rename, unlink and mkdir the workload makes fails in
///   turn, once with EIO and persistently with ENOSPC. The failing call gives a clear error; once
///   the log failed, no later write is acknowledged (fail-stop); reads keep working; after reopen
///   every acknowledged operation is present and every failed one wholly present or wholly absent,
///   `verify` is clean and the segment search equals the exact scan.
/// - the power is cut before every fsync the workload makes: the durable image (what the files
///   held at their last fsync, the directories at theirs) must recover the same way.
///
/// The plan is process-wide, so these tests run one at a time; other tests are untouched (the plan
/// covers one directory).
@Suite(.serialized, .enabled(if: FaultInjection.isAvailable, "fault injection is compiled into debug builds only"))
struct FaultInjectionTests {
    /// Counts the workload's calls per operation.
    func countCalls(_ dir: String, options: DatabaseOptions = DatabaseOptions()) -> [FaultInjection.Operation: Int] {
        FaultInjection.install(.init(root: dir + "/count"))
        let run = SweepRun.run(dir + "/count", options: options)
        let report = FaultInjection.finish()
        #expect(run.openError == nil && run.outcomes.allSatisfy { $0 == nil }, "the workload fails without faults: \(run)")
        return report.counts
    }

    /// The default options, and small log files (roll-overs and automatic checkpoints).
    @Test(arguments: [false, true])
    func everyFailedCallStopsCleanlyAndRecovers(smallLog: Bool) throws {
        let dir = TemporaryDirectory(inMemory: true)
        let options = smallLog ? SweepRun.smallLog : DatabaseOptions()
        let started = Date()
        let counts = countCalls(dir.path, options: options)
        var points = 0, violations = 0, failStops = 0, carriedOn = 0
        for operation in FaultInjection.Operation.allCases {
            let total = counts[operation, default: 0]
            for n in 1...max(1, total) where total > 0 {
                // To keep within the time budget (QUIVER_SOAK=1 runs every combination):
                // default options: EIO once at every call, ENOSPC from then on at every other call
                // (every 4th write); small log files (for roll-overs and automatic checkpoints):
                // EIO once at every open, fsync, ftruncate, rename and unlink.
                let soak = CrashRecoveryTests.soak
                if smallLog && (operation == .write || operation == .mkdir) && !soak { continue }
                let enospc = soak || (!smallLog && n % (operation == .write ? 4 : 2) == 1)
                let modes: [(Int32, Bool)] = enospc ? [(EIO, false), (ENOSPC, true)] : [(EIO, false)]
                for (code, persistent) in modes {
                    points += 1
                    let label = "\(operation.rawValue) #\(n) of \(total), \(code == EIO ? "EIO once" : "ENOSPC from then on")"
                    let db = dir.path + "/f\(points)"
                    FaultInjection.install(.init(root: db, fault: .init(operation, nth: n, errno: code, persistent: persistent)))
                    let run = SweepRun.run(db, options: options)
                    let report = FaultInjection.finish()
                    var problems: [String] = []
                    guard let failed = report.firstFailure else {
                        Issue.record("\(label): the fault never fired (the workload is not deterministic?)")
                        continue
                    }
                    // The first error the caller sees names the failed call and its file.
                    let errors = ([run.openError] + run.outcomes).compactMap { $0 }.map { "\($0)" }
                    if let first = errors.first, !first.contains("[injected]") {
                        problems.append("the first error does not name the failed call: \(first)")
                    }
                    // Fail-stop: once a write to the database failed, no later one is acknowledged.
                    // A failed seal or merge (a segment file) leaves the documents alone: later writes go on.
                    if let firstFailure = run.outcomes.firstIndex(where: { $0 != nil }) {
                        let laterAcknowledged = run.outcomes.indices.filter { $0 > firstFailure && SweepWorkload.changesDocuments($0) && run.outcomes[$0] == nil }
                        // (Removing a log file that a checkpoint made redundant is not a write of the log.)
                        if SweepWorkload.changesDocuments(firstFailure) || (failed.contains("/wal/") && !failed.hasPrefix("unlink")) {
                            if laterAcknowledged.isEmpty { failStops += 1 } else {
                                problems.append("operations \(laterAcknowledged) were acknowledged after write \(firstFailure) failed (\(failed))")
                            }
                        } else if !laterAcknowledged.isEmpty {
                            carriedOn += 1
                        }
                    }
                    problems += run.failedReads
                    let acceptable = SweepOracle.acceptableStates(acknowledged: run.acknowledged, inDoubt: run.inDoubt)
                    problems += SweepOracle.check(db, acceptable: acceptable, collectionRequired: run.acknowledged.contains(0))
                    if !problems.isEmpty { violations += 1 }
                    #expect(problems.isEmpty, "\(label) (\(failed)): \(problems)")
                    try? FileSystem.removeTree(db)
                }
            }
        }
        let summary = FaultInjection.Operation.allCases.map { "\($0.rawValue) \(counts[$0, default: 0])" }.joined(separator: ", ")
        print("fault injection (\(smallLog ? "2 KiB log files" : "default options")): \(points) fault points (\(summary); \(smallLog ? "EIO once at each open, fsync, ftruncate, rename and unlink" : "EIO once at each, ENOSPC persistent at every other call and every 4th write")), \(violations) violations, \(failStops) runs fail-stopped, \(carriedOn) carried on after a failed segment step, \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    }

    /// QUIVER_FAULT reaches a child process: the CLI's write fails with the injected ENOSPC, named.
    @Test func aFaultByEnvironmentInAChildProcess() throws {
        let dir = TemporaryDirectory()
        let db = dir.path + "/db"
        do {
            let d = try Database(path: db)
            try d.createCollection("c", dimension: 2)
            d.close()
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try builtProduct("quiver"))
        p.arguments = ["put", "c"]
        var env = ProcessInfo.processInfo.environment
        env["QUIVER_DB"] = db
        env["QUIVER_FAULT"] = "fsync:1:ENOSPC:persistent"
        env["QUIVER_FAULT_ROOT"] = db + "/wal"
        p.environment = env
        let input = Pipe(), err = Pipe()
        p.standardInput = input
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        input.fileHandleForWriting.write(Data(#"{"id":"a","vector":[1,0]}"#.utf8))
        try input.fileHandleForWriting.close()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 1)
        #expect(message.contains("No space left on device") && message.contains("[injected]") && message.contains(db + "/wal/"), "\(message)")
        // The write failed after it was logged and applied: after reopen it is wholly there or absent.
        let d = try Database(path: db)
        defer { d.close() }
        let got = try d.collection("c").get("a")
        #expect(got == nil || got?.vector == [1, 0])
    }

    @Test(arguments: [false, true])
    func powerLossAtEveryFsyncRecovers(smallLog: Bool) throws {
        let dir = TemporaryDirectory(inMemory: true)
        let options = smallLog ? SweepRun.smallLog : DatabaseOptions()
        let started = Date()
        let boundaries = countCalls(dir.path, options: options)[.fsync, default: 0]
        #expect(boundaries > 20)
        var violations = 0, lostInFlight = 0
        for n in 1...max(1, boundaries) where boundaries > 0 {
            let db = dir.path + "/p\(n)", image = dir.path + "/p\(n)-image"
            FaultInjection.install(.init(root: db, powerCutAtFsync: n, powerCutImage: image))
            let run = SweepRun.run(db, options: options)
            let report = FaultInjection.finish()
            #expect(report.powerCut, "boundary \(n): the power was never cut")
            let acceptable = SweepOracle.acceptableStates(acknowledged: run.acknowledged, inDoubt: run.inDoubt)
            let problems = FileSystem.exists(image + "/lmdb/data.mdb") || !run.acknowledged.isEmpty
                ? SweepOracle.check(image, acceptable: acceptable, collectionRequired: run.acknowledged.contains(0))
                : []
            if !problems.isEmpty { violations += 1 }
            if run.inDoubt.contains(where: SweepWorkload.changesDocuments) { lostInFlight += 1 }
            #expect(problems.isEmpty, "power cut before fsync \(n) of \(boundaries), operations \(run.acknowledged.sorted()) acknowledged: \(problems)")
            try? FileSystem.removeTree(db)
            try? FileSystem.removeTree(image)
        }
        print("power-loss simulation (\(smallLog ? "2 KiB log files" : "default options")): \(boundaries) fsync boundaries, \(violations) violations, \(lostInFlight) cuts with a write in flight, \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    }
}

import Foundation
import Testing
@testable import Quiver
@testable import QuiverCrashWriter

/// The oracle shared by the crash-point sweep, the fault-injection runs and the power-loss
/// simulation: a database recovered after a failure of the sweep workload must hold one of the
/// document sets the model allows, `verify` clean, and a segment search equal to the exact scan.
enum SweepOracle {
    /// Opens the database at `path` and checks it; returns the problems found (empty when none).
    /// `acceptable` lists the document sets the model allows; `collectionRequired` says that the
    /// collection's creation was acknowledged.
    /// Then it checks that the recovered database keeps working: a write, a close, a second open.
    static func check(_ path: String, acceptable: [[String: Document]], collectionRequired: Bool) -> [String] {
        var problems: [String] = []
        do {
            let database = try Database(path: path)
            problems = checkRecovered(database, acceptable: acceptable, collectionRequired: collectionRequired)
            let c = try (try? database.collection(SweepWorkload.collection))
                ?? database.createCollection(SweepWorkload.collection, dimension: SweepWorkload.dimension)
            try c.upsert([Document(id: "after-recovery", vector: [Float](repeating: 0.25, count: SweepWorkload.dimension))])
            database.close()
            let reopened = try Database(path: path)
            defer { reopened.close() }
            if try reopened.collection(SweepWorkload.collection).get("after-recovery") == nil {
                problems.append("a write after recovery is missing after the next open")
            }
        } catch {
            problems.append(problems.isEmpty ? "the database does not open, or a write after recovery and a second open failed: \(error)"
                                             : "and a write after recovery failed: \(error)")
        }
        return problems
    }

    private static func checkRecovered(_ database: Database, acceptable: [[String: Document]], collectionRequired: Bool) -> [String] {
        do {
            guard let c = try? database.collection(SweepWorkload.collection) else {
                if collectionRequired { return ["the collection is missing, but its creation was acknowledged"] }
                return acceptable.contains([:]) ? [] : ["the collection is missing"]
            }
            var problems: [String] = []
            var stored: [String: Document] = [:]
            for id in try c.ids() { stored[id] = try c.get(id) }
            // The sq8 collection's documents (ids q…) belong to the same states.
            var collections = [c]
            if let q = try? database.collection(SweepWorkload.sq8Collection) {
                collections.append(q)
                for id in try q.ids() { stored[id] = try q.get(id) }
                if try q.count() != stored.keys.filter({ $0.hasPrefix("q") }).count { problems.append("the sq8 collection's count() differs from its ids") }
            }
            if !acceptable.contains(stored) {
                problems.append("the \(stored.count) stored documents match none of the \(acceptable.count) states the acknowledged operations allow")
            }
            let inFirst = stored.keys.filter { !$0.hasPrefix("q") }.count
            if try c.count() != inFirst { problems.append("count() \(try c.count()) differs from the \(inFirst) stored ids") }
            let verify = try database.verify()
            if !verify.ok { problems.append("verify: \(verify.problems)") }
            for c in collections where try c.count() > 0 {
                let q: [Float] = [0.5, -0.5, 0.25, 0, 1, -1, 0.1, 0.2]
                // Every graph node and every IVF-PQ list visited, every candidate re-ranked: exact.
                let fast = try c.search(vector: q, k: 5, options: SearchOptions(efSearch: 10_000, nprobe: 1 << 20, rerank: 1 << 20)).map(\.id)
                let exact = try c.search(vector: q, k: 5, options: SearchOptions(exact: true)).map(\.id)
                if fast != exact { problems.append("the segment search of \(c.name) \(fast) differs from the exact scan \(exact)") }
            }
            return problems
        } catch {
            return ["reading the recovered database failed: \(error)"]
        }
    }

    /// The document sets allowed after the operations in `acknowledged` returned and those in
    /// `inDoubt` failed in a way that may have applied them: each in-doubt operation wholly
    /// applied or wholly absent, in order.
    static func acceptableStates(acknowledged: Set<Int>, inDoubt: [Int]) -> [[String: Document]] {
        let doubtful = inDoubt.filter { SweepWorkload.changesDocuments($0) }.prefix(6)
        var out: [[String: Document]] = []
        for mask in 0..<(1 << doubtful.count) {
            var applied = acknowledged
            for (bit, op) in doubtful.enumerated() where mask & (1 << bit) != 0 { applied.insert(op) }
            let s = SweepWorkload.state(applying: applied)
            if !out.contains(s) { out.append(s) }
        }
        return out
    }
}

/// One in-process run of the sweep workload, going on after failures, as an application would.
struct SweepRun {
    /// The error of opening the database, if it failed (then nothing else ran).
    var openError: Error?
    /// Per operation: nil when acknowledged, else its error.
    var outcomes: [Error?] = []
    /// Reads (count, get, search) that failed on the live database after the first failure.
    var failedReads: [String] = []

    var acknowledged: Set<Int> { Set(outcomes.indices.filter { outcomes[$0] == nil }) }

    /// Failed operations that may have been applied: those that did not fail up front (a database
    /// that refuses writes throws `unavailable` before it changes anything).
    var inDoubt: [Int] {
        outcomes.indices.filter { i in
            guard let e = outcomes[i] else { return false }
            if case QuiverError.unavailable = e { return false }
            if case QuiverError.unknownCollection = e { return false }
            return true
        }
    }

    /// Log files of 2 KiB, checkpoints past 6 KiB: the workload rolls the log over and checkpoints
    /// on its own several times.
    static var smallLog: DatabaseOptions {
        var o = DatabaseOptions(durability: .full)
        o.walFileSize = 2_048
        o.checkpointBytes = 6_144
        return o
    }

    /// Runs the workload on the database at `path` and closes it.
    static func run(_ path: String, options: DatabaseOptions = DatabaseOptions(durability: .full)) -> SweepRun {
        var run = SweepRun()
        let db: Database
        do { db = try Database(path: path, options: options) } catch {
            run.openError = error
            return run
        }
        defer { db.close() }
        for i in SweepWorkload.operations.indices {
            do {
                try SweepWorkload.perform(i, on: db)
                run.outcomes.append(nil)
            } catch {
                run.outcomes.append(error)
            }
            if run.outcomes.contains(where: { $0 != nil }), let c = try? db.collection(SweepWorkload.collection) {
                do {
                    _ = try c.count()
                    _ = try c.get("s2")
                    _ = try c.search(vector: [Float](repeating: 0.5, count: SweepWorkload.dimension), k: 3)
                } catch {
                    run.failedReads.append("after operation \(i): \(error)")
                }
            }
        }
        return run
    }
}

import Foundation
import Synchronization
import Testing
import QuiverCore
import QuiverTestSupport
@testable import Quiver

/// Readers beside a writer and a compactor in one process, for a bounded time (8 s; 60 s with
/// QUIVER_SOAK=1), with invariants the readers check on what they see:
///
/// - documents are written in groups of 5 (one `upsert` per group, every member carrying the
///   group's version): one snapshot shows a group wholly at one version or wholly absent;
/// - a group deleted (one `delete` of its 5 ids, never written again) and acknowledged before a
///   search began is not in its results;
/// - `count()` is always a multiple of 5, as every write moves whole groups;
/// and, at the end, `verify` is clean, the count is the model's and the segment search equals the
/// exact scan. Segments hold 64 vectors, so sealing and merging run all the time.
struct ConcurrencyStressTests {
    final class Shared: Sendable {
        let deleted = Mutex<Set<Int>>([])      // groups whose delete was acknowledged
        let highestGroup = Atomic<Int>(-1)     // groups 0...highest have been written at least once
        let live = Mutex<[Int]>([])
        let problems = Mutex<[String]>([])
        let writes = Atomic<Int>(0), deletes = Atomic<Int>(0), compactions = Atomic<Int>(0)
        let snapshots = Atomic<Int>(0), searches = Atomic<Int>(0), counts = Atomic<Int>(0)

        func problem(_ s: String) { problems.withLock { if $0.count < 20 { $0.append(s) } } }
    }

    static let groupSize = 5

    static func ids(_ group: Int) -> [String] { (0..<groupSize).map { "g\(group)-\($0)" } }

    static func documents(group: Int, version: Int, rng: inout SplitMix64) -> [Document] {
        ids(group).map { id in
            Document(id: id, text: "group \(group) version \(version)", metadata: ["group": .int(Int64(group)), "version": .int(Int64(version))],
                     vector: (0..<8).map { _ in Float.random(in: -1...1, using: &rng) })
        }
    }

    @Test func readersBesideAWriterAndACompactor() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path + "/db")
        defer { db.close() }
        let c = try db.createCollection("stress", dimension: 8, metric: .l2,
                                        options: CollectionOptions(index: IndexSettings(segmentSize: 64, rewriteDeletedShare: 0.25)))
        let seconds: Double = CrashRecoveryTests.soak ? 60 : 8
        let deadline = Date().addingTimeInterval(seconds)
        let shared = Shared()
        // Threads of their own: on a concurrent dispatch queue the roles share the pool's few
        // threads (as many as cores), and a writer and a compactor that block them starve readers.
        let group = DispatchGroup()
        func spawn(_ body: @escaping @Sendable () -> Void) {
            group.enter()
            Thread { body(); group.leave() }.start()
        }

        // The writer: new groups, new versions of live groups, deletes of whole groups.
        spawn {
            var rng = SplitMix64(seed: 1)
            var next = 0, version = 0
            var liveGroups: [Int] = []
            while Date() < deadline {
                version += 1
                let roll = Int.random(in: 0..<10, using: &rng)
                do {
                    if roll < 4 || liveGroups.count < 8 {
                        try c.upsert(Self.documents(group: next, version: version, rng: &rng))
                        liveGroups.append(next)
                        shared.highestGroup.store(next, ordering: .sequentiallyConsistent)
                        next += 1
                        shared.writes.add(1, ordering: .relaxed)
                    } else if roll < 8 {
                        let g = liveGroups.randomElement(using: &rng)!
                        try c.upsert(Self.documents(group: g, version: version, rng: &rng))
                        shared.writes.add(1, ordering: .relaxed)
                    } else {
                        let i = Int.random(in: 0..<liveGroups.count, using: &rng)
                        let g = liveGroups.remove(at: i)
                        try c.delete(ids: Self.ids(g))
                        shared.deleted.withLock { _ = $0.insert(g) }
                        shared.deletes.add(1, ordering: .relaxed)
                    }
                } catch {
                    shared.problem("writer: \(error)")
                    return
                }
                shared.live.withLock { $0 = liveGroups }
            }
        }
        // The compactor: seals and merges on demand beside the background maintenance.
        spawn {
            while Date() < deadline {
                usleep(300_000)
                do { try db.compact("stress"); shared.compactions.add(1, ordering: .relaxed) } catch { shared.problem("compact: \(error)") }
            }
        }
        // Readers.
        for r in 0..<3 {
            spawn {
                var rng = SplitMix64(seed: UInt64(100 + r))
                while Date() < deadline {
                    let highest = shared.highestGroup.load(ordering: .sequentiallyConsistent)
                    guard highest >= 0 else { usleep(1_000); continue }
                    do {
                        // A group is all at one version or all absent.
                        let g = Int.random(in: 0...highest, using: &rng)
                        let docs = try c.get(ids: Self.ids(g))
                        let versions = Set(docs.map { $0.flatMap { d -> Int64? in if case .int(let v)? = d.metadata["version"] { return v } else { return -1 } } })
                        if versions.count != 1 { shared.problem("group \(g) seen torn: versions \(versions)") }
                        shared.snapshots.add(1, ordering: .relaxed)
                        // No group whose delete was acknowledged before the search comes back.
                        let gone = shared.deleted.withLock { $0 }
                        let q = (0..<8).map { _ in Float.random(in: -1...1, using: &rng) }
                        for hit in try c.search(vector: q, k: 10) {
                            let hg = Int(hit.id.dropFirst().prefix { $0 != "-" }) ?? -1
                            if gone.contains(hg) { shared.problem("search returned \(hit.id) after its delete was acknowledged") }
                        }
                        shared.searches.add(1, ordering: .relaxed)
                        let n = try c.count()
                        if n % Self.groupSize != 0 { shared.problem("count \(n) is not a multiple of \(Self.groupSize): a write was seen in part") }
                        shared.counts.add(1, ordering: .relaxed)
                    } catch {
                        shared.problem("reader \(r): \(error)")
                        return
                    }
                }
            }
        }
        group.wait()
        db.waitForMaintenance()
        let found = shared.problems.withLock { $0 }
        #expect(found.isEmpty, "\(found)")
        #expect(shared.snapshots.load(ordering: .relaxed) >= 100 && shared.writes.load(ordering: .relaxed) >= 50,
                "too little work for the test to mean anything")
        let liveGroups = shared.live.withLock { $0 }
        #expect(try c.count() == liveGroups.count * Self.groupSize)
        let verify = try db.verify()
        #expect(verify.ok, "\(verify.problems)")
        var rng = SplitMix64(seed: 9)
        for _ in 0..<5 {
            let q = (0..<8).map { _ in Float.random(in: -1...1, using: &rng) }
            #expect(try c.search(vector: q, k: 10, options: SearchOptions(efSearch: 400)).map(\.id)
                    == c.search(vector: q, k: 10, options: SearchOptions(exact: true)).map(\.id))
        }
        let figures = try db.stats().collections[0].index
        print("concurrency stress: \(Int(seconds)) s, \(shared.writes.load(ordering: .relaxed)) group writes, \(shared.deletes.load(ordering: .relaxed)) group deletes, \(shared.compactions.load(ordering: .relaxed)) compactions, \(shared.snapshots.load(ordering: .relaxed)) group reads, \(shared.searches.load(ordering: .relaxed)) searches, \(shared.counts.load(ordering: .relaxed)) counts by 3 readers, \(figures?.sealedSegments ?? 0) sealed segments at the end, \(found.count) problems")
    }
}

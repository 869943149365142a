import Foundation
import Testing
import QuiverCore
import QuiverStorage
import QuiverTestSupport
@testable import Quiver

/// A real small file system: a 2 MiB tmpfs, filled through the database until ENOSPC. Needs root
/// (mount(2)); elsewhere the test is skipped with that reason.
struct DiskFullTests {
    /// Whether this process may mount a tmpfs (root, and a kernel that lets it: not every container does).
    static let canMountTmpfs: Bool = {
        guard geteuid() == 0 else { return false }
        let probe = TemporaryDirectory()
        guard mount("tmpfs", probe.path, "tmpfs", 0, "size=64k") == 0 else { return false }
        umount2(probe.path, Int32(MNT_DETACH))
        return true
    }()

    @Test(.enabled(if: canMountTmpfs, "mounting a tmpfs needs root (mount(2) with CAP_SYS_ADMIN); skipped without it"))
    func fillingASmallFileSystemStopsCleanlyAndLosesNothing() throws {
        let dir = TemporaryDirectory()
        let fs = dir.path + "/fs"
        try FileSystem.createDirectory(fs)
        #expect(mount("tmpfs", fs, "tmpfs", 0, "size=2m") == 0, "mount: \(String(cString: strerror(errno)))")
        defer { umount2(fs, Int32(MNT_DETACH)) }
        let path = fs + "/db"
        var rng = SplitMix64(seed: 5)
        func batch(_ b: Int) -> [Document] {
            (0..<20).map { i in
                Document(id: "b\(b)-\(i)", text: String(repeating: "filler text \(b) ", count: 30), metadata: ["batch": .int(Int64(b))],
                         vector: (0..<64).map { _ in Float.random(in: -1...1, using: &rng) })
            }
        }
        let started = Date()
        var acknowledged: [[Document]] = []
        var inFlight: [Document] = []
        var firstError: Error?
        do {
            let db = try Database(path: path)
            defer { db.close() }
            // Small segments, so that sealing writes segment files too while the disk fills.
            let c = try db.createCollection("full", dimension: 64, metric: .l2,
                                            options: CollectionOptions(index: IndexSettings(segmentSize: 256)))
            for b in 0..<2_000 {
                let docs = batch(b)
                do {
                    try c.upsert(docs)
                    acknowledged.append(docs)
                } catch {
                    firstError = error
                    inFlight = docs
                    break
                }
            }
            guard let error = firstError else {
                Issue.record("2 MiB never filled")
                return
            }
            // A clear error: the failed call, the file, and the cause.
            let message = "\(error)"
            // (LMDB reports a short write as EIO; the message then says the file system is full.)
            #expect((message.contains("No space left on device") || message.contains("file system is full")) && message.contains(path), "\(message)")
            // Fail-stop: no later write is acknowledged, even a tiny one.
            #expect(throws: (any Error).self) { try c.upsert([Document(id: "tiny", vector: [Float](repeating: 0, count: 64))]) }
            // Reads keep working.
            let some = acknowledged[acknowledged.count / 2]
            #expect(try c.get(some[0].id) == some[0])
            #expect(try c.count() >= acknowledged.count * 20)
            #expect(try c.search(vector: some[3].vector!, k: 1).first?.id == some[3].id)
            print("disk full after \(String(format: "%.1f", Date().timeIntervalSince(started))) s: \(acknowledged.count) batches (\(acknowledged.count * 20) documents) acknowledged in 2 MiB, then: \(message)")
        }
        // Reopening on the full file system either works or fails with a clear error.
        do {
            let db = try Database(path: path)
            #expect(try db.collection("full").count() >= acknowledged.count * 20)
            db.close()
        } catch {
            #expect("\(error)".contains("No space left on device") || "\(error)".contains("file system is full"), "reopen on a full disk: \(error)")
        }
        print("disk full: reopened on the full disk after \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        // Free space (grow the file system), reopen: every acknowledged batch is there, the one in
        // flight wholly or not at all, verify is clean, and writes go on.
        #expect(mount("tmpfs", fs, "tmpfs", UInt(MS_REMOUNT), "size=64m") == 0, "remount: \(String(cString: strerror(errno)))")
        let db = try Database(path: path)
        defer { db.close() }
        let c = try db.collection("full")
        for docs in acknowledged {
            let got = try c.get(ids: docs.map(\.id))
            #expect(got == docs.map { Optional($0) }, "an acknowledged batch is missing or changed after the disk filled")
        }
        let flight = try c.get(ids: inFlight.map(\.id))
        #expect(flight.allSatisfy { $0 == nil } || flight == inFlight.map { Optional($0) }, "the batch in flight is half there")
        #expect(try c.count() == acknowledged.count * 20 + (flight.first! == nil ? 0 : 20))
        let verify = try db.verify()
        #expect(verify.ok, "\(verify.problems)")
        try c.upsert(batch(9_999))
        #expect(try c.get("b9999-0") != nil)
    }

    /// Fills the file system with a ballast file around a database whose LMDB has free pages to
    /// reuse, so that the log and then a segment file are the first to need space: a write fails in
    /// the log (fail-stop), and a compaction fails writing its segment file (the database carries on).
    @Test(.enabled(if: canMountTmpfs, "mounting a tmpfs needs root (mount(2) with CAP_SYS_ADMIN); skipped without it"))
    func theLogAndASegmentFileRunOutOfSpaceCleanly() throws {
        let dir = TemporaryDirectory()
        let fs = dir.path + "/fs"
        try FileSystem.createDirectory(fs)
        #expect(mount("tmpfs", fs, "tmpfs", 0, "size=8m") == 0, "mount: \(String(cString: strerror(errno)))")
        defer { umount2(fs, Int32(MNT_DETACH)) }
        let path = fs + "/db", ballast = fs + "/ballast"
        var rng = SplitMix64(seed: 6)
        func docs(_ prefix: String, _ n: Int) -> [Document] {
            (0..<n).map { i in
                Document(id: "\(prefix)-\(i)", text: String(repeating: "ballast \(i) ", count: 40),
                         vector: (0..<64).map { _ in Float.random(in: -1...1, using: &rng) })
            }
        }
        /// Fills the file system to the last byte.
        func fill() {
            let fd = open(ballast, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            defer { close(fd) }
            let chunk = [UInt8](repeating: 7, count: 4096)
            while chunk.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) > 0 {}
        }
        let kept = docs("kept", 40)
        do {
            let db = try Database(path: path)
            defer { db.close() }
            let c = try db.createCollection("c", dimension: 64, metric: .l2, options: CollectionOptions(index: IndexSettings(segmentSize: 100_000)))
            // Grow LMDB, then free its pages and drop the log: later writes reuse LMDB's pages.
            for b in 0..<10 { try c.upsert(docs("tmp\(b)", 50)) }
            for b in 0..<10 { try c.delete(ids: (0..<50).map { "tmp\(b)-\($0)" }) }
            try db.checkpoint()
            try c.upsert(kept)
            fill()
            // The log needs space first.
            var message = "no error"
            for b in 0..<20 {
                do { try c.upsert(docs("full\(b)", 20)) } catch { message = "\(error)"; break }
            }
            #expect(message.contains("No space left on device") && message.contains(path + "/wal/"), "\(message)")
            #expect(throws: QuiverError.self) { try c.upsert(docs("after", 1)) }
            #expect(try c.get("kept-3") == kept[3])
            print("disk full, log first: \(message)")
        }
        try FileSystem.remove(ballast)
        do {
            let db = try Database(path: path)
            defer { db.close() }
            let c = try db.collection("c")
            #expect(try c.get(ids: kept.map(\.id)) == kept.map { Optional($0) })
            fill()
            // A compaction needs space for its segment file: it fails, names the file, and changes nothing.
            var message = "no error"
            do { try db.compact("c") } catch { message = "\(error)" }
            #expect(message.contains("No space left on device") && message.contains(".hnsw"), "\(message)")
            print("disk full, segment file: \(message)")
            try FileSystem.remove(ballast)
            // Not fail-stopped: writes and searches go on, and the next compaction succeeds.
            try c.upsert(docs("later", 5))
            #expect(try c.search(vector: kept[7].vector!, k: 1).first?.id == kept[7].id)
            try db.compact("c")
            #expect(try db.stats().collections[0].index?.sealedSegments == 1)
            #expect(try db.verify().ok)
        }
        let db = try Database(path: path)
        defer { db.close() }
        #expect(try db.collection("c").count() == kept.count + 5 + (try db.collection("c").get("full0-0") == nil ? 0 : 20))
        #expect(try db.verify().ok)
    }
}

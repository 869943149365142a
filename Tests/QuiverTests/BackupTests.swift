import Foundation
import Testing
import QuiverCore
import QuiverTestSupport
import QuiverStorage
@testable import Quiver

struct BackupTests {
    /// A backup taken while a writer runs restores to a database that verify accepts and that equals
    /// the source at one instant: the writer's batches form a prefix.
    @Test func backupUnderConcurrentWritesRestoresAConsistentPrefix() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path + "/db")
        let c = try db.createCollection("c", dimension: 4, options: CollectionOptions(index: IndexSettings(segmentSize: 64)))
        let stop = LockedFlag()
        let writer = Thread {
            var i = 0
            var rng = SplitMix64(state: 5)
            while !stop.value {
                // Batch i writes documents b<i>-0..4 and deletes b<i-3>-0.
                _ = try? c.upsert((0..<5).map { Document(id: "b\(i)-\($0)", metadata: ["batch": .int(Int64(i))], vector: randomVector(4, &rng)) }) as Int?
                if i >= 3 { _ = try? c.delete(ids: ["b\(i - 3)-0"]) as Int? }
                i += 1
            }
        }
        writer.start()
        // The backup must find a sealed segment to copy: wait for the writer to fill one (64 rows),
        // however slow the machine (a fixed 300 ms held too few writes on a loaded one).
        let deadline = Date().addingTimeInterval(120)
        while try (db.stats().collections.first?.index?.sealedSegments ?? 0) == 0 && Date() < deadline { usleep(10_000) }
        let report = try db.backup(to: dir.path + "/backup")
        stop.set()
        while writer.isExecuting { usleep(1_000) }
        #expect(report.files >= 2, "no segment file was backed up")
        try Database.restore(backup: dir.path + "/backup", to: dir.path + "/restored")
        let restored = try Database(path: dir.path + "/restored")
        #expect(try restored.verify().ok)
        let r = try restored.collection("c")
        let ids = Set(try r.ids())
        // Which batches are in: a prefix 0..<m, each whole (the delete of a batch may or may not be).
        let batches = Set(ids.map { Int($0.dropFirst().split(separator: "-")[0])! })
        let m = batches.count
        #expect(batches == Set(0..<m), "the restored batches are not a prefix")
        for b in 0..<m {
            for j in 1..<5 { #expect(ids.contains("b\(b)-\(j)")) }
            if b + 3 < m - 1 { #expect(!ids.contains("b\(b)-0")) }
        }
        // The restored database takes writes and searches its segments.
        try r.upsert(Document(id: "new", vector: [1, 0, 0, 0]))
        #expect(try r.search(vector: [1, 0, 0, 0], k: 1).first?.id == "new")
    }

    @Test func restoreRefusesUnsafeBackupsAndNonEmptyTargets() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path + "/db")
        try db.createCollection("c", dimension: 2).upsert(Document(id: "a", vector: [1, 2]))
        try db.backup(to: dir.path + "/backup")
        #expect(throws: QuiverError.self) { try db.backup(to: dir.path + "/backup") }  // not empty
        // A non-empty target is refused unless overwriting.
        try FileSystem.createDirectory(dir.path + "/target")
        try FileSystem.writeAtomically([1], to: dir.path + "/target/precious.txt")
        #expect(throws: QuiverError.self) { try Database.restore(backup: dir.path + "/backup", to: dir.path + "/target") }
        #expect(throws: QuiverError.self) { try Database.restore(backup: dir.path + "/backup", to: dir.path + "/target", overwrite: true) }
        #expect(FileSystem.exists(dir.path + "/target/precious.txt"))
        // A manifest that names a path outside the database layout is refused before anything is written.
        let manifestPath = dir.path + "/backup/BACKUP"
        let original = try String(contentsOfFile: manifestPath, encoding: .utf8)
        for evil in ["../evil", "/etc/passwd", "segments/1/../../../evil.hnsw", "lmdb/lock.mdb"] {
            var object = try JSONSerialization.jsonObject(with: Data(original.utf8)) as! [String: Any]
            object["files"] = (object["files"] as! [Any]) + [["path": evil, "size": 1, "crc32c": 0]]
            try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: manifestPath))
            #expect(throws: QuiverError.self) { try Database.restore(backup: dir.path + "/backup", to: dir.path + "/out-\(evil.count)") }
            #expect(!FileSystem.exists(dir.path + "/out-\(evil.count)"))
        }
        try original.write(toFile: manifestPath, atomically: true, encoding: .utf8)
        // A symbolic link in the backup is not followed.
        try FileSystem.rename(dir.path + "/backup/lmdb", dir.path + "/elsewhere")
        try FileManager.default.createSymbolicLink(atPath: dir.path + "/backup/lmdb", withDestinationPath: dir.path + "/elsewhere")
        #expect(throws: QuiverError.self) { try Database.restore(backup: dir.path + "/backup", to: dir.path + "/linked") }
        try FileSystem.remove(dir.path + "/backup/lmdb")
        try FileSystem.rename(dir.path + "/elsewhere", dir.path + "/backup/lmdb")
        // A damaged file is caught by its checksum.
        let data = dir.path + "/backup/lmdb/data.mdb"
        let handle = try File(path: data, mode: .readWrite)
        try handle.write([0x5A], at: 100)
        handle.close()
        #expect(throws: QuiverError.self) { try Database.restore(backup: dir.path + "/backup", to: dir.path + "/damaged") }
    }
}

extension BackupTests {
    /// Runs `body` on a thread and waits at most `seconds`: nil when it did not return (it blocked).
    func within<R>(_ seconds: Double, _ body: @escaping @Sendable () throws -> R) -> Result<R, any Error>? {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<R>()
        Thread { box.result = Result { try body() }; done.signal() }.start()
        return done.wait(timeout: .now() + seconds) == .success ? box.result : nil
    }

    /// Names in `directory` that a restore's temporary directories would have.
    func leftovers(_ directory: String) throws -> [String] {
        try FileSystem.list(directory).filter { $0.contains(".restoring-") || $0.contains(".replaced-") }
    }

    /// A FIFO (or anything but a regular file) named by the manifest is refused without blocking;
    /// a file listed twice is refused before anything is written; any failure leaves no partial
    /// target and no temporary directory; an existing database replaced with `overwrite` survives a
    /// failed restore; messages name the CLI's `--force`.
    @Test func restoreRefusesSpecialFilesAndDuplicatesAndLeavesNothingOnFailure() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path + "/db")
        let c = try db.createCollection("c", dimension: 2, options: CollectionOptions(index: IndexSettings(segmentSize: 4)))
        try c.upsert((0..<10).map { Document(id: "d\($0)", vector: [Float($0), 1]) })
        try db.compact()
        let report = try db.backup(to: dir.path + "/good")
        #expect(report.files >= 2)
        db.close()
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.path + "/good/BACKUP"))) as! [String: Any]
        let files = (manifest["files"] as! [[String: Any]]).map { $0["path"] as! String }
        let segment = try #require(files.first { $0.hasPrefix("segments/") })
        func copyOfGood(_ name: String) throws -> String {
            let path = dir.path + "/" + name
            try FileManager.default.copyItem(atPath: dir.path + "/good", toPath: path)
            return path
        }

        // A FIFO in place of a segment file, of LMDB's file, or of the manifest: refused at once.
        for victim in [segment, "lmdb/data.mdb", "BACKUP"] {
            let backup = try copyOfGood("fifo-\(victim.count)")
            try FileSystem.remove(backup + "/" + victim)
            #expect(mkfifo(backup + "/" + victim, 0o644) == 0)
            let target = dir.path + "/from-fifo-\(victim.count)"
            guard let outcome = within(10, { try Database.restore(backup: backup, to: target) }) else {
                Issue.record("restore blocked on a FIFO in place of \(victim)")
                continue
            }
            guard case .failure(let error) = outcome else { Issue.record("a FIFO in place of \(victim) was restored"); continue }
            #expect("\(error)".contains("FIFO"), "\(victim): \(error)")
            #expect(!FileSystem.exists(target))
        }

        // A manifest listing a file twice: refused before anything is written.
        let twice = try copyOfGood("twice")
        var doubled = manifest
        doubled["files"] = (manifest["files"] as! [Any]) + [(manifest["files"] as! [Any])[0]]
        try JSONSerialization.data(withJSONObject: doubled).write(to: URL(fileURLWithPath: twice + "/BACKUP"))
        do {
            try Database.restore(backup: twice, to: dir.path + "/from-twice")
            Issue.record("a manifest listing a file twice was restored")
        } catch {
            #expect("\(error)".contains("more than once"), "\(error)")
        }
        #expect(!FileSystem.exists(dir.path + "/from-twice"))

        // A damaged segment file (copied after LMDB's): no target, no temporary directory; an empty
        // target directory stays an empty directory; an existing database survives an overwrite.
        let damaged = try copyOfGood("damaged")
        let handle = try File(path: damaged + "/" + segment, mode: .readWrite)
        try handle.write([0xA5, 0x5A], at: 40)
        handle.close()
        #expect(throws: QuiverError.self) { try Database.restore(backup: damaged, to: dir.path + "/from-damaged") }
        #expect(!FileSystem.exists(dir.path + "/from-damaged"))
        try FileSystem.createDirectory(dir.path + "/empty")
        #expect(throws: QuiverError.self) { try Database.restore(backup: damaged, to: dir.path + "/empty") }
        let emptyAfter = try FileSystem.list(dir.path + "/empty")
        #expect(FileSystem.isDirectory(dir.path + "/empty") && emptyAfter.isEmpty)
        try Database.restore(backup: dir.path + "/good", to: dir.path + "/existing")
        do {
            let existing = try Database(path: dir.path + "/existing")
            try existing.collection("c").upsert(Document(id: "only-here", vector: [1, 1]))
            existing.close()
        }
        #expect(throws: QuiverError.self) { try Database.restore(backup: damaged, to: dir.path + "/existing", overwrite: true) }
        let survivor = try Database(path: dir.path + "/existing", options: DatabaseOptions(readOnly: true))
        #expect(try survivor.collection("c").get("only-here") != nil && survivor.verify().ok)
        survivor.close()
        let left = try leftovers(dir.path)
        #expect(left.isEmpty, "\(left)")

        // Overwriting works, and restoring into an empty directory (or `.`-style paths) too.
        try Database.restore(backup: dir.path + "/good", to: dir.path + "/existing/", overwrite: true)
        let replaced = try Database(path: dir.path + "/existing", options: DatabaseOptions(readOnly: true))
        #expect(try replaced.collection("c").get("only-here") == nil && replaced.collection("c").count() == 10)
        replaced.close()
        try Database.restore(backup: dir.path + "/good", to: dir.path + "/empty")
        #expect(try Database(path: dir.path + "/empty", options: DatabaseOptions(readOnly: true)).verify().ok)
        #expect(try leftovers(dir.path).isEmpty)

        // Every message names the flag or parameter that exists.
        do {
            try Database.restore(backup: dir.path + "/good", to: dir.path + "/empty")
            Issue.record("a non-empty target was overwritten")
        } catch {
            #expect("\(error)".contains("overwrite: true") && "\(error)".contains("--force") && !"\(error)".contains("pass overwrite"), "\(error)")
        }
        let cli = CLI(db: dir.path + "/unused")
        let r = try cli.run(["restore", dir.path + "/good", dir.path + "/empty"])
        #expect(r.status == 1 && r.stderr.contains("quiver restore --force"), "\(r.stderr)")
        #expect(try cli.run(["restore", dir.path + "/good", dir.path + "/empty", "--force"]).status == 0)
    }
}

extension BackupTests {
    /// A backup that fails leaves nothing behind (a new target is removed, an empty one emptied),
    /// and a FIFO where a segment file should be fails it at once rather than blocking.
    @Test func aFailedBackupLeavesNothing() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path + "/db")
        defer { db.close() }
        let c = try db.createCollection("c", dimension: 2, options: CollectionOptions(index: IndexSettings(segmentSize: 4)))
        try c.upsert((0..<8).map { Document(id: "d\($0)", vector: [Float($0), 1]) })
        try db.compact()
        let segmentDirectory = dir.path + "/db/segments/\(c.info.number)"
        let segment = try #require(try FileSystem.list(segmentDirectory).first)
        try FileSystem.rename(segmentDirectory + "/" + segment, dir.path + "/aside")
        #expect(mkfifo(segmentDirectory + "/" + segment, 0o644) == 0)
        try FileSystem.createDirectory(dir.path + "/empty")
        for target in [dir.path + "/new", dir.path + "/empty"] {
            guard let outcome = within(10, { try db.backup(to: target) }) else {
                Issue.record("backup blocked on a FIFO")
                continue
            }
            guard case .failure(let error) = outcome else { Issue.record("a backup with a FIFO for a segment file succeeded"); continue }
            #expect("\(error)".contains("FIFO"), "\(error)")
        }
        #expect(!FileSystem.exists(dir.path + "/new"))
        #expect(try FileSystem.list(dir.path + "/empty").isEmpty)
        try FileSystem.remove(segmentDirectory + "/" + segment)
        try FileSystem.rename(dir.path + "/aside", segmentDirectory + "/" + segment)
        #expect(try db.backup(to: dir.path + "/empty").files >= 2)
    }
}

final class ResultBox<R>: @unchecked Sendable {
    var result: Result<R, any Error>?
}

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    var value: Bool { lock.lock(); defer { lock.unlock() }; return flag }
    func set() { lock.lock(); flag = true; lock.unlock() }
}

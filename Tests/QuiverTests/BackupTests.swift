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
        usleep(300_000)
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

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    var value: Bool { lock.lock(); defer { lock.unlock() }; return flag }
    func set() { lock.lock(); flag = true; lock.unlock() }
}

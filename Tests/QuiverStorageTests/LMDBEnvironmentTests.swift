import Foundation
import Testing
import QuiverTestSupport
@testable import QuiverStorage

struct LMDBEnvironmentTests {
    /// A big-endian u64 key (bytewise order is numeric order).
    func key(_ n: UInt64) -> [UInt8] { withUnsafeBytes(of: n.bigEndian) { Array($0) } }

    @Test func prefixScans() throws {
        let dir = TemporaryDirectory()
        let env = try LMDBEnvironment(path: dir.path)
        let t = try env.table("t")
        try env.write { (txn: LMDBTransaction) throws in
            for k in ["a/1", "a/2", "b/1", "a/3", "ab"] { try txn.put(t, Array(k.utf8), Array(k.utf8)) }
        }
        var seen: [String] = []
        try env.read { (txn: LMDBTransaction) throws in
            try txn.forEach(t, prefix: Array("a/".utf8)) { k, _ in
                seen.append(String(decoding: k, as: UTF8.self))
                return true
            }
        }
        #expect(seen == ["a/1", "a/2", "a/3"])
    }

    @Test func abortedWriteLeavesNothing() throws {
        let dir = TemporaryDirectory()
        let env = try LMDBEnvironment(path: dir.path)
        let t = try env.table("t")
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try env.write { (txn: LMDBTransaction) throws in
                try txn.put(t, [1], [1])
                throw Boom()
            }
        }
        try env.read { (txn: LMDBTransaction) throws in #expect(try txn.get(t, [1]) == nil) }
    }

    /// Writes far past the initial map size: the map doubles instead of failing.
    @Test func mapGrowsPastTheInitialSize() throws {
        let dir = TemporaryDirectory()
        let initial = 1 << 20
        let env = try LMDBEnvironment(path: dir.path, mapSize: initial)
        let t = try env.table("big")
        let value = [UInt8](repeating: 7, count: 64 << 10)
        for batch in 0..<8 {
            try env.write { (txn: LMDBTransaction) throws in
                for i in 0..<16 { try txn.put(t, key(UInt64(batch * 16 + i)), value) }
            }
        }
        #expect(env.mapGrowths >= 2)
        #expect(env.mapSize > initial * 4)
        try env.read { (txn: LMDBTransaction) throws in #expect(try txn.count(t) == 128) }
        // A reopen with a small requested size keeps the data.
        let reopened = try LMDBEnvironment(path: dir.path, mapSize: initial)
        let t2 = try reopened.table("big")
        try reopened.read { (txn: LMDBTransaction) throws in #expect(try txn.get(t2, key(127)) == value) }
    }

    @Test func readersSeeSnapshots() throws {
        let dir = TemporaryDirectory()
        let env = try LMDBEnvironment(path: dir.path)
        let t = try env.table("t")
        try env.write { try $0.put(t, [1], [1]) }
        try env.read { (txn: LMDBTransaction) throws in
            // A write committed by another thread while this snapshot is open is not visible in it.
            let done = DispatchSemaphore(value: 0)
            Thread { try? env.write { try $0.put(t, [1], [2]) }; done.signal() }.start()
            done.wait()
            #expect(try txn.get(t, [1]) == [1])
        }
        try env.read { (txn: LMDBTransaction) throws in #expect(try txn.get(t, [1]) == [2]) }
    }
}

struct ZstdTests {
    @Test func roundTripAndLimits() throws {
        let text = Array(String(repeating: "the quick brown fox jumps over the lazy dog. ", count: 200).utf8)
        let frame = try Zstd.compress(text)
        #expect(frame.count < text.count / 5)
        #expect(try Zstd.decompress(frame, maxSize: text.count) == text)
        #expect(throws: StorageError.self) { try Zstd.decompress(frame, maxSize: text.count - 1) }
        #expect(throws: StorageError.self) { try Zstd.decompress([1, 2, 3, 4, 5], maxSize: 100) }
    }
}

struct FileSystemTests {
    @Test func atomicWriteReplaces() throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/f"
        try FileSystem.writeAtomically([1, 2, 3], to: path)
        try FileSystem.writeAtomically([4], to: path)
        #expect(try File(path: path, mode: .readOnly).readAll() == [4])
        #expect(try FileSystem.list(dir.path) == ["f"])
    }

    @Test func errorsNameTheFile() {
        do {
            _ = try File(path: "/nonexistent-dir/x", mode: .readOnly)
            Issue.record("opened a missing file")
        } catch let e as StorageError {
            #expect(e.kind == .io && e.code == ENOENT && e.message.contains("/nonexistent-dir/x"))
        } catch { Issue.record("unexpected \(error)") }
    }
}

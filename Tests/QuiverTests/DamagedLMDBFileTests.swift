import Foundation
import Testing
import QuiverTestSupport
@testable import Quiver
@testable import QuiverStorage
import QuiverCore

/// A short, empty or foreign `lmdb/data.mdb` is a clear error naming the file, never a signal
/// death (LMDB maps the file; a page past its end faults) and never a fresh empty database: for
/// the LMDB environment, a read-only and a writable `Database`, and every CLI command (exit 1).
struct DamagedLMDBFileTests {
    /// A database of 300 documents (the LMDB file spans many pages) with a sealed segment.
    func makeDatabase(_ path: String) throws -> Int {
        let db = try Database(path: path)
        let c = try db.createCollection("c", dimension: 4)
        var rng = SplitMix64(state: 5)
        try c.upsert((0..<300).map { i in
            Document(id: "d\(i)", text: String(repeating: "text \(i) ", count: 20), vector: (0..<4).map { _ in Float.random(in: -1...1, using: &rng) })
        })
        try db.compact("c")
        db.close()
        return try File(path: path + "/lmdb/data.mdb", mode: .readOnly).size()
    }

    /// Lengths to cut the file to: empty, inside the first meta page, between the meta pages,
    /// inside the second, mid-file, one page short, one byte short.
    func lengths(_ size: Int) -> [(String, Int)] {
        [("empty", 0), ("100 bytes (< 1 page)", 100), ("4,096 bytes (1 page)", 4_096), ("6,000 bytes (< 2 pages)", 6_000),
         ("mid-file", size / 2), ("one page short", size - 4_096), ("one byte short", size - 1)]
    }

    func expectNamesTheFile(_ error: Error, _ what: String) {
        let text = "\(error)"
        #expect(text.contains("lmdb/data.mdb"), "\(what): the error does not name the file: \(text)")
    }

    @Test func truncatedFilesAreErrorsForReadersAndWriters() throws {
        let dir = TemporaryDirectory()
        let original = dir.path + "/original"
        let size = try makeDatabase(original)
        #expect(size > 16 * 4_096, "the database file is too small for the test to mean anything: \(size) bytes")
        for (name, length) in lengths(size) {
            let db = dir.path + "/\(length)"
            try FileManager.default.copyItem(atPath: original, toPath: db)
            #expect(truncate(db + "/lmdb/data.mdb", off_t(length)) == 0)
            #expect(throws: StorageError.self, "\(name): LMDBEnvironment") { _ = try LMDBEnvironment(path: db + "/lmdb", readOnly: true) }
            #expect(throws: StorageError.self, "\(name): LMDBEnvironment") { _ = try LMDBEnvironment(path: db + "/lmdb") }
            for readOnly in [true, false] {
                do {
                    let opened = try Database(path: db, options: DatabaseOptions(readOnly: readOnly))
                    opened.close()
                    Issue.record("\(name): a \(readOnly ? "read-only" : "writable") open succeeded")
                } catch {
                    expectNamesTheFile(error, "\(name), \(readOnly ? "read-only" : "writable")")
                }
            }
            // Nothing was initialised over it.
            #expect(try File(path: db + "/lmdb/data.mdb", mode: .readOnly).size() == length, "\(name): the file was changed")
        }
    }

    @Test func aFileThatIsNotLMDBIsAnError() throws {
        let dir = TemporaryDirectory()
        let original = dir.path + "/original"
        let size = try makeDatabase(original)
        var rng = SplitMix64(state: 9)
        let contents: [(String, [UInt8])] = [
            ("random bytes", (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }),
            ("text", Array(String(repeating: "not an LMDB file\n", count: 1_000).utf8)),
            ("zeros", [UInt8](repeating: 0, count: size)),
        ]
        for (name, bytes) in contents {
            let db = dir.path + "/" + name.replacingOccurrences(of: " ", with: "-")
            try FileManager.default.copyItem(atPath: original, toPath: db)
            try Data(bytes).write(to: URL(fileURLWithPath: db + "/lmdb/data.mdb"))
            for readOnly in [true, false] {
                do {
                    _ = try Database(path: db, options: DatabaseOptions(readOnly: readOnly))
                    Issue.record("\(name): a \(readOnly ? "read-only" : "writable") open succeeded")
                } catch {
                    expectNamesTheFile(error, name)
                }
            }
        }
    }

    /// A missing or empty data.mdb beside the log is refused (it must never become a fresh empty
    /// database); an empty one in a directory with no log is a creation that stopped inside LMDB's
    /// initialisation, and a writable open creates the database.
    @Test func aMissingOrEmptyFileBesideTheLogIsRefused() throws {
        let dir = TemporaryDirectory()
        let original = dir.path + "/original"
        _ = try makeDatabase(original)
        for empty in [true, false] {
            let db = dir.path + "/\(empty ? "empty" : "missing")"
            try FileManager.default.copyItem(atPath: original, toPath: db)
            try FileSystem.remove(db + "/lmdb/data.mdb")
            if empty { try Data().write(to: URL(fileURLWithPath: db + "/lmdb/data.mdb")) }
            for readOnly in [true, false] {
                #expect(throws: QuiverError.self, "\(empty ? "empty" : "missing"), \(readOnly ? "read-only" : "writable")") {
                    _ = try Database(path: db, options: DatabaseOptions(readOnly: readOnly))
                }
            }
            #expect(FileSystem.exists(db + "/lmdb/data.mdb") == empty, "the file was created or removed")
        }
        let interrupted = dir.path + "/interrupted"
        try FileSystem.createDirectory(interrupted)
        try FileSystem.createDirectory(interrupted + "/lmdb")
        try Data().write(to: URL(fileURLWithPath: interrupted + "/lmdb/data.mdb"))
        #expect(throws: QuiverError.self) { _ = try Database(path: interrupted, options: DatabaseOptions(readOnly: true)) }
        let created = try Database(path: interrupted)
        try created.createCollection("c", dimension: 2)
        created.close()
        #expect(try Database(path: interrupted, options: DatabaseOptions(readOnly: true)).collections().count == 1)
    }

    /// LMDB checks its lock file and re-initialises it when no other process uses it: garbage,
    /// a truncated or a missing lock.mdb is harmless.
    @Test func aDamagedLockFileIsReinitialised() throws {
        let dir = TemporaryDirectory()
        let db = dir.path + "/db"
        _ = try makeDatabase(db)
        var rng = SplitMix64(state: 3)
        for damage in ["garbage", "truncated", "empty", "missing"] {
            let lock = db + "/lmdb/lock.mdb"
            switch damage {
            case "garbage": try Data((0..<40_000).map { _ in UInt8.random(in: 0...255, using: &rng) }).write(to: URL(fileURLWithPath: lock))
            case "truncated": #expect(truncate(lock, 10) == 0)
            case "empty": #expect(truncate(lock, 0) == 0)
            default: try FileSystem.remove(lock)
            }
            for readOnly in [true, false] {
                let opened = try Database(path: db, options: DatabaseOptions(readOnly: readOnly))
                #expect(try opened.collection("c").get("d7")?.id == "d7", "\(damage) lock file")
                opened.close()
            }
        }
    }

    /// Every CLI command on a truncated file: exit 1 (not a signal), a message naming the file.
    @Test func everyCommandExitsOneOnATruncatedFile() throws {
        let dir = TemporaryDirectory()
        let original = dir.path + "/original"
        let size = try makeDatabase(original)
        let commands: [([String], String?)] = [
            (["collections"], nil), (["stats"], nil), (["get", "c", "d1"], nil), (["search", "c", "--vector", "[1,0,0,0]"], nil),
            (["search", "c", "--vector", "[1,0,0,0]", "--exact"], nil), (["export", "c", dir.path + "/out.jsonl"], nil),
            (["verify"], nil), (["put", "c", "-"], "{\"id\":\"x\",\"vector\":[1,0,0,0]}"), (["delete", "c", "d1"], nil),
            (["index", "c", "tag", "--type", "keyword"], nil), (["compact", "c"], nil), (["create", "e", "--dimension", "2"], nil),
            (["drop", "c"], nil), (["backup", dir.path + "/backup"], nil),
        ]
        for (name, length) in [("empty", 0), ("< 1 page", 100), ("< 2 pages", 6_000), ("mid-file", size / 2), ("one page short", size - 4_096)] {
            let db = dir.path + "/db-\(length)"
            try FileManager.default.copyItem(atPath: original, toPath: db)
            #expect(truncate(db + "/lmdb/data.mdb", off_t(length)) == 0)
            let cli = CLI(db: db)
            for (arguments, input) in commands {
                let r = try cli.run(arguments, stdin: input)
                #expect(r.status == 1 && r.stderr.contains("lmdb/data.mdb"),
                        "\(name): quiver \(arguments.joined(separator: " ")) exited \(r.status): \(r.stderr)")
                try? FileManager.default.removeItem(atPath: dir.path + "/backup")
            }
            // `init` refuses to create over it (an existing file: "a database already exists";
            // an empty one beside the log: the error naming it).
            let initialised = try cli.run(["init"])
            #expect(initialised.status == 1, "\(name): quiver init exited \(initialised.status): \(initialised.stderr)")
        }
    }

    /// The free-list walk of the check (used when the file is shorter than its last page) reads a
    /// real free list: after deletes, it finds free pages, all within the file.
    @Test func theFreeListWalkReadsARealFreeList() throws {
        let dir = TemporaryDirectory()
        let db = dir.path + "/db"
        _ = try makeDatabase(db)
        let opened = try Database(path: db)
        _ = try opened.collection("c").delete(ids: (0..<250).map { "d\($0)" })
        opened.close()
        let file = try File(path: db + "/lmdb/data.mdb", mode: .readOnly)
        let size = try file.size()
        let meta = try LMDBFileCheck.pickMeta(file, size: size)
        var free = Set<UInt64>()
        try LMDBFileCheck.collectFreePages(file, meta: meta, pagesInFile: UInt64(size / meta.pageSize), into: &free, short: "")
        #expect(!free.isEmpty)
        #expect(free.allSatisfy { $0 >= 2 && $0 <= meta.lastPage }, "free pages \(free.sorted()) outside 2...\(meta.lastPage)")
    }
}

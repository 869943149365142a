import Foundation
import QuiverCore
import QuiverStorage

/*
 A backup is a directory:

   BACKUP                         JSON manifest (below), written last, atomically
   lmdb/data.mdb                  a compacted copy of LMDB (mdb_env_copy2): one consistent snapshot
   segments/<C>/<id>.hnsw|.ivfpq  the segment files that snapshot's manifest names

 BACKUP: {"format": 1, "created": <seconds since 1970>, "source": <path>, "appliedSequence": <n>,
          "files": [{"path": <relative path>, "size": <bytes>, "crc32c": <checksum>}]}

 The log is not copied: the LMDB snapshot holds every write applied when it was taken (with its
 `applied_seq`), and a restored database starts a fresh log after that number. Writes acknowledged
 after the snapshot are not in the backup, which equals the source at the instant of the snapshot.
*/

/// The manifest of a backup directory.
struct BackupManifest: Codable {
    struct Entry: Codable {
        var path: String
        var size: Int
        var crc32c: UInt32
    }

    var format = 1
    var created: Double
    var source: String
    var appliedSequence: UInt64
    var files: [Entry]
}

/// What `Database.backup` and `Database.restore` did.
public struct BackupReport: Sendable, Codable, Equatable {
    /// Files written.
    public var files: Int
    /// Bytes written.
    public var bytes: Int
    /// The log sequence number the backup holds every write up to.
    public var appliedSequence: UInt64
}

extension Database {
    /// Copies a consistent snapshot of the database into `directory`, which must not exist or be
    /// empty, while the database stays open for reads and writes (background sealing and compaction
    /// wait until the copy is done). Every file is fsynced; the manifest is written last.
    @discardableResult
    public func backup(to directory: String) throws -> BackupReport {
        try Backup.checkEmptyTarget(directory)
        return try wrapStorage {
            try segments.queue.sync {
                try FileSystem.createDirectory(directory)
                try env.copy(to: directory + "/lmdb")
                try FileSystem.remove(directory + "/lmdb/lock.mdb")
                var entries: [BackupManifest.Entry] = []
                entries.append(try Backup.entry(directory, "lmdb/data.mdb"))
                // The segment files the copied snapshot names (maintenance is paused, so they exist).
                let copy = try LMDBEnvironment(path: directory + "/lmdb", mapSize: 1 << 20, readOnly: false)
                let copyTables = try Tables(copy)
                let (named, applied): ([(UInt32, SegmentRecord)], UInt64) = try copy.read { txn in
                    var out: [(UInt32, SegmentRecord)] = []
                    try txn.forEach(copyTables.segments) { k, v in
                        let c = UInt32(k[0]) << 24 | UInt32(k[1]) << 16 | UInt32(k[2]) << 8 | UInt32(k[3])
                        out.append((c, try SegmentRecord(stored: v, key: k, collection: "number \(c)")))
                        return true
                    }
                    let applied = try txn.get(copyTables.meta, Array("applied_seq".utf8)).map { try ByteReader($0).readUInt64Value() } ?? 0
                    return (out, applied)
                }
                try FileSystem.remove(directory + "/lmdb/lock.mdb")
                for (c, record) in named {
                    let relative = "segments/\(c)/" + record.fileName
                    try FileSystem.createDirectory(directory + "/segments/\(c)")
                    try Backup.copyFile(path + "/" + relative, to: directory + "/" + relative)
                    entries.append(try Backup.entry(directory, relative))
                }
                let manifest = BackupManifest(created: Date().timeIntervalSince1970, source: path, appliedSequence: applied, files: entries)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                try FileSystem.writeAtomically(Array(try encoder.encode(manifest)), to: directory + "/BACKUP")
                return BackupReport(files: entries.count, bytes: entries.reduce(0) { $0 + $1.size }, appliedSequence: applied)
            }
        }
    }

    /// Restores the backup in `backup` into `directory` (which must not exist or be empty unless
    /// `overwrite`; with it, an existing database there is replaced). Every file is checked against
    /// the backup's manifest first; a manifest naming anything but LMDB's data file and segment
    /// files, or a symbolic link in the backup, is refused, so nothing is written outside `directory`.
    @discardableResult
    public static func restore(backup: String, to directory: String, overwrite: Bool = false) throws -> BackupReport {
        let manifest = try Backup.readManifest(backup)
        if overwrite {
            if FileSystem.exists(directory) {
                let entries = (try? FileSystem.list(directory)) ?? []
                guard entries.allSatisfy({ ["lmdb", "wal", "segments", "LOCK"].contains($0) }) else {
                    throw QuiverError.invalidArgument("\(directory) holds files that are not a Quiver database; refusing to overwrite it")
                }
                // Refuse while another process has it open.
                if FileSystem.exists(directory + "/LOCK") {
                    let lock = try wrapStorage { try File(path: directory + "/LOCK", mode: .readWrite) }
                    defer { lock.close() }
                    guard try wrapStorage({ try lock.tryLockExclusive() }) else { throw QuiverError.databaseLocked(path: directory) }
                }
                try wrapStorage { try FileSystem.removeTree(directory) }
            }
        } else {
            try Backup.checkEmptyTarget(directory)
        }
        try wrapStorage {
            try FileSystem.createDirectory(directory)
            for entry in manifest.files {
                try FileSystem.createDirectory(FileSystem.parentDirectory(of: directory + "/" + entry.path))
                try Backup.copyFile(backup + "/" + entry.path, to: directory + "/" + entry.path)
            }
            try FileSystem.createDirectory(directory + "/wal")
            try FileSystem.syncDirectory(directory)
        }
        return BackupReport(files: manifest.files.count, bytes: manifest.files.reduce(0) { $0 + $1.size }, appliedSequence: manifest.appliedSequence)
    }
}

enum Backup {
    static func checkEmptyTarget(_ directory: String) throws {
        var st = stat()
        if lstat(directory, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw QuiverError.invalidArgument("\(directory) exists and is not a directory") }
            guard (try? FileSystem.list(directory))?.isEmpty ?? false else {
                throw QuiverError.invalidArgument("\(directory) is not empty; choose a new directory (or, for a restore, pass overwrite)")
            }
        }
    }

    static func entry(_ root: String, _ relative: String) throws -> BackupManifest.Entry {
        let bytes = try File(path: root + "/" + relative, mode: .readOnly).readAll()
        return BackupManifest.Entry(path: relative, size: bytes.count, crc32c: CRC32C.checksum(bytes))
    }

    /// Copies a regular file (never following a symbolic link) and fsyncs the copy.
    static func copyFile(_ from: String, to: String) throws {
        var st = stat()
        guard lstat(from, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw StorageError(.invalidArgument, "\(from) is not a regular file")
        }
        let source = try File(path: from, mode: .readOnly)
        defer { source.close() }
        let target = try File(path: to, mode: .createNew)
        defer { target.close() }
        var offset = 0
        while true {
            let chunk = try source.read(count: 4 << 20, at: offset)
            if chunk.isEmpty { break }
            try target.write(chunk, at: offset)
            offset += chunk.count
        }
        try target.sync()
    }

    /// Reads and checks a backup's manifest and files: known paths only, no links, sizes and checksums.
    static func readManifest(_ backup: String) throws -> BackupManifest {
        guard let data = FileManager.default.contents(atPath: backup + "/BACKUP") else {
            throw QuiverError.notADatabase(path: backup, reason: "no BACKUP manifest: not a Quiver backup (or an unfinished one)")
        }
        let manifest: BackupManifest
        do { manifest = try JSONDecoder().decode(BackupManifest.self, from: data) } catch {
            throw QuiverError.notADatabase(path: backup, reason: "the BACKUP manifest is damaged")
        }
        guard manifest.format == 1 else { throw QuiverError.notADatabase(path: backup, reason: "backup format \(manifest.format) is not supported") }
        guard manifest.files.contains(where: { $0.path == "lmdb/data.mdb" }) else {
            throw QuiverError.notADatabase(path: backup, reason: "the manifest names no lmdb/data.mdb")
        }
        for entry in manifest.files {
            guard isAllowed(entry.path) else {
                throw QuiverError.invalidArgument("the backup manifest names '\(entry.path)', which is not a database file; refusing to restore it")
            }
            // No link anywhere on the way: each component must be a real directory or file.
            var walked = backup
            for component in entry.path.split(separator: "/") {
                walked += "/" + component
                var st = stat()
                guard lstat(walked, &st) == 0 else { throw QuiverError.invalidArgument("the backup lacks \(entry.path)") }
                if (st.st_mode & S_IFMT) == S_IFLNK { throw QuiverError.invalidArgument("\(walked) is a symbolic link; refusing to restore through it") }
            }
            let bytes = try wrapStorage { try File(path: backup + "/" + entry.path, mode: .readOnly).readAll() }
            guard bytes.count == entry.size, CRC32C.checksum(bytes) == entry.crc32c else {
                throw QuiverError.storage(StorageError(.corrupt, "\(backup)/\(entry.path) does not match the backup's manifest (size or checksum)"))
            }
        }
        return manifest
    }

    /// Only LMDB's data file and segment files `segments/<digits>/<20 digits>.hnsw` (or `.ivfpq`) may be restored.
    static func isAllowed(_ path: String) -> Bool {
        if path == "lmdb/data.mdb" { return true }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "segments", !parts[1].isEmpty, parts[1].count <= 10, parts[1].allSatisfy(\.isASCIIDigitCharacter) else { return false }
        let file = parts[2]
        guard (file.count == 25 && file.hasSuffix(".hnsw")) || (file.count == 26 && file.hasSuffix(".ivfpq")) else { return false }
        return file.prefix(20).allSatisfy(\.isASCIIDigitCharacter)
    }
}

extension Character {
    var isASCIIDigitCharacter: Bool { isASCII && isNumber }
}

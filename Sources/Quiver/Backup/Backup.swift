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
 written as JSONEncoder's .prettyPrinted, .sortedKeys, .withoutEscapingSlashes output (UTF-8, no final
 newline), `files` holding lmdb/data.mdb first, then the segment files in the snapshot's manifest
 order; crc32c is the CRC-32C of the whole file. docs/file-formats.md ("Backup directory") has it
 key by key and line by line, with the rules `readManifest` checks before a restore.

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
    /// empty, while the database stays open for reads and writes, here or (opened read-only, as
    /// `quiver backup` opens it) beside a writer in another process. LMDB is copied with
    /// `mdb_env_copy2` (one snapshot), then the segment files that snapshot's manifest names.
    /// Background sealing and compaction of this process wait until the copy is done; a writer in
    /// another process may merge a file away meanwhile, so the files named by the latest manifest
    /// are opened before the copy (an open file stays readable after it is removed), and when a file
    /// named by the copy's manifest is gone anyway, the backup starts again from a newer snapshot
    /// (up to 20 times). Every file is fsynced; the manifest is written last. On failure nothing
    /// this call wrote is left in `directory`.
    @discardableResult
    public func backup(to directory: String) throws -> BackupReport {
        try Backup.checkEmptyTarget(directory)
        let existed = FileSystem.isDirectory(directory)
        do {
            return try wrapStorage {
                try segments.queue.sync {
                    var attempt = 0
                    while true {
                        attempt += 1
                        if let report = try backupOnce(to: directory) { return report }
                        guard attempt < 20 else {
                            throw StorageError(.io, "the backup could not be completed: in \(attempt) attempts the writer merged away a segment file of each snapshot before it was copied", code: ENOENT)
                        }
                        try Backup.clear(directory)
                        usleep(UInt32(1_000 * attempt))
                    }
                }
            }
        } catch {
            if existed { try? Backup.clear(directory) } else { try? FileSystem.removeTree(directory) }
            throw error
        }
    }

    /// One attempt: nil when a segment file the copied snapshot names was removed before it could
    /// be opened (a writer in another process merged it away).
    private func backupOnce(to directory: String) throws -> BackupReport? {
        // Pin the files the latest manifest names: the copy's snapshot is this one or newer, and a
        // newer one names these files or ones written since.
        var pinned: [String: File] = [:]
        defer { for f in pinned.values { f.close() } }
        for (c, record) in try Backup.segmentRecords(env, tables) {
            let relative = "segments/\(c)/" + record.fileName
            if let file = try Backup.openIfPresent(path + "/" + relative) { pinned[relative] = file }
        }
        try FileSystem.createDirectory(directory)
        try env.copy(to: directory + "/lmdb")
        try FileSystem.remove(directory + "/lmdb/lock.mdb")
        do {
            // mdb_env_copy2 writes the copy without fsyncing it.
            let copied = try File(path: directory + "/lmdb/data.mdb", mode: .readWrite)
            defer { copied.close() }
            try copied.sync()
        }
        var entries: [BackupManifest.Entry] = [try Backup.entry(directory, "lmdb/data.mdb")]
        // The segment files the copied snapshot names.
        let (named, applied): ([(UInt32, SegmentRecord)], UInt64)
        do {
            let copy = try LMDBEnvironment(path: directory + "/lmdb", mapSize: 1 << 20, readOnly: true)
            let copyTables = try Tables(copy)
            named = try Backup.segmentRecords(copy, copyTables)
            applied = try copy.read { txn in try Meta.appliedSequence(txn: txn, tables: copyTables) }
        }
        try FileSystem.remove(directory + "/lmdb/lock.mdb")
        for (c, record) in named {
            let relative = "segments/\(c)/" + record.fileName
            guard let source = try pinned[relative] ?? Backup.openIfPresent(path + "/" + relative) else { return nil }
            pinned[relative] = source
            try FileSystem.createDirectory(directory + "/segments/\(c)")
            let (size, crc) = try Backup.copy(source, to: directory + "/" + relative, expectedSize: nil)
            entries.append(BackupManifest.Entry(path: relative, size: size, crc32c: crc))
        }
        for c in Set(named.map(\.0)) { try FileSystem.syncDirectory(directory + "/segments/\(c)") }
        if !named.isEmpty { try FileSystem.syncDirectory(directory + "/segments") }
        try FileSystem.syncDirectory(directory + "/lmdb")
        let manifest = BackupManifest(created: Date().timeIntervalSince1970, source: path, appliedSequence: applied, files: entries)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try FileSystem.writeAtomically(Array(try encoder.encode(manifest)), to: directory + "/BACKUP")
        return BackupReport(files: entries.count, bytes: entries.reduce(0) { $0 + $1.size }, appliedSequence: applied)
    }

    /// Restores the backup in `backup` into `directory` (which must not exist or be empty unless
    /// `overwrite`, the CLI's `--force`; with it, an existing database there is replaced, never while
    /// another process has it open). The manifest is checked first: only LMDB's data file and
    /// segment files, each listed once, each a regular file reached without a symbolic link (a FIFO or
    /// device is refused without blocking on it), so nothing is read from or written outside the two
    /// directories. The files are copied into a new directory beside `directory`, each checked
    /// against the manifest's size and CRC-32C as it is copied, then renamed into place: on any
    /// failure the temporary directory is removed and `directory` is as it was.
    @discardableResult
    public static func restore(backup: String, to directory: String, overwrite: Bool = false) throws -> BackupReport {
        let manifest = try Backup.readManifest(backup)
        let target = Backup.normalized(directory)
        let existing = try wrapStorage { try FileSystem.status(target) }
        let targetExists = existing != nil
        var lock: File?
        defer { lock?.close() }
        if let existing, overwrite {
            guard existing.isDirectory else {
                throw QuiverError.invalidArgument("\(MessageText.path(target)) exists and is not a directory; refusing to overwrite it")
            }
            let entries = try wrapStorage { try FileSystem.list(target) }
            guard entries.allSatisfy({ ["lmdb", "wal", "segments", "LOCK"].contains($0) }) else {
                throw QuiverError.invalidArgument("\(MessageText.path(target)) holds files that are not a Quiver database; refusing to overwrite it")
            }
            // Refused while another process has it open; the lock is held until it is replaced.
            if FileSystem.exists(target + "/LOCK") {
                let file = try wrapStorage { try File(path: target + "/LOCK", mode: .readWrite) }
                lock = file
                guard try wrapStorage({ try file.tryLockExclusive() }) else { throw QuiverError.databaseLocked(path: target) }
            }
        } else {
            try Backup.checkEmptyTarget(target, restoring: true)
        }
        let parent = FileSystem.parentDirectory(of: target)
        guard FileSystem.isDirectory(parent) else {
            throw QuiverError.invalidArgument("cannot restore into \(MessageText.path(target)): its parent directory \(MessageText.path(parent)) does not exist")
        }
        let base = String(target[target.index(after: target.lastIndex(of: "/") ?? target.startIndex)...])
        let suffix = "\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let staging = parent + "/." + base + ".restoring-" + suffix
        do {
            try wrapStorage {
                try FileSystem.createDirectory(staging)
                for entry in manifest.files {
                    try FileSystem.createDirectory(FileSystem.parentDirectory(of: staging + "/" + entry.path))
                    try Backup.copyChecked(backup + "/" + entry.path, to: staging + "/" + entry.path, entry: entry)
                }
                try FileSystem.createDirectory(staging + "/wal")
                for c in Set(manifest.files.map { FileSystem.parentDirectory(of: $0.path) }) { try FileSystem.syncDirectory(staging + "/" + c) }
                try FileSystem.syncDirectory(staging)
                if targetExists && overwrite {
                    // The old database is moved aside, the new one renamed into place, the old removed.
                    let aside = parent + "/." + base + ".replaced-" + suffix
                    try FileSystem.rename(target, aside)
                    do { try FileSystem.rename(staging, target) } catch {
                        try? FileSystem.rename(aside, target)
                        throw error
                    }
                    try? FileSystem.removeTree(aside)
                } else {
                    // rename(2) replaces an empty directory.
                    try FileSystem.rename(staging, target)
                }
                try FileSystem.syncDirectory(parent)
            }
        } catch {
            try? FileSystem.removeTree(staging)
            throw error
        }
        return BackupReport(files: manifest.files.count, bytes: manifest.files.reduce(0) { $0 + $1.size }, appliedSequence: manifest.appliedSequence)
    }
}

enum Backup {
    /// The manifest's largest accepted size (a real one is a few hundred bytes per file).
    static let maxManifestBytes = 64 << 20

    /// `path` without trailing slashes; an existing directory (not a link to one) by its real path (so that `.` or a
    /// path through `..` names the directory itself, which a restore replaces by renaming).
    static func normalized(_ path: String) -> String {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        if (try? FileSystem.status(p))??.isDirectory == true, let real = FileSystem.realPath(p) { return real }
        if !p.contains("/") { p = "./" + p }
        return p
    }

    /// A backup's or a restore's target must not exist, or be an empty directory.
    static func checkEmptyTarget(_ directory: String, restoring: Bool = false) throws {
        if let status = try wrapStorage({ try FileSystem.status(directory) }) {
            guard status.isDirectory else { throw QuiverError.invalidArgument("\(MessageText.path(directory)) exists and is not a directory") }
            guard (try? FileSystem.list(directory))?.isEmpty ?? false else {
                throw QuiverError.invalidArgument("\(MessageText.path(directory)) is not empty; choose a new directory"
                    + (restoring ? ", or replace the database there with restore(overwrite: true) (quiver restore --force)" : ""))
            }
        }
    }

    /// The manifest entry of a file: its size and CRC-32C, read in chunks.
    static func entry(_ root: String, _ relative: String) throws -> BackupManifest.Entry {
        let file = try File(regularFileForReading: root + "/" + relative)
        defer { file.close() }
        var crc: UInt32 = 0, offset = 0
        while true {
            let chunk = try file.read(count: 4 << 20, at: offset)
            if chunk.isEmpty { break }
            crc = chunk.withUnsafeBytes { CRC32C.update(crc, $0) }
            offset += chunk.count
        }
        return BackupManifest.Entry(path: relative, size: offset, crc32c: crc)
    }

    /// Every segment record of every collection in `env`'s latest snapshot.
    static func segmentRecords(_ env: LMDBEnvironment, _ tables: Tables) throws -> [(UInt32, SegmentRecord)] {
        try env.read { txn in
            var out: [(UInt32, SegmentRecord)] = []
            try txn.forEach(tables.segments) { k, v in
                let c = UInt32(k[0]) << 24 | UInt32(k[1]) << 16 | UInt32(k[2]) << 8 | UInt32(k[3])
                out.append((c, try SegmentRecord(stored: v, key: k, collection: "number \(c)")))
                return true
            }
            return out
        }
    }

    /// The regular file at `path` opened for reading, or nil when it does not exist.
    static func openIfPresent(_ path: String) throws -> File? {
        do { return try File(regularFileForReading: path) } catch let e as StorageError where e.kind == .io && e.code == ENOENT {
            return nil
        }
    }

    /// Removes everything inside `directory` (which stays).
    static func clear(_ directory: String) throws {
        guard FileSystem.isDirectory(directory) else { return }
        for name in try FileSystem.list(directory) { try FileSystem.removeTree(directory + "/" + name) }
    }

    /// Copies a backup's file, checking it against its manifest entry as it goes.
    static func copyChecked(_ from: String, to: String, entry: BackupManifest.Entry) throws {
        let (size, crc) = try copy(from, to: to, expectedSize: entry.size)
        guard size == entry.size, crc == entry.crc32c else {
            throw StorageError(.corrupt, "\(from) does not match the backup's manifest (\(size) bytes, CRC-32C \(crc); the manifest says \(entry.size) bytes, \(entry.crc32c))")
        }
    }

    private static func copy(_ from: String, to: String, expectedSize: Int?) throws -> (size: Int, crc32c: UInt32) {
        let source = try File(regularFileForReading: from)
        defer { source.close() }
        return try copy(source, to: to, expectedSize: expectedSize)
    }

    /// Copies an open file into a new file `to`, fsyncs the copy, and returns its size and CRC-32C.
    static func copy(_ source: File, to: String, expectedSize: Int?) throws -> (size: Int, crc32c: UInt32) {
        let target = try File(path: to, mode: .createNew)
        defer { target.close() }
        var offset = 0
        var crc: UInt32 = 0
        while true {
            let chunk = try source.read(count: 4 << 20, at: offset)
            if chunk.isEmpty { break }
            try target.write(chunk, at: offset)
            crc = chunk.withUnsafeBytes { CRC32C.update(crc, $0) }
            offset += chunk.count
            // A file that grew past what the manifest says cannot match it: stop reading.
            if let expected = expectedSize, offset > expected { break }
        }
        try target.sync()
        return (offset, crc)
    }

    /// Reads and checks a backup's manifest: its format, known paths only, each listed once, each a
    /// regular file reached without a symbolic link. (Sizes and checksums are checked as the files
    /// are copied.)
    static func readManifest(_ backup: String) throws -> BackupManifest {
        let manifestPath = backup + "/BACKUP"
        guard try wrapStorage({ try FileSystem.status(manifestPath) }) != nil else {
            throw QuiverError.notADatabase(path: backup, reason: "no BACKUP manifest: not a Quiver backup (or an unfinished one)")
        }
        let bytes: [UInt8] = try wrapStorage {
            let file = try File(regularFileForReading: manifestPath)
            defer { file.close() }
            let size = try file.size()
            guard size <= maxManifestBytes else {
                throw StorageError(.corrupt, "\(manifestPath) is \(size) bytes, more than a backup manifest can be (\(maxManifestBytes))")
            }
            return try file.read(count: size, at: 0)
        }
        let manifest: BackupManifest
        do { manifest = try JSONDecoder().decode(BackupManifest.self, from: Data(bytes)) } catch {
            throw QuiverError.notADatabase(path: backup, reason: "the BACKUP manifest is damaged")
        }
        guard manifest.format == 1 else { throw QuiverError.notADatabase(path: backup, reason: "backup format \(manifest.format) is not supported") }
        guard manifest.files.contains(where: { $0.path == "lmdb/data.mdb" }) else {
            throw QuiverError.notADatabase(path: backup, reason: "the manifest names no lmdb/data.mdb")
        }
        var listed = Set<String>()
        for entry in manifest.files {
            guard isAllowed(entry.path) else {
                throw QuiverError.invalidArgument("the backup manifest names \(MessageText.quoted(entry.path)), which is not a database file; refusing to restore it")
            }
            guard listed.insert(entry.path).inserted else {
                throw QuiverError.invalidArgument("the backup manifest lists \(MessageText.quoted(entry.path)) more than once; refusing to restore it")
            }
            guard entry.size >= 0 else { throw QuiverError.notADatabase(path: backup, reason: "the manifest gives \(entry.path) a negative size") }
            // No link anywhere on the way: each directory a real directory, the file a regular file.
            var walked = backup
            let components = entry.path.split(separator: "/")
            for (i, component) in components.enumerated() {
                walked += "/" + component
                guard let status = try wrapStorage({ try FileSystem.status(walked) }) else { throw QuiverError.invalidArgument("the backup lacks \(entry.path)") }
                if status.isSymbolicLink { throw QuiverError.invalidArgument("\(MessageText.path(walked)) is a symbolic link; refusing to restore through it") }
                let isFile = i == components.count - 1
                if isFile ? !status.isRegularFile : !status.isDirectory {
                    throw QuiverError.invalidArgument("\(MessageText.path(walked)) is \(status.kind), not \(isFile ? "a regular file" : "a directory"); refusing to restore it")
                }
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

import Foundation
import QuiverCore
import QuiverStorage

/// The steps of `Database.init`, in the order they run. A writable open: check the directory, take
/// the lock, open LMDB, check (or write, or upgrade to) the format, open the log, replay it, complete
/// the derived data an upgrade needs, load the segments. A read-only open: open LMDB read-only,
/// check the format, load the segments (in `init`, through `reloadSegments`).
extension Database {
    /// What the open steps produce, for `init` to store.
    struct Opened {
        let env: LMDBEnvironment, tables: Tables
        /// nil when read-only.
        let wal: WriteAheadLog?, lockFile: File?
        let segments: SegmentManager, recorder: TimingsRecorder
        let report: OpenReport
    }

    static func openReadOnly(_ path: String, options: DatabaseOptions) throws -> Opened {
        guard try mainFileExists(path, readOnly: true) else {
            throw QuiverError.notADatabase(path: path, reason: "no database there to open read-only")
        }
        let env = try LMDBEnvironment(path: path + "/lmdb", mapSize: options.initialMapSize, maxTables: 32, readOnly: true)
        // The format first, from `meta` alone: an older format may lack tables of this one (which a
        // read-only environment cannot create).
        let meta = try env.table("meta")
        try checkFormat(try env.read { txn in try Meta.format(txn: txn, meta: meta) }, path: path, readOnly: true)
        let tables = try Tables(env)
        let recorder = TimingsRecorder()
        let segments = SegmentManager(root: path + "/segments", env: env, tables: tables, timings: recorder, readOnly: true)
        return Opened(env: env, tables: tables, wal: nil, lockFile: nil, segments: segments, recorder: recorder,
                      report: OpenReport(staleReaders: env.staleReadersCleared))
    }

    static func openWritable(_ path: String, options: DatabaseOptions) throws -> Opened {
        let exists = try mainFileExists(path, readOnly: false)
        if !exists { try checkCreatable(path, options: options) }
        try FileSystem.createDirectory(path)
        let lockFile = try File(path: path + "/LOCK", mode: .createReadWrite)
        guard try lockFile.tryLockExclusive() else { throw QuiverError.databaseLocked(path: path) }
        try FileSystem.createDirectory(path + "/segments")
        let sync: LMDBEnvironment.SyncMode = options.durability == .full ? .dataSync : .noSync
        let env = try LMDBEnvironment(path: path + "/lmdb", mapSize: options.initialMapSize, maxTables: 32, syncMode: sync)
        let tables = try Tables(env)
        let (format, applied, upgraded) = try prepareFormat(env: env, tables: tables, exists: exists)
        try checkFormat(format, path: path, readOnly: false)
        // The log may be behind LMDB (a power loss can keep an LMDB commit and lose the log
        // records before it); the log then drops its files, so LMDB's state must be durable first.
        try env.sync()
        let (wal, salvaged) = try openLog(path, options: options, applied: applied)
        var report = OpenReport(replayedRecords: 0, truncatedLogBytes: wal.recovery.truncatedBytes + wal.recovery.truncatedDamagedAppliedBytes,
                                staleReaders: env.staleReadersCleared)
        if let n = upgraded {
            report.upgradedFromFormat = 1
            report.upgradedValues = n
        }
        report.salvagedLog = salvaged
        report.droppedDamagedLogFiles = wal.recovery.removedDamagedAppliedFiles
        // Replay what LMDB has not applied, one LMDB transaction per record, in order. A record
        // that cannot apply (not a passing I/O failure) stops replay without failing the open:
        // reads are served from what LMDB holds, writes are refused until `repair()`.
        (report.replayedRecords, report.unappliedRecord) = try replay(wal, after: applied, env: env, tables: tables)
        try completeDerivedData(env: env, tables: tables, upgraded: upgraded != nil)
        // Index segments: mapped from their files, tombstoned from LMDB, mutable ones rebuilt.
        let recorder = TimingsRecorder()
        let segments = SegmentManager(root: path + "/segments", env: env, tables: tables, timings: recorder)
        let (infos, entries) = try env.read { txn in (try intactCollections(txn: txn, tables: tables), try txn.count(tables.catalog)) }
        try segments.load(infos, keepUnknownDirectories: entries != infos.count)
        report.orphanSegmentFiles = segments.orphansRemoved
        report.damagedSegments = segments.damagedSegments()
        return Opened(env: env, tables: tables, wal: wal, lockFile: lockFile, segments: segments, recorder: recorder, report: report)
    }

    /// Whether `lmdb/data.mdb` holds a database. A missing or empty one where the directory says a
    /// database exists (a log file, a segment file) is an error, never a fresh empty database: that
    /// would silently lose everything. An empty one in a directory with neither is a creation that
    /// stopped inside LMDB's initialisation (LMDB creates the file, then writes its meta pages; the
    /// log is created only after the first commit is durable): a writable open removes it and
    /// creates the database afresh.
    static func mainFileExists(_ path: String, readOnly: Bool) throws -> Bool {
        let file = path + "/lmdb/data.mdb"
        let status = try wrapStorage { try FileSystem.status(file) }
        if let status, !status.isRegularFile {
            throw QuiverError.storage(StorageError(.corrupt, "the LMDB data file \(file) is not a regular file"))
        }
        if let status, status.size > 0 { return true }
        let logFiles = ((try? FileSystem.list(path + "/wal")) ?? []).filter { $0.hasSuffix(".wal") }
        let segmentDirectories = (try? FileSystem.list(path + "/segments")) ?? []
        if !logFiles.isEmpty || !segmentDirectories.isEmpty {
            let evidence = !logFiles.isEmpty ? "its log (\(path)/wal) holds \(logFiles.count) file(s)"
                                             : "it holds segment directories (\(path)/segments)"
            throw QuiverError.storage(StorageError(.corrupt, "the LMDB data file \(file) is \(status != nil ? "empty (0 bytes)" : "missing"), but \(path) holds a database: \(evidence); restore it from a backup"))
        }
        if status != nil && !readOnly { try wrapStorage { try FileSystem.remove(file) } }
        return false
    }

    /// Before creating a database at `path`: refuses a file, a missing database unless
    /// `createIfMissing`, and a directory holding anything but a database's own entries.
    private static func checkCreatable(_ path: String, options: DatabaseOptions) throws {
        if FileSystem.exists(path) && !FileSystem.isDirectory(path) {
            throw QuiverError.notADatabase(path: path, reason: "it is a file, not a directory")
        }
        if !options.createIfMissing {
            throw QuiverError.notADatabase(path: path, reason: "no database there (create one with `quiver init \(path)`)")
        }
        if FileSystem.isDirectory(path), let entries = try? FileSystem.list(path), !entries.isEmpty,
           !entries.allSatisfy({ ["lmdb", "wal", "segments", "LOCK"].contains($0) }) {
            throw QuiverError.notADatabase(path: path, reason: "the directory is not empty and holds no database")
        }
    }

    /// In one LMDB transaction: the format marker of a new database, the applied sequence, and the
    /// upgrade of a format-1 database (the number of values it rewrote), before anything (replay
    /// included) writes. Returns the format found or written (nil: no marker).
    private static func prepareFormat(env: LMDBEnvironment, tables: Tables, exists: Bool) throws -> (format: UInt32?, applied: UInt64, upgraded: Int?) {
        try env.write { txn in
            var format = try Meta.format(txn: txn, meta: tables.meta)
            // A new database, or one whose creation a crash interrupted before its first commit
            // (an LMDB file with nothing in it): write the format marker.
            if format == nil, try !exists || (txn.count(tables.meta) == 0 && txn.count(tables.catalog) == 0) {
                try Meta.setFormat(formatVersion, txn: txn, tables: tables)
                format = formatVersion
            }
            let applied = try Meta.appliedSequence(txn: txn, tables: tables)
            var upgraded: Int?
            if format == 1 {
                upgraded = try FormatUpgrade.toFormat2(txn: txn, tables: tables)
                format = 2
            }
            return (format, applied, upgraded)
        }
    }

    /// The format check of both opens: `format` (read from `meta`) must be this code's.
    private static func checkFormat(_ format: UInt32?, path: String, readOnly: Bool) throws {
        guard let f = format else { throw QuiverError.notADatabase(path: path, reason: "LMDB holds no Quiver format marker") }
        guard f == formatVersion else { throw QuiverError.notADatabase(path: path, reason: unreadableFormat(f, readOnly: readOnly)) }
    }

    /// Why a database of format `f` cannot be opened.
    static func unreadableFormat(_ f: UInt32, readOnly: Bool) -> String {
        if f == 1 && readOnly {
            return "it is of format version 1, written by an earlier Quiver; open it for writing once (any writing command, such as `quiver compact`) to upgrade it to version \(formatVersion), which checksums every stored value"
        }
        return "format version \(f); this Quiver reads version \(formatVersion)" + (f == 1 ? " (and upgrades version 1 when opened for writing)" : "")
    }

    /// Opens the log (after setting aside a damaged part when `salvageDamagedLog`), numbering the
    /// next record after LMDB's applied one at least.
    private static func openLog(_ path: String, options: DatabaseOptions, applied: UInt64) throws -> (WriteAheadLog, WriteAheadLog.SalvageReport?) {
        let durability: Durability
        switch options.durability {
        case .full: durability = .full
        case .relaxed(let ms): durability = .relaxed(milliseconds: max(1, ms))
        }
        var salvaged: WriteAheadLog.SalvageReport?
        if options.salvageDamagedLog {
            let stamp = String(format: "%.0f", Date().timeIntervalSince1970)
            salvaged = try WriteAheadLog.salvage(directory: path + "/wal", quarantine: path + "/quarantine/wal-" + stamp)
        }
        let wal = try WriteAheadLog(directory: path + "/wal", durability: durability, maxFileSize: options.walFileSize, minimumNextSequence: applied + 1)
        return (wal, salvaged)
    }

    /// Derived data a format-1 database lacks or keyed otherwise: the metadata field catalog (of
    /// collections written before it existed), and, after an upgrade, payload entries (format 1 had
    /// no long-field or long-keyword forms), rebuilt from the documents.
    private static func completeDerivedData(env: LMDBEnvironment, tables: Tables, upgraded: Bool) throws {
        try env.write { txn in
            for info in try intactCollections(txn: txn, tables: tables) {
                if try !FieldCatalog.isComplete(info.number, txn: txn, tables: tables) {
                    try FieldCatalog.rebuild(info.number, txn: txn, tables: tables)
                }
                if upgraded { try PayloadIndexing.rebuild(info, txn: txn, tables: tables) }
            }
        }
    }
}

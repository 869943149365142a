import Foundation
import QuiverCore
import QuiverStorage

/// A Quiver database: one directory holding `lmdb/` (catalog, documents, vectors), `wal/` (the
/// write-ahead log) and `segments/` (index segment files).
///
/// Thread-safety: a `Database` is `Sendable` and meant to be shared. Writes from any number of
/// threads or tasks are serialized (one writer at a time, as LMDB requires) and share fsyncs
/// (group commit); reads run in parallel with each other and with writes, each on a consistent
/// snapshot. Only one process may open a database for writing at a time; a second gets
/// `QuiverError.databaseLocked`. Any number of processes may open it with
/// `DatabaseOptions.readOnly` beside the writer (see there).
///
/// Durability: with `.full` (the default) every write returns after its log record and its LMDB
/// commit are fsynced; `kill -9` or a power loss at any moment loses no acknowledged write, and a
/// log record past LMDB's last applied one is never an acknowledged write (so recovery may drop
/// it when it is torn or damaged). Every write is applied to LMDB before it returns, so a read
/// that follows it sees it.
public final class Database: @unchecked Sendable {
    // @unchecked: mutable state (`state`) is guarded by `stateLock`; writes are serialized by
    // `writeLock`; LMDB and the WAL are thread-safe under their own rules.

    /// The database directory.
    public let path: String
    /// The options it was opened with.
    public let options: DatabaseOptions

    let env: LMDBEnvironment
    /// nil when open read-only.
    let wal: WriteAheadLog?
    let tables: Tables
    let segments: SegmentManager
    let timingsRecorder: TimingsRecorder
    let filterCache = FilterCache()
    private let lockFile: File?
    /// Read-only: the LMDB transaction id the in-memory segments were loaded at.
    private var segmentsLoadedAt = 0
    private let writeLock = NSLock()
    private let stateLock = NSLock()
    private var closed = false
    private var failure: QuiverError?
    /// The sequence of the last write committed to LMDB (under `writeLock`; read under `syncLock`).
    private var committedThrough: UInt64 = 0
    /// Serializes the LMDB syncs of `full` durability; `syncedThrough` is the last sequence whose
    /// LMDB commit is known durable, so one sync serves every write committed before it began.
    private let syncLock = NSLock()
    private var syncedThrough: UInt64 = 0
    /// The log record replay could not apply, until `repair()` sets it aside.
    var unapplied: UnappliedRecord?

    /// What opening the database found and repaired.
    public struct OpenReport: Sendable, Equatable {
        /// Log records replayed into LMDB.
        public var replayedRecords = 0
        /// Bytes of a torn log tail that were cut.
        public var truncatedLogBytes = 0
        /// Stale LMDB reader slots cleared.
        public var staleReaders = 0
        /// Segment files (or directories) that no manifest entry named, removed: what a crash during
        /// sealing or compaction leaves behind.
        public var orphanSegmentFiles = 0
        /// Segment files that could not be used (damaged, truncated, missing), one sentence each:
        /// their rows are searched exactly meanwhile, and a writable open rebuilds them from LMDB
        /// in the background (`repair()` does it at once).
        public var damagedSegments: [String] = []
        /// A log record that replay could not apply (it and the records after it are not applied):
        /// the database serves reads but refuses writes until `repair()` sets it aside.
        public var unappliedRecord: UnappliedRecord?
        /// What `DatabaseOptions.salvageDamagedLog` set aside of a damaged log (nil when nothing).
        public var salvagedLog: WriteAheadLog.SalvageReport?
        /// Damaged log files whose records LMDB already held, removed (nothing was lost).
        public var droppedDamagedLogFiles: [String] = []
        /// The format the database was upgraded from at this open (nil: none was needed).
        public var upgradedFromFormat: UInt32? = nil
        /// LMDB values rewritten by that upgrade.
        public var upgradedValues = 0
    }

    /// What opening the database found and repaired.
    public private(set) var openReport: OpenReport

    /// The format version this code writes and reads. Format 1 (values without checksums) is
    /// upgraded at the first writable open; a read-only open of it is refused.
    public static let formatVersion: UInt32 = 2

    /// Opens the database in directory `path`, creating it when missing (unless
    /// `options.createIfMissing` is false). Recovers after a crash: a torn log tail is cut and the
    /// log past LMDB's last applied record is replayed.
    public init(path: String, options: DatabaseOptions = DatabaseOptions()) throws {
        self.path = path
        self.options = options
        let lmdbPath = path + "/lmdb"
        let exists = try Database.mainFileExists(path, readOnly: options.readOnly)
        if options.readOnly {
            guard exists else { throw QuiverError.notADatabase(path: path, reason: "no database there to open read-only") }
            do {
                let env = try LMDBEnvironment(path: lmdbPath, mapSize: options.initialMapSize, maxTables: 32, readOnly: true)
                // The format first, from `meta` alone: an older format may lack tables of this one
                // (which a read-only environment cannot create).
                let meta = try env.table("meta")
                let format = try env.read { txn in try txn.get(meta, Array("format".utf8)).map { try ByteReader($0).readUInt32Value() } }
                guard format == Database.formatVersion else {
                    throw QuiverError.notADatabase(path: path, reason: format.map { Database.unreadableFormat($0, readOnly: true) } ?? "LMDB holds no Quiver format marker")
                }
                let tables = try Tables(env)
                let recorder = TimingsRecorder()
                let segments = SegmentManager(root: path + "/segments", env: env, tables: tables, timings: recorder, readOnly: true)
                self.env = env
                self.tables = tables
                self.wal = nil
                self.lockFile = nil
                self.segments = segments
                self.timingsRecorder = recorder
                openReport = OpenReport(staleReaders: env.staleReadersCleared)
                try reloadSegments()
                openReport.damagedSegments = segments.damagedSegments()
            } catch let e as StorageError {
                throw QuiverError.storage(e)
            }
            return
        }
        if !exists {
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
        do {
            try FileSystem.createDirectory(path)
            let lockFile = try File(path: path + "/LOCK", mode: .createReadWrite)
            guard try lockFile.tryLockExclusive() else { throw QuiverError.databaseLocked(path: path) }
            try FileSystem.createDirectory(path + "/segments")
            let sync: LMDBEnvironment.SyncMode = options.durability == .full ? .dataSync : .noSync
            let env = try LMDBEnvironment(path: lmdbPath, mapSize: options.initialMapSize, maxTables: 32, syncMode: sync)
            let tables = try Tables(env)
            let (format, applied, upgraded) = try env.write { txn -> (UInt32?, UInt64, Int?) in
                var format = try txn.get(tables.meta, Array("format".utf8)).map { try ByteReader($0).readUInt32Value() }
                // A new database, or one whose creation a crash interrupted before its first commit
                // (an LMDB file with nothing in it): write the format marker.
                if format == nil, try !exists || (txn.count(tables.meta) == 0 && txn.count(tables.catalog) == 0) {
                    var w = ByteWriter()
                    w.write(Database.formatVersion)
                    try txn.put(tables.meta, Array("format".utf8), w.bytes)
                    format = Database.formatVersion
                }
                let applied = try txn.get(tables.meta, Array("applied_seq".utf8)).map { try ByteReader($0).readUInt64Value() } ?? 0
                // A format-1 database gets its checksums before anything (replay included) writes.
                var upgraded: Int?
                if format == 1 {
                    upgraded = try FormatUpgrade.toFormat2(txn: txn, tables: tables)
                    format = 2
                }
                return (format, applied, upgraded)
            }
            guard let f = format else { throw QuiverError.notADatabase(path: path, reason: "LMDB holds no Quiver format marker") }
            guard f == Database.formatVersion else {
                throw QuiverError.notADatabase(path: path, reason: Database.unreadableFormat(f, readOnly: false))
            }
            let durability: Durability
            switch options.durability {
            case .full: durability = .full
            case .relaxed(let ms): durability = .relaxed(milliseconds: max(1, ms))
            }
            // The log may be behind LMDB (a power loss can keep an LMDB commit and lose the log
            // records before it); the log then drops its files, so LMDB's state must be durable first.
            try env.sync()
            var salvaged: WriteAheadLog.SalvageReport?
            if options.salvageDamagedLog {
                let stamp = String(format: "%.0f", Date().timeIntervalSince1970)
                salvaged = try WriteAheadLog.salvage(directory: path + "/wal", quarantine: path + "/quarantine/wal-" + stamp)
            }
            let wal = try WriteAheadLog(directory: path + "/wal", durability: durability, maxFileSize: options.walFileSize, minimumNextSequence: applied + 1)
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
            let (replayed, unapplied) = try Database.replay(wal, after: applied, env: env, tables: tables)
            report.replayedRecords = replayed
            report.unappliedRecord = unapplied
            // Derived data a format-1 database lacks or keyed otherwise: the metadata field catalog
            // (of collections written before it existed), and payload entries (format 1 had no
            // long-field or long-keyword forms), rebuilt from the documents.
            try env.write { txn in
                for info in try Database.intactCollections(txn: txn, tables: tables) {
                    if try !FieldCatalog.isComplete(info.number, txn: txn, tables: tables) {
                        try FieldCatalog.rebuild(info.number, txn: txn, tables: tables)
                    }
                    if upgraded != nil { try PayloadIndexing.rebuild(info, txn: txn, tables: tables) }
                }
            }
            // Index segments: mapped from their files, tombstoned from LMDB, mutable ones rebuilt.
            let recorder = TimingsRecorder()
            let segments = SegmentManager(root: path + "/segments", env: env, tables: tables, timings: recorder)
            let (infos, damaged) = try env.read { txn in
                (try Database.intactCollections(txn: txn, tables: tables), try txn.count(tables.catalog))
            }
            try segments.load(infos, keepUnknownDirectories: damaged != infos.count)
            report.orphanSegmentFiles = segments.orphansRemoved
            report.damagedSegments = segments.damagedSegments()
            self.lockFile = lockFile
            self.env = env
            self.tables = tables
            self.wal = wal
            self.segments = segments
            self.timingsRecorder = recorder
            openReport = report
            if let u = report.unappliedRecord {
                self.unapplied = u
                failure = u.refusal(path: path)
            } else {
                // Damaged segments are rebuilt from LMDB in the background; they are searched exactly meanwhile.
                segments.scheduleHeal()
            }
        } catch let e as StorageError {
            throw QuiverError.storage(e)
        }
    }

    /// Whether `lmdb/data.mdb` holds a database. A missing or empty one where the directory says a
    /// database exists (a log file, a segment file) is an error, never a fresh empty database: that
    /// would silently lose everything. An empty one in a directory with neither is a creation that
    /// stopped inside LMDB's initialisation (LMDB creates the file, then writes its meta pages; the
    /// log is created only after the first commit is durable): a writable open removes it and
    /// creates the database afresh.
    static func mainFileExists(_ path: String, readOnly: Bool) throws -> Bool {
        let file = path + "/lmdb/data.mdb"
        var st = stat()
        let present = lstat(file, &st) == 0
        if present && (st.st_mode & S_IFMT) != S_IFREG {
            throw QuiverError.storage(StorageError(.corrupt, "the LMDB data file \(file) is not a regular file"))
        }
        if present && st.st_size > 0 { return true }
        let logFiles = ((try? FileSystem.list(path + "/wal")) ?? []).filter { $0.hasSuffix(".wal") }
        let segmentDirectories = (try? FileSystem.list(path + "/segments")) ?? []
        if !logFiles.isEmpty || !segmentDirectories.isEmpty {
            let evidence = !logFiles.isEmpty ? "its log (\(path)/wal) holds \(logFiles.count) file(s)"
                                             : "it holds segment directories (\(path)/segments)"
            throw QuiverError.storage(StorageError(.corrupt, "the LMDB data file \(file) is \(present ? "empty (0 bytes)" : "missing"), but \(path) holds a database: \(evidence); restore it from a backup"))
        }
        if present && !readOnly { try wrapStorage { try FileSystem.remove(file) } }
        return false
    }

    /// Why a database of format `f` cannot be opened.
    static func unreadableFormat(_ f: UInt32, readOnly: Bool) -> String {
        if f == 1 && readOnly {
            return "it is of format version 1, written by an earlier Quiver; open it for writing once (any writing command, such as `quiver compact`) to upgrade it to version \(formatVersion), which checksums every stored value"
        }
        return "format version \(f); this Quiver reads version \(formatVersion)" + (f == 1 ? " (and upgrades version 1 when opened for writing)" : "")
    }

    deinit { close() }

    /// Flushes and closes the database; later calls throw `QuiverError.unavailable`.
    /// Closing twice is harmless.
    public func close() {
        writeLock.lock()
        defer { writeLock.unlock() }
        stateLock.lock()
        let wasClosed = closed
        closed = true
        stateLock.unlock()
        if wasClosed { return }
        segments.stop()
        guard !options.readOnly else { return }
        wal?.close()
        try? env.sync()
        lockFile?.close()
    }

    // MARK: - Collections

    /// Creates a collection of `dimension`-d vectors compared with `metric`.
    @discardableResult
    public func createCollection(_ name: String, dimension: Int, metric: Metric = .cosine,
                                 options: CollectionOptions = CollectionOptions()) throws -> Collection {
        try createCollection(name, dimension: dimension, metric: metric, encoder: nil, options: options)
    }

    /// Creates a collection whose documents may be given as text: `encoder` (a name registered in
    /// `options.encoders`, e.g. `all-MiniLM-L6-v2`) turns text into vectors on insert, and its query
    /// tower encodes `search(text:)`. The dimension is the encoder's unless given (and then must
    /// match). The catalog records the encoder's identifier, dimension and weights checksum.
    @discardableResult
    public func createCollection(_ name: String, dimension: Int? = nil, metric: Metric = .cosine, encoder: String?,
                                 options: CollectionOptions = CollectionOptions()) throws -> Collection {
        try Validation.collectionName(name)
        var binding: EncoderBinding?
        var d = dimension ?? 0
        if let encoderName = encoder {
            let (b, _) = try self.binding(forEncoder: encoderName)
            if let given = dimension, given != b.dimension {
                throw QuiverError.invalidArgument("encoder '\(encoderName)' makes \(b.dimension)-d vectors, but dimension \(given) was asked for")
            }
            d = b.dimension
            binding = b
        } else if dimension == nil {
            throw QuiverError.invalidArgument("a collection without an encoder needs a dimension")
        }
        try Validation.dimension(d)
        guard options.textCompressionThreshold >= 0 else {
            throw QuiverError.invalidArgument("the text compression threshold must not be negative")
        }
        try options.index.validate(dimension: d)
        let info: CollectionInfo = try write { txn in
            if try txn.contains(tables.catalog, Array(name.utf8)) { throw QuiverError.collectionExists(name) }
            let next = try txn.get(tables.meta, Array("next_collection".utf8)).map { try ByteReader($0).readUInt32Value() } ?? 1
            let info = CollectionInfo(name: name, dimension: d, metric: metric, encoder: binding,
                                      textCompressionThreshold: options.textCompressionThreshold,
                                      createdAt: Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded()), number: next,
                                      index: options.index, fullText: options.fullText)
            return (.createCollection(info), info)
        }
        return Collection(database: self, info: info)
    }

    /// The collection named `name`.
    public func collection(_ name: String) throws -> Collection {
        Collection(database: self, info: try describe(name))
    }

    /// Every collection, sorted by name.
    public func collections() throws -> [CollectionInfo] {
        try readTransaction { txn in
            var out: [CollectionInfo] = []
            try txn.forEach(tables.catalog) { k, v in
                out.append(try CollectionInfo(stored: v, key: k))
                return true
            }
            return out
        }
    }

    /// The collections whose catalog entries are intact, for loading their segments at open: a
    /// damaged entry must not stop the database from opening (every use of that collection reads
    /// its entry and reports the damage; `verify` names it).
    static func intactCollections(txn: LMDBTransaction, tables: Tables) throws -> [CollectionInfo] {
        var out: [CollectionInfo] = []
        try txn.forEach(tables.catalog) { k, v in
            if let info = try? CollectionInfo(stored: v, key: k) { out.append(info) }
            return true
        }
        return out
    }

    /// The description of the collection named `name`.
    public func describe(_ name: String) throws -> CollectionInfo {
        try readTransaction { txn in try info(name, txn: txn) }
    }

    /// Drops a collection and everything in it.
    public func dropCollection(_ name: String) throws {
        try write { txn in
            let info = try info(name, txn: txn)
            return (.dropCollection(number: info.number, name: name), ())
        }
    }

    func info(_ name: String, txn: LMDBTransaction) throws -> CollectionInfo {
        guard let bytes = try txn.get(tables.catalog, Array(name.utf8)) else { throw QuiverError.unknownCollection(name) }
        return try CollectionInfo(stored: bytes, key: Array(name.utf8))
    }

    /// The catalog entry of collection `number` (log records and row keys name collections by number).
    /// A damaged entry of another collection is passed over; when none matches and one is damaged,
    /// that damage is the error (it may be this collection's entry).
    static func info(number: UInt32, txn: LMDBTransaction, tables: Tables) throws -> CollectionInfo {
        var found: CollectionInfo?
        var damage: Error?
        try txn.forEach(tables.catalog) { k, v in
            do {
                let info = try CollectionInfo(stored: v, key: k)
                if info.number == number { found = info }
            } catch {
                damage = damage ?? error
            }
            return found == nil
        }
        if found == nil, let damage { throw damage }
        guard let info = found else { throw StorageError(.corrupt, "collection number \(number) is named by a log record but not in the catalog") }
        return info
    }

    // MARK: - The write path

    /// Runs one write: `prepare` validates against the current state (in a write transaction that
    /// is then aborted) and returns the mutation; the mutation is logged, applied in one LMDB
    /// transaction, and made durable per the durability setting before this returns.
    func write<R>(_ prepare: (LMDBTransaction) throws -> (LogRecord, R)) throws -> R {
        writeLock.lock()
        var sequence: UInt64 = 0
        let result: R
        do {
            defer { writeLock.unlock() }
            try checkWritable()
            // Validation reads the state under the writer lock, so nothing can change it before apply.
            let t0 = monotonicSeconds()
            let (mutation, r) = try readTransaction { txn in
                let prepared = try prepare(txn)
                try Database.checkStoredValues(read: prepared.0, txn: txn, tables: tables)
                return prepared
            }
            result = r
            let payload = try mutation.payload()
            try StorageLimits.check(payload: payload, documents: mutation.documentCount)
            guard let wal else { throw QuiverError.unavailable("the database at \(path) is open read-only") }
            do {
                sequence = try wal.append(type: mutation.type, payload: payload)
                let t1 = monotonicSeconds()
                let tables = self.tables
                let change = try env.write { txn in try Database.apply(mutation, sequence: sequence, txn: txn, tables: tables) }
                syncLock.lock(); committedThrough = sequence; syncLock.unlock()
                let t2 = monotonicSeconds()
                try segments.applied(change)
                let t3 = monotonicSeconds()
                timingsRecorder.add {
                    $0.logSeconds += t1 - t0
                    $0.lmdbSeconds += t2 - t1
                    $0.indexingSeconds += t3 - t2
                    $0.batches += 1
                }
            } catch {
                // The log and LMDB may now disagree; stop taking writes. Reopening replays the log.
                let reason = QuiverError.unavailable("the database at \(path) stopped accepting writes after a storage failure (\(error)); reopen it to recover")
                stateLock.lock(); failure = reason; stateLock.unlock()
                if let e = error as? StorageError { throw QuiverError.storage(e) }
                throw error
            }
            do {
                try checkpointIfNeeded()
            } catch {
                // The write is applied (and logged) but reports this failure, so it is in doubt; like
                // any failed storage step, stop taking writes until a reopen recovers.
                let reason = QuiverError.unavailable("the database at \(path) stopped accepting writes after a failed checkpoint (\(error)); reopen it to recover")
                stateLock.lock(); failure = reason; stateLock.unlock()
                throw error
            }
        }
        if options.durability == .full {
            let t = monotonicSeconds()
            try makeLMDBDurable(through: sequence)
            try wrapStorage { try wal?.waitUntilDurable(sequence) }
            let waited = monotonicSeconds() - t
            timingsRecorder.add { $0.fsyncSeconds += waited }
        }
        return result
    }

    /// With `full` durability, a write is acknowledged only once its LMDB commit is on disk too:
    /// LMDB runs with `MDB_NOMETASYNC` (data pages fsynced at commit, the meta page lazily), so
    /// without this a power loss could undo the last commit and leave the write only in the log's
    /// last record, where damage to that record could not be told from a torn append. One
    /// `mdb_env_sync` serves every write committed before it began (group commit); it runs outside
    /// the writer lock, beside the log's own fsync. A failure leaves the write in doubt: the
    /// database stops taking writes until a reopen recovers.
    private func makeLMDBDurable(through sequence: UInt64) throws {
        syncLock.lock()
        defer { syncLock.unlock() }
        if syncedThrough >= sequence { return }
        let through = committedThrough
        do {
            try env.sync()
        } catch {
            let reason = QuiverError.unavailable("the database at \(path) stopped accepting writes after a failed LMDB sync (\(error)); reopen it to recover")
            stateLock.lock(); failure = reason; stateLock.unlock()
            if let e = error as? StorageError { throw QuiverError.storage(e) }
            throw error
        }
        syncedThrough = through
    }

    /// Runs `body` with the writer lock held (no write runs meanwhile).
    func withWriterLock<R>(_ body: () throws -> R) rethrows -> R {
        writeLock.lock()
        defer { writeLock.unlock() }
        return try body()
    }

    /// For `repair`: open, for writing, and not fail-stopped by a storage failure (which only a
    /// reopen recovers from); a pending unappliable record is what repair is for.
    func checkOpenForRepair() throws {
        stateLock.lock(); defer { stateLock.unlock() }
        if closed { throw QuiverError.unavailable("the database at \(path) is closed") }
        if options.readOnly { throw QuiverError.unavailable("the database at \(path) is open read-only; repair needs it open for writing") }
        if let f = failure, unapplied == nil { throw f }
    }

    /// After `repair` set aside the records that could not apply: writes are taken again.
    func clearUnapplied() {
        stateLock.lock(); defer { stateLock.unlock() }
        unapplied = nil
        failure = nil
    }

    func checkWritable() throws {
        stateLock.lock(); defer { stateLock.unlock() }
        if closed { throw QuiverError.unavailable("the database at \(path) is closed") }
        if options.readOnly { throw QuiverError.unavailable("the database at \(path) is open read-only") }
        if let f = failure { throw f }
    }

    /// Runs `body` in a read snapshot.
    func readTransaction<R>(_ body: (LMDBTransaction) throws -> R) throws -> R {
        stateLock.lock()
        let isClosed = closed
        stateLock.unlock()
        if isClosed { throw QuiverError.unavailable("the database at \(path) is closed") }
        return try wrapStorage { try env.read(body) }
    }

    /// With the writer lock held: when the log has grown past `checkpointBytes`, flush LMDB and drop
    /// the log files it covers.
    private func checkpointIfNeeded() throws {
        if let wal, wal.diskSize > options.checkpointBytes { try checkpointLocked() }
    }

    private func checkpointLocked() throws {
        guard let wal else { return }
        try wrapStorage {
            try wal.syncNow()
            try env.sync()
            let applied = try env.read { txn in
                try txn.get(tables.meta, Array("applied_seq".utf8)).map { try ByteReader($0).readUInt64Value() } ?? 0
            }
            try wal.truncate(upTo: applied)
        }
    }

    /// The sequence number of the last write LMDB holds.
    func appliedSequence() throws -> UInt64 {
        try readTransaction { txn in
            try txn.get(tables.meta, Array("applied_seq".utf8)).map { try ByteReader($0).readUInt64Value() } ?? 0
        }
    }

    /// Read-only: reloads the in-memory segments when the writer has committed since they were
    /// loaded, so that a search sees what `get` sees. A no-op for a writable database.
    func refreshIfReadOnly() throws {
        guard options.readOnly else { return }
        writeLock.lock()
        defer { writeLock.unlock() }
        if env.lastTransactionID != segmentsLoadedAt { try reloadSegments() }
    }

    /// Read-only, with `writeLock` held (or in init): loads every collection's segments from the
    /// latest snapshot. The writer may remove a merged-away file between the snapshot and the
    /// mapping: then the load starts again from a newer snapshot.
    private func reloadSegments() throws {
        var attempt = 0
        while true {
            let at = env.lastTransactionID
            do {
                let infos = try readTransaction { txn in try Database.intactCollections(txn: txn, tables: tables) }
                try wrapStorage { try segments.load(infos, standInMissing: attempt >= 20) }
                segmentsLoadedAt = at
                filterCache.removeAll()
                return
            } catch QuiverError.storage(let e) where e.kind == .io && e.code == ENOENT && attempt < 20 {
                attempt += 1
                usleep(1_000)
            }
        }
    }

    /// Flushes LMDB to disk and removes the log files it makes redundant.
    public func checkpoint() throws {
        writeLock.lock()
        defer { writeLock.unlock() }
        try checkWritable()
        try checkpointLocked()
    }

    /// Before a mutation is logged: decodes (so checks the checksum of) every stored value that
    /// applying it reads, so that a damaged value refuses the write before the log holds a record
    /// that cannot apply: the catalog, the counters, the documents it replaces or deletes (their
    /// text and metadata too), and for a full-text collection the BM25 totals and the document
    /// frequencies of the old and new texts' terms; every document for a new payload index.
    static func checkStoredValues(read mutation: LogRecord, txn: LMDBTransaction, tables: Tables) throws {
        func documents(_ number: UInt32, _ ids: [String], newTexts: [String]) throws {
            let info = try info(number: number, txn: txn, tables: tables)
            _ = try Counters.read(number, collection: info.name, txn: txn, tables: tables)
            var texts = newTexts
            for id in ids {
                let key = Keys.document(number, id)
                guard let old = try txn.get(tables.documents, key) else { continue }
                let record = try DocumentRecord(stored: old, key: key, collection: info.name, withText: info.fullText != nil)
                if let text = record.text { texts.append(text) }
            }
            guard let ft = info.fullText, !texts.isEmpty else { return }
            _ = try TextIndexStore.stats(number, name: info.name, txn: txn, tables: tables)
            var terms = Set<String>()
            for text in texts { terms.formUnion(ft.analyzerValue.terms(text).filter { $0.utf8.count <= 256 }) }
            for term in terms {
                _ = try TextIndexStore.documentFrequency(Keys.collection(number) + Array(term.utf8), collection: info.name, txn: txn, tables: tables)
            }
        }
        switch mutation {
        case .createCollection, .dropCollection, .tuning:
            return
        case .write(let number, _, let docs, _):
            try documents(number, docs.map(\.id), newTexts: docs.compactMap(\.text))
        case .delete(let number, let ids):
            try documents(number, ids, newTexts: [])
        case .createPayloadIndex(let number, _):
            let info = try info(number: number, txn: txn, tables: tables)
            try txn.forEach(tables.documents, prefix: Keys.collection(number)) { k, v in
                _ = try DocumentRecord(stored: v, key: k, collection: info.name, withText: false)
                return true
            }
        }
    }

    /// Applies one logged mutation in `txn` and records `sequence` as applied. Deterministic: the
    /// same record applied to the same state gives the same state, which replay relies on.
    /// Returns what changed, for the in-memory segments (updated after the transaction commits).
    @discardableResult
    static func apply(_ mutation: LogRecord, sequence: UInt64, txn: LMDBTransaction, tables: Tables) throws -> AppliedChange {
        let change: AppliedChange
        switch mutation {
        case .createCollection(let info):
            change = .created(info)
            try txn.put(tables.catalog, Array(info.name.utf8), try info.stored())
            try txn.put(tables.counters, Keys.collection(info.number), Counters().stored(info.number))
            try FieldCatalog.markComplete(info.number, txn: txn, tables: tables)
            var w = ByteWriter()
            w.write(info.number + 1)
            try txn.put(tables.meta, Array("next_collection".utf8), w.bytes)
        case .dropCollection(let number, let name):
            change = .dropped(number)
            try txn.delete(tables.catalog, Array(name.utf8))
            try txn.delete(tables.segmentState, Keys.collection(number))
            try txn.delete(tables.textStats, Keys.collection(number))
            try txn.delete(tables.counters, Keys.collection(number))
            for table in [tables.documents, tables.vectors, tables.rows, tables.segments, tables.imports, tables.payload, tables.terms, tables.postings, tables.fields, tables.adapters] {
                try txn.deleteAll(table, prefix: Keys.collection(number))
            }
        case .write(let number, _, let documents, let checkpoint):
            #if DEBUG
            if let bad = DebugHooks.unappliableID, documents.contains(where: { $0.id == bad }) {
                throw StorageError(.invalidArgument, "document '\(bad)' cannot be applied (the debug hook QUIVER_DEBUG_UNAPPLIABLE_ID)")
            }
            #endif
            if let c = checkpoint { try txn.put(tables.imports, c.key, StoredValue.seal(c.value, key: c.key)) }
            let info = try info(number: number, txn: txn, tables: tables)
            guard var counters = try Counters.read(number, collection: info.name, txn: txn, tables: tables) else {
                throw StorageError(.corrupt, "log record \(sequence) writes to collection number \(number), which has no counters")
            }
            var added: [UInt64] = [], removed: [UInt64] = []
            var removedMetadata: [Metadata] = []
            var vectors = [Float]()
            vectors.reserveCapacity(documents.count * info.dimension)
            let specs = info.payloadIndexes ?? []
            for d in documents {
                let key = Keys.document(number, d.id)
                if let old = try txn.get(tables.documents, key) {
                    let oldRecord = try DocumentRecord(stored: old, key: key, collection: info.name, withText: info.fullText != nil)
                    let oldRow = oldRecord.row
                    try txn.delete(tables.vectors, Keys.row(number, oldRow))
                    try txn.delete(tables.rows, Keys.row(number, oldRow))
                    try PayloadIndexing.update(specs, number: number, row: oldRow, metadata: oldRecord.metadata, remove: true, txn: txn, tables: tables)
                    if let ft = info.fullText, let text = oldRecord.text {
                        try TextIndexStore.update(ft, number: number, name: info.name, row: oldRow, text: text, remove: true, txn: txn, tables: tables)
                    }
                    removed.append(oldRow)
                    removedMetadata.append(oldRecord.metadata)
                } else {
                    counters.liveDocuments += 1
                }
                let row = counters.nextRow
                counters.nextRow += 1
                added.append(row)
                vectors.append(contentsOf: d.vector ?? [])
                let record = DocumentRecord(row: row, text: d.text, metadata: d.metadata)
                let rowKey = Keys.row(number, row)
                try txn.put(tables.documents, key, try record.stored(key: key, compressionThreshold: info.textCompressionThreshold))
                try txn.put(tables.vectors, rowKey, VectorCodec.stored(d.vector ?? [], key: rowKey))
                try txn.put(tables.rows, rowKey, RowCodec.stored(d.id, key: rowKey))
                try PayloadIndexing.update(specs, number: number, row: row, metadata: d.metadata, remove: false, txn: txn, tables: tables)
                if let ft = info.fullText, let text = d.text {
                    try TextIndexStore.update(ft, number: number, name: info.name, row: row, text: text, remove: false, txn: txn, tables: tables)
                }
            }
            try txn.put(tables.counters, Keys.collection(number), counters.stored(number))
            if try FieldCatalog.isComplete(number, txn: txn, tables: tables) {
                try FieldCatalog.update(number, removed: removedMetadata, added: documents.map(\.metadata), txn: txn, tables: tables)
            }
            change = .rows(number: number, added: added, vectors: added.isEmpty ? nil : Matrix(dimension: info.dimension, storage: vectors), removed: removed)
        case .delete(let number, let ids):
            let info = try info(number: number, txn: txn, tables: tables)
            guard var counters = try Counters.read(number, collection: info.name, txn: txn, tables: tables) else {
                throw StorageError(.corrupt, "log record \(sequence) deletes from collection number \(number), which has no counters")
            }
            var removed: [UInt64] = []
            var removedMetadata: [Metadata] = []
            let specs = info.payloadIndexes ?? []
            for id in ids {
                let key = Keys.document(number, id)
                guard let old = try txn.get(tables.documents, key) else { continue }
                let oldRecord = try DocumentRecord(stored: old, key: key, collection: info.name, withText: info.fullText != nil)
                let row = oldRecord.row
                try PayloadIndexing.update(specs, number: number, row: row, metadata: oldRecord.metadata, remove: true, txn: txn, tables: tables)
                if let ft = info.fullText, let text = oldRecord.text {
                    try TextIndexStore.update(ft, number: number, name: info.name, row: row, text: text, remove: true, txn: txn, tables: tables)
                }
                removed.append(row)
                removedMetadata.append(oldRecord.metadata)
                try txn.delete(tables.documents, key)
                try txn.delete(tables.vectors, Keys.row(number, row))
                try txn.delete(tables.rows, Keys.row(number, row))
                counters.liveDocuments -= 1
            }
            try txn.put(tables.counters, Keys.collection(number), counters.stored(number))
            if try FieldCatalog.isComplete(number, txn: txn, tables: tables) {
                try FieldCatalog.update(number, removed: removedMetadata, added: [], txn: txn, tables: tables)
            }
            change = .rows(number: number, added: [], vectors: nil, removed: removed)
        case .createPayloadIndex(let number, let spec):
            var info = try info(number: number, txn: txn, tables: tables)
            var specs = info.payloadIndexes ?? []
            if !specs.contains(spec) {
                specs.append(spec)
                info.payloadIndexes = specs
                try txn.put(tables.catalog, Array(info.name.utf8), try info.stored())
                try PayloadIndexing.backfill(spec, number: number, name: info.name, txn: txn, tables: tables)
            }
            change = .rows(number: number, added: [], vectors: nil, removed: [])
        case .tuning(let number, let tuningChange, let settings):
            try TuningApply.apply(number: number, change: tuningChange, settings: settings, txn: txn, tables: tables)
            change = .rows(number: number, added: [], vectors: nil, removed: [])
        }
        var w = ByteWriter()
        w.write(sequence)
        try txn.put(tables.meta, Array("applied_seq".utf8), w.bytes)
        return change
    }
}

extension ByteReader {
    func readUInt32Value() throws -> UInt32 { var r = self; return try r.readUInt32() }
    func readUInt64Value() throws -> UInt64 { var r = self; return try r.readUInt64() }
}

/// Sizes and counts of a database and its collections.
public struct DatabaseStats: Sendable, Codable, Equatable {
    /// One collection's figures.
    public struct CollectionStats: Sendable, Codable, Equatable {
        public var name: String
        public var dimension: Int
        public var metric: Metric
        public var documents: Int
        /// Bytes of LMDB pages holding this collection's documents, vectors and row map.
        public var storedBytes: Int
        public var encoder: String?
        /// Segments and index memory.
        public var index: IndexStats?
    }

    public var path: String
    public var collections: [CollectionStats]
    /// Bytes of LMDB's data file on disk.
    public var lmdbFileBytes: Int
    /// The current LMDB map size.
    public var lmdbMapBytes: Int
    /// Bytes of write-ahead log files.
    public var walBytes: Int
    public var walFiles: Int
    /// The sequence number of the last logged write.
    public var lastSequence: UInt64
    /// Bytes of index segment files.
    public var segmentBytes: Int
}

extension Database {
    /// Sizes and counts, from one snapshot. Per-collection byte counts are estimates: LMDB shares
    /// pages between collections, so they are the collection's share of the entries' bytes.
    public func stats() throws -> DatabaseStats {
        try refreshIfReadOnly()
        let infos = try collections()
        var out: [DatabaseStats.CollectionStats] = []
        try readTransaction { txn in
            for info in infos {
                let count = try Counters.read(info.number, collection: info.name, txn: txn, tables: tables)?.liveDocuments ?? 0
                var bytes = 0
                for table in [tables.documents, tables.vectors, tables.rows] {
                    try txn.forEach(table, prefix: Keys.collection(info.number)) { k, v in
                        bytes += k.count + v.count
                        return true
                    }
                }
                var index: IndexStats?
                if let f = segments.segments(info.number)?.figures() {
                    let sealed = f.filter { $0.kind != .flat }
                    let flat = f.first { $0.kind == .flat }
                    index = IndexStats(configuredKind: info.indexSettings.kind, kinds: f.map(\.kind.rawValue),
                                       sealedSegments: sealed.reduce(0) { $0 + $1.segments },
                                       sealedVectors: sealed.reduce(0) { $0 + $1.vectors },
                                       deletedVectors: sealed.reduce(0) { $0 + $1.deletedVectors },
                                       mutableVectors: (flat?.vectors ?? 0) - (flat?.deletedVectors ?? 0),
                                       memoryBytes: f.reduce(0) { $0 + $1.memoryBytes }, byKind: f,
                                       lastMaintenanceError: segments.lastMaintenanceError)
                }
                out.append(.init(name: info.name, dimension: info.dimension, metric: info.metric, documents: Int(count),
                                 storedBytes: bytes, encoder: info.encoder?.name, index: index))
            }
        }
        return DatabaseStats(path: path, collections: out, lmdbFileBytes: FileSystem.diskUsage(path + "/lmdb/data.mdb"),
                             lmdbMapBytes: env.mapSize, walBytes: wal?.diskSize ?? FileSystem.diskUsage(path + "/wal"),
                             walFiles: wal?.fileCount ?? ((try? FileSystem.list(path + "/wal"))?.count ?? 0),
                             lastSequence: try wal?.lastAppendedSequence ?? appliedSequence(), segmentBytes: FileSystem.diskUsage(path + "/segments"))
    }
}

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
    /// Decoded BM25 postings of recent lexical queries, per LMDB snapshot.
    let textPostingsCache = TextPostingsCache()
    private let lockFile: File?
    /// Read-only: the LMDB transaction id the in-memory segments were loaded at.
    private var segmentsLoadedAt = 0
    private let writeLock = NSLock()
    private let stateLock = NSLock()
    private var closed = false
    private var failure: QuiverError?
    /// The sequence of the last write committed to LMDB (guarded by `stateLock`, so that a commit
    /// never waits for a sync in progress).
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
        let opened: Opened
        do {
            opened = options.readOnly ? try Database.openReadOnly(path, options: options) : try Database.openWritable(path, options: options)
        } catch let e as StorageError {
            throw QuiverError.storage(e)
        }
        env = opened.env
        tables = opened.tables
        wal = opened.wal
        lockFile = opened.lockFile
        segments = opened.segments
        timingsRecorder = opened.recorder
        openReport = opened.report
        if options.readOnly {
            try reloadSegments()
            openReport.damagedSegments = segments.damagedSegments()
        } else if let u = openReport.unappliedRecord {
            unapplied = u
            failure = u.refusal(path: path)
        } else {
            // Damaged segments are rebuilt from LMDB in the background; they are searched exactly meanwhile.
            segments.scheduleHeal()
        }
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
            let next = try Meta.nextCollection(txn: txn, tables: tables)
            var info = CollectionInfo(name: name, dimension: d, metric: metric, encoder: binding,
                                      textCompressionThreshold: options.textCompressionThreshold,
                                      createdAt: Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded()), number: next,
                                      index: options.index, fullText: options.fullText)
            let pieces = VectorTable.pieces(forDimension: d)
            info.vectorPieces = pieces == 1 ? nil : pieces
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

    /// The catalog entry of collection `number` (log records and row keys name collections by number),
    /// through the tables' `CatalogCache`. A damaged entry of another collection is passed over; when
    /// none matches and one is damaged, that damage is the error (it may be this collection's entry).
    static func info(number: UInt32, txn: LMDBTransaction, tables: Tables) throws -> CollectionInfo {
        try tables.catalogByNumber.info(number: number, txn: txn, catalog: tables.catalog)
    }

    // MARK: - The write path

    /// Runs one write: `prepare` validates against the current state (in a read transaction, under
    /// the writer lock) and returns the mutation; the mutation is logged, applied in one LMDB
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
                stateLock.lock(); committedThrough = sequence; stateLock.unlock()
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
            // The two fsyncs (LMDB's meta page, the log) run side by side: the wait is the longer one.
            let failures = SyncFailures(), sequence = sequence
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                do {
                    if i == 0 { try makeLMDBDurable(through: sequence) } else { try wrapStorage { try wal?.waitUntilDurable(sequence) } }
                } catch { failures.record(error, at: i) }
            }
            if let e = failures.first { throw e }
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
    /// the writer lock (commits go on meanwhile), on another thread at the same time as the log's
    /// own fsync. A failure leaves the write in doubt: the database stops taking writes until a
    /// reopen recovers.
    private func makeLMDBDurable(through sequence: UInt64) throws {
        syncLock.lock()
        defer { syncLock.unlock() }
        if syncedThrough >= sequence { return }
        stateLock.lock(); let through = committedThrough; stateLock.unlock()
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

    /// The errors of the two syncs that run side by side; the log's is reported first.
    private final class SyncFailures: @unchecked Sendable {
        // @unchecked: `errors` is guarded by `lock`.
        private let lock = NSLock()
        private var errors: [Error?] = [nil, nil]
        func record(_ error: Error, at i: Int) { lock.lock(); errors[i] = error; lock.unlock() }
        var first: Error? { lock.lock(); defer { lock.unlock() }; return errors[1] ?? errors[0] }
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
            let applied = try env.read { txn in try Meta.appliedSequence(txn: txn, tables: tables) }
            try wal.truncate(upTo: applied)
        }
    }

    /// The sequence number of the last write LMDB holds.
    func appliedSequence() throws -> UInt64 {
        try readTransaction { txn in try Meta.appliedSequence(txn: txn, tables: tables) }
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
    /// Bytes of the whole database on disk: LMDB's data file, the log and the segments.
    public var diskBytes: Int
    /// `diskBytes` over the documents of every collection (each holds one vector); nil when there
    /// are none. Raw float32 vectors take 4 x dimension bytes each: this is what one costs on disk.
    public var diskBytesPerVector: Double?
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
                    index = IndexStats(configuredKind: info.indexSettings.kind, quantization: info.indexSettings.quantization,
                                       kinds: f.map(\.kind.rawValue),
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
        let lmdbBytes = FileSystem.diskUsage(path + "/lmdb/data.mdb"), walBytes = wal?.diskSize ?? FileSystem.diskUsage(path + "/wal")
        let segmentBytes = FileSystem.diskUsage(path + "/segments")
        let diskBytes = lmdbBytes + walBytes + segmentBytes, documents = out.reduce(0) { $0 + $1.documents }
        return DatabaseStats(path: path, collections: out, lmdbFileBytes: lmdbBytes, lmdbMapBytes: env.mapSize, walBytes: walBytes,
                             walFiles: wal?.fileCount ?? ((try? FileSystem.list(path + "/wal"))?.count ?? 0),
                             lastSequence: try wal?.lastAppendedSequence ?? appliedSequence(), segmentBytes: segmentBytes,
                             diskBytes: diskBytes, diskBytesPerVector: documents == 0 ? nil : Double(diskBytes) / Double(documents))
    }
}

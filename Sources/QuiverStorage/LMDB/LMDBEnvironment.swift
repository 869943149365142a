import CLMDB
#if canImport(Glibc)
import Glibc
#endif

/// An LMDB environment: one memory-mapped B+tree file holding named sub-databases ("tables").
///
/// Guarantees and rules (after LMDB's own Caveats list):
/// - Transactions are scoped by closures: `read { txn in }` and `write { txn in }`. Bytes owned by
///   LMDB are handed to callers only inside such a closure (as `UnsafeRawBufferPointer`s) and are
///   valid only until the closure returns; every API that returns bytes copies them.
/// - The map grows instead of failing: when a write hits `MDB_MAP_FULL` the transaction is aborted,
///   the map size doubled, and the write closure run again. A write closure may therefore run more
///   than once, and must have no effect outside its transaction.
/// - Readers are many and never block the writer; LMDB allows one write transaction at a time and
///   this wrapper queues writers. Do not open a write transaction inside a read closure on the
///   same thread (a map resize waits for every read closure to end).
/// - Stale reader slots left by crashed processes are cleared at open (`mdb_reader_check`).
/// - The environment is `Sendable`: it is opened with `MDB_NOTLS`, so read transactions are not
///   tied to threads.
public final class LMDBEnvironment: @unchecked Sendable {
    // @unchecked: `env` is used only through LMDB calls that are thread-safe under the rules above;
    // `resizeLock` fences mdb_env_set_mapsize against open transactions.
    let env: OpaquePointer
    public let path: String
    private let resizeLock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
    private let tableLock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var tables: [String: LMDBTable] = [:]
    /// The number of times the map has grown since open (tests read it).
    public private(set) var mapGrowths = 0
    /// Stale reader slots cleared at open.
    public let staleReadersCleared: Int
    /// Opened with `MDB_RDONLY`: tables are opened, never created, and writes fail.
    public let readOnly: Bool

    /// How commits reach the disk.
    public enum SyncMode: Sendable {
        /// Data pages are flushed at each commit, the meta page lazily (`MDB_NOMETASYNC`): a crash
        /// may undo the last commit, never damage the file. The write-ahead log replays what it undoes.
        case dataSync
        /// Nothing is flushed at commit (`MDB_NOSYNC`); `sync()` flushes. A process crash loses
        /// nothing (the page cache survives it); an OS crash may lose commits since the last sync.
        case noSync
    }

    /// Opens (creating when missing) the environment in directory `path`. An existing `data.mdb`
    /// is first checked against LMDB's meta pages (`LMDBFileCheck`): an empty, truncated or
    /// foreign file throws `StorageError(.corrupt)` naming it.
    /// - Parameters:
    ///   - mapSize: the initial map size in bytes; it grows by doubling on demand.
    ///   - maxTables: the most named tables this environment will hold.
    public init(path: String, mapSize: Int = 64 << 20, maxTables: Int = 32, syncMode: SyncMode = .dataSync, readOnly: Bool = false) throws {
        self.path = path
        self.readOnly = readOnly
        if !readOnly { try FileSystem.createDirectory(path) }
        // LMDB maps the file and faults (SIGBUS) on a page past its end: check an existing file
        // against its own meta pages first (LMDBFileCheck), so that a truncated, empty or foreign
        // file is an error, not a signal death.
        if FileSystem.exists(path + "/data.mdb") { try LMDBFileCheck.check(path + "/data.mdb") }
        var e: OpaquePointer?
        try LMDBEnvironment.check(mdb_env_create(&e), "mdb_env_create", path)
        guard let env = e else { throw StorageError(.lmdb, "mdb_env_create returned no environment for \(path)") }
        self.env = env
        pthread_rwlock_init(resizeLock, nil)
        pthread_mutex_init(tableLock, nil)
        var flags = UInt32(MDB_NOTLS)
        if readOnly { flags |= UInt32(MDB_RDONLY) }
        switch syncMode {
        case .dataSync: flags |= UInt32(MDB_NOMETASYNC)
        case .noSync: flags |= UInt32(MDB_NOSYNC)
        }
        do {
            try LMDBEnvironment.check(mdb_env_set_maxdbs(env, MDB_dbi(maxTables)), "mdb_env_set_maxdbs", path)
            try LMDBEnvironment.check(mdb_env_set_maxreaders(env, 512), "mdb_env_set_maxreaders", path)
            try LMDBEnvironment.check(mdb_env_set_mapsize(env, mapSize), "mdb_env_set_mapsize", path)
            try LMDBEnvironment.check(mdb_env_open(env, path, flags, 0o644), "mdb_env_open", path)
            var dead: Int32 = 0
            try LMDBEnvironment.check(mdb_reader_check(env, &dead), "mdb_reader_check", path)
            staleReadersCleared = Int(dead)
        } catch {
            mdb_env_close(env)
            throw error
        }
    }

    deinit {
        mdb_env_close(env)
        pthread_rwlock_destroy(resizeLock)
        resizeLock.deallocate()
        pthread_mutex_destroy(tableLock)
        tableLock.deallocate()
    }

    /// The current map size in bytes.
    public var mapSize: Int {
        var info = MDB_envinfo()
        mdb_env_info(env, &info)
        return info.me_mapsize
    }

    /// The id of the last committed write transaction (by any process): it changes with every commit.
    public var lastTransactionID: Int {
        var info = MDB_envinfo()
        mdb_env_info(env, &info)
        return info.me_last_txnid
    }

    /// Flushes every committed transaction to disk (`mdb_env_sync(force)`).
    public func sync() throws {
        CrashPoints.step("LMDB sync")
        try LMDBEnvironment.check(mdb_env_sync(env, 1), "mdb_env_sync", path)
    }

    /// Copies the environment into directory `destination` (a consistent snapshot, compacted),
    /// while readers and writers go on.
    public func copy(to destination: String) throws {
        try FileSystem.createDirectory(destination)
        try LMDBEnvironment.check(mdb_env_copy2(env, destination, UInt32(MDB_CP_COMPACT)), "mdb_env_copy2", destination)
    }

    /// The named table, created when missing.
    public func table(_ name: String) throws -> LMDBTable {
        pthread_mutex_lock(tableLock)
        if let t = tables[name] {
            pthread_mutex_unlock(tableLock)
            return t
        }
        pthread_mutex_unlock(tableLock)
        let dbi: MDB_dbi
        if readOnly {
            // A handle opened in a read transaction lives on only if that transaction commits.
            pthread_rwlock_rdlock(resizeLock)
            defer { pthread_rwlock_unlock(resizeLock) }
            let txn = try begin(readOnly: true)
            var d: MDB_dbi = 0
            let rc = mdb_dbi_open(txn.txn, name, 0, &d)
            if rc != 0 { mdb_txn_abort(txn.txn) }
            try LMDBEnvironment.check(rc, "mdb_dbi_open(\(name))", path)
            try LMDBEnvironment.check(mdb_txn_commit(txn.txn), "mdb_txn_commit(read)", path)
            dbi = d
        } else {
            dbi = try write { txn in
                var dbi: MDB_dbi = 0
                try LMDBEnvironment.check(mdb_dbi_open(txn.txn, name, UInt32(MDB_CREATE), &dbi), "mdb_dbi_open(\(name))", path)
                return dbi
            }
        }
        let table = LMDBTable(name: name, dbi: dbi)
        pthread_mutex_lock(tableLock)
        tables[name] = table
        pthread_mutex_unlock(tableLock)
        return table
    }

    /// Runs `body` in a read-only snapshot transaction.
    public func read<R>(_ body: (LMDBTransaction) throws -> R) throws -> R {
        pthread_rwlock_rdlock(resizeLock)
        defer { pthread_rwlock_unlock(resizeLock) }
        let txn = try begin(readOnly: true)
        defer { mdb_txn_abort(txn.txn) }
        return try body(txn)
    }

    /// Runs `body` in a write transaction and commits it when `body` returns normally; aborts it
    /// when `body` throws. On `MDB_MAP_FULL` the map is doubled and `body` runs again.
    public func write<R>(_ body: (LMDBTransaction) throws -> R) throws -> R {
        while true {
            pthread_rwlock_rdlock(resizeLock)
            var needsGrowth = false
            do {
                defer { pthread_rwlock_unlock(resizeLock) }
                let txn = try begin(readOnly: false)
                let result: R?
                do {
                    result = try body(txn)
                } catch let error as StorageError where error.kind == .lmdb && error.code == MDB_MAP_FULL {
                    mdb_txn_abort(txn.txn)
                    needsGrowth = true
                    result = nil
                } catch {
                    mdb_txn_abort(txn.txn)
                    throw error
                }
                if let result {
                    // mdb_txn_commit frees the transaction whether it succeeds or fails: no abort after it.
                    CrashPoints.step("LMDB commit (before)")
                    let rc = mdb_txn_commit(txn.txn)
                    CrashPoints.step("LMDB commit (after)")
                    if rc == MDB_MAP_FULL { needsGrowth = true } else {
                        try LMDBEnvironment.check(rc, "mdb_txn_commit", path + LMDBEnvironment.spaceNote(rc, path))
                        return result
                    }
                }
            }
            if needsGrowth { try grow() }
        }
    }

    private func begin(readOnly: Bool) throws -> LMDBTransaction {
        var t: OpaquePointer?
        var rc = mdb_txn_begin(env, nil, readOnly ? UInt32(MDB_RDONLY) : 0, &t)
        if rc == MDB_MAP_RESIZED {
            // Another process grew the map: adopt its size (mapsize 0 = the size in the file).
            // Safe without the exclusive lock only because this process has no transaction open
            // on this thread; LMDB requires no active transactions in the process for set_mapsize,
            // so take the exclusive lock briefly.
            pthread_rwlock_unlock(resizeLock)
            pthread_rwlock_wrlock(resizeLock)
            mdb_env_set_mapsize(env, 0)
            pthread_rwlock_unlock(resizeLock)
            pthread_rwlock_rdlock(resizeLock)
            rc = mdb_txn_begin(env, nil, readOnly ? UInt32(MDB_RDONLY) : 0, &t)
        }
        try LMDBEnvironment.check(rc, readOnly ? "mdb_txn_begin(read)" : "mdb_txn_begin(write)", path)
        return LMDBTransaction(txn: t!, environment: self)
    }

    private func grow() throws {
        pthread_rwlock_wrlock(resizeLock)
        defer { pthread_rwlock_unlock(resizeLock) }
        let newSize = mapSize * 2
        try LMDBEnvironment.check(mdb_env_set_mapsize(env, newSize), "mdb_env_set_mapsize(\(newSize))", path)
        mapGrowths += 1
    }

    /// For a failed write: LMDB reports a short write (what a full disk gives) as EIO, so say when
    /// the file system holding `path` is full or nearly.
    static func spaceNote(_ rc: Int32, _ path: String) -> String {
        guard rc == EIO || rc == ENOSPC else { return "" }
        var st = statvfs()
        guard statvfs(path, &st) == 0 else { return "" }
        let free = Int(st.f_bavail) * Int(st.f_frsize)
        return free < 1 << 20 ? " (the file system is full: \(free) bytes free)" : ""
    }

    static func check(_ rc: Int32, _ what: String, _ path: String) throws {
        guard rc != 0 else { return }
        let message = String(cString: mdb_strerror(rc))
        throw StorageError(.lmdb, "\(what) failed on \(path): \(message)", code: rc)
    }
}

/// A named sub-database of an environment. Cheap to copy; valid for the environment's lifetime.
public struct LMDBTable: Sendable, Hashable {
    public let name: String
    let dbi: MDB_dbi
}

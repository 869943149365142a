import CLMDB

/// A read or write transaction, alive only inside the `read`/`write` closure that received it.
/// Every method that returns bytes returns a copy; `withValue` and `forEach` lend LMDB's own
/// bytes to a closure, valid only until that closure returns.
public struct LMDBTransaction {
    let txn: OpaquePointer
    unowned let environment: LMDBEnvironment

    /// The transaction's id: for a read transaction, that of the snapshot it reads (the last
    /// write committed when it began), so that equal ids mean identical contents.
    public var id: Int { Int(mdb_txn_id(txn)) }

    /// A copy of the value stored under `key`, or nil.
    public func get(_ table: LMDBTable, _ key: [UInt8]) throws -> [UInt8]? {
        try withValue(table, key) { $0.map { Array($0) } }
    }

    /// Lends the value stored under `key` (or nil) to `body`; the bytes die with `body`.
    public func withValue<R>(_ table: LMDBTable, _ key: [UInt8], _ body: (UnsafeRawBufferPointer?) throws -> R) throws -> R {
        var value = MDB_val()
        let rc = key.withUnsafeBytes { kb -> Int32 in
            var k = MDB_val(mv_size: kb.count, mv_data: UnsafeMutableRawPointer(mutating: kb.baseAddress))
            return mdb_get(txn, table.dbi, &k, &value)
        }
        if rc == MDB_NOTFOUND { return try body(nil) }
        try LMDBEnvironment.check(rc, "mdb_get(\(table.name))", environment.path)
        return try body(UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size))
    }

    /// Whether `key` is present.
    public func contains(_ table: LMDBTable, _ key: [UInt8]) throws -> Bool {
        try withValue(table, key) { $0 != nil }
    }

    /// Stores `value` under `key`, replacing any previous value.
    public func put(_ table: LMDBTable, _ key: [UInt8], _ value: [UInt8]) throws {
        try value.withUnsafeBytes { try put(table, key, $0) }
    }

    /// Stores `value` under `key`, replacing any previous value.
    public func put(_ table: LMDBTable, _ key: [UInt8], _ value: UnsafeRawBufferPointer) throws {
        let rc = key.withUnsafeBytes { kb -> Int32 in
            var k = MDB_val(mv_size: kb.count, mv_data: UnsafeMutableRawPointer(mutating: kb.baseAddress))
            var v = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
            return mdb_put(txn, table.dbi, &k, &v, 0)
        }
        try LMDBEnvironment.check(rc, "mdb_put(\(table.name))", environment.path)
    }

    /// Stores `value` under `key` like `put`, but when `key` sorts after every key of `table` (rows
    /// numbered in increasing order, as the `vectors` and `rows` tables are written), with
    /// `MDB_APPEND`: LMDB then fills the last leaf page and starts a new one only when it is full,
    /// instead of splitting a full page in two half-empty ones. A `vectors` value of 384 floats
    /// takes 1,560 bytes of a 4,096-byte page: split pages held one each (4,096 bytes a vector),
    /// appended pages hold two.
    public func putAppending(_ table: LMDBTable, _ key: [UInt8], _ value: [UInt8]) throws {
        let cursor = try LMDBCursor(txn: self, table: table)
        defer { cursor.close() }
        let after = try cursor.last().map { last in key.withUnsafeBytes { LMDBTransaction.compare($0, last.key) > 0 } } ?? true
        try cursor.put(key, value, flags: after ? UInt32(MDB_APPEND) : 0)
    }

    /// LMDB's default key order: bytewise, a prefix before the longer key.
    static func compare(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        for (x, y) in zip(a, b) where x != y { return x < y ? -1 : 1 }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }

    /// Removes `key`; returns whether it was present.
    @discardableResult
    public func delete(_ table: LMDBTable, _ key: [UInt8]) throws -> Bool {
        let rc = key.withUnsafeBytes { kb -> Int32 in
            var k = MDB_val(mv_size: kb.count, mv_data: UnsafeMutableRawPointer(mutating: kb.baseAddress))
            return mdb_del(txn, table.dbi, &k, nil)
        }
        if rc == MDB_NOTFOUND { return false }
        try LMDBEnvironment.check(rc, "mdb_del(\(table.name))", environment.path)
        return true
    }

    /// Removes every entry of `table` whose key starts with `prefix`; returns how many.
    @discardableResult
    public func deleteAll(_ table: LMDBTable, prefix: [UInt8]) throws -> Int {
        var keys: [[UInt8]] = []
        try forEach(table, prefix: prefix) { k, _ in keys.append(Array(k)); return true }
        for k in keys { try delete(table, k) }
        return keys.count
    }

    /// The number of entries in `table`.
    public func count(_ table: LMDBTable) throws -> Int {
        var st = MDB_stat()
        try LMDBEnvironment.check(mdb_stat(txn, table.dbi, &st), "mdb_stat(\(table.name))", environment.path)
        return st.ms_entries
    }

    /// Bytes used by `table`'s pages.
    public func pageBytes(_ table: LMDBTable) throws -> Int {
        var st = MDB_stat()
        try LMDBEnvironment.check(mdb_stat(txn, table.dbi, &st), "mdb_stat(\(table.name))", environment.path)
        return Int(st.ms_psize) * (st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages)
    }

    /// Removes every entry of `table` (the table itself stays).
    public func clear(_ table: LMDBTable) throws {
        try LMDBEnvironment.check(mdb_drop(txn, table.dbi, 0), "mdb_drop(\(table.name))", environment.path)
    }

    /// Visits, in key order, the entries whose key starts with `prefix` (all entries for an empty
    /// prefix), starting at `from` when given (which must itself start with `prefix`). `body` gets
    /// LMDB's bytes, valid only during the call, and returns false to stop.
    public func forEach(_ table: LMDBTable, prefix: [UInt8] = [], from: [UInt8]? = nil,
                        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool) throws {
        let cursor = try LMDBCursor(txn: self, table: table)
        defer { cursor.close() }
        var entry = try cursor.seek(atLeast: from ?? prefix)
        while let (k, v) = entry {
            if k.count < prefix.count || !zip(prefix, k).allSatisfy({ $0 == $1 }) { break }
            if !(try body(k, v)) { break }
            entry = try cursor.next()
        }
    }

    /// A cursor over `table`, which must be closed (or used inside `withCursor`).
    public func withCursor<R>(_ table: LMDBTable, _ body: (LMDBCursor) throws -> R) throws -> R {
        let cursor = try LMDBCursor(txn: self, table: table)
        defer { cursor.close() }
        return try body(cursor)
    }
}

/// A position in a table. The key and value buffers it returns are LMDB's, valid until the cursor
/// moves or its transaction ends.
public final class LMDBCursor {
    private var cursor: OpaquePointer?
    private let path: String
    private let tableName: String

    init(txn: LMDBTransaction, table: LMDBTable) throws {
        path = txn.environment.path
        tableName = table.name
        try LMDBEnvironment.check(mdb_cursor_open(txn.txn, table.dbi, &cursor), "mdb_cursor_open(\(table.name))", path)
    }

    func close() {
        if let c = cursor { mdb_cursor_close(c) }
        cursor = nil
    }

    private func get(_ op: MDB_cursor_op, key: [UInt8]? = nil) throws -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer)? {
        var k = MDB_val(), v = MDB_val()
        let rc: Int32
        if let key = key {
            rc = key.withUnsafeBytes { kb -> Int32 in
                k = MDB_val(mv_size: kb.count, mv_data: UnsafeMutableRawPointer(mutating: kb.baseAddress))
                return mdb_cursor_get(cursor, &k, &v, op)
            }
        } else {
            rc = mdb_cursor_get(cursor, &k, &v, op)
        }
        if rc == MDB_NOTFOUND { return nil }
        try LMDBEnvironment.check(rc, "mdb_cursor_get(\(tableName))", path)
        return (UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size), UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size))
    }

    /// Stores `value` under `key` through this cursor (`mdb_cursor_put` with `flags`).
    func put(_ key: [UInt8], _ value: [UInt8], flags: UInt32) throws {
        let rc = key.withUnsafeBytes { kb -> Int32 in
            value.withUnsafeBytes { vb -> Int32 in
                var k = MDB_val(mv_size: kb.count, mv_data: UnsafeMutableRawPointer(mutating: kb.baseAddress))
                var v = MDB_val(mv_size: vb.count, mv_data: UnsafeMutableRawPointer(mutating: vb.baseAddress))
                return mdb_cursor_put(cursor, &k, &v, flags)
            }
        }
        try LMDBEnvironment.check(rc, "mdb_cursor_put(\(tableName))", path)
    }

    /// Moves to the first entry whose key is >= `key` (the first entry for an empty key).
    public func seek(atLeast key: [UInt8]) throws -> (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)? {
        if key.isEmpty { return try get(MDB_FIRST) }
        return try get(MDB_SET_RANGE, key: key)
    }

    /// Moves to the next entry.
    public func next() throws -> (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)? { try get(MDB_NEXT) }

    /// Moves to the last entry.
    public func last() throws -> (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)? { try get(MDB_LAST) }

    /// Moves to the previous entry.
    public func previous() throws -> (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)? { try get(MDB_PREV) }
}

/// A value that can be a key or a value in an LMDB table. Keys that must sort numerically
/// (row ids, sequence numbers) encode big-endian so that LMDB's bytewise order is numeric order.
public protocol LMDBCodable {
    /// The stored bytes.
    var lmdbBytes: [UInt8] { get }
    /// Decodes stored bytes; throws `StorageError(.corrupt)` when they cannot be this type.
    init(lmdbBytes: UnsafeRawBufferPointer) throws
}

extension String: LMDBCodable {
    public var lmdbBytes: [UInt8] { Array(utf8) }
    public init(lmdbBytes: UnsafeRawBufferPointer) throws {
        guard let s = String(validating: lmdbBytes, as: UTF8.self) else {
            throw StorageError(.corrupt, "a stored string is not valid UTF-8")
        }
        self = s
    }
}

extension UInt64: LMDBCodable {
    /// Big-endian, so that keys sort numerically.
    public var lmdbBytes: [UInt8] { withUnsafeBytes(of: bigEndian) { Array($0) } }
    public init(lmdbBytes: UnsafeRawBufferPointer) throws {
        guard lmdbBytes.count == 8 else { throw StorageError(.corrupt, "a stored UInt64 has \(lmdbBytes.count) bytes, not 8") }
        self = lmdbBytes.reduce(0) { $0 << 8 | UInt64($1) }
    }
}

extension Array: LMDBCodable where Element == UInt8 {
    public var lmdbBytes: [UInt8] { self }
    public init(lmdbBytes: UnsafeRawBufferPointer) throws { self = Array(lmdbBytes) }
}

/// A table whose keys and values have Swift types; a thin, zero-cost view over `LMDBTable`.
public struct TypedTable<Key: LMDBCodable, Value: LMDBCodable>: Sendable {
    public let table: LMDBTable

    public init(_ table: LMDBTable) { self.table = table }

    public func get(_ txn: LMDBTransaction, _ key: Key) throws -> Value? {
        try txn.withValue(table, key.lmdbBytes) { bytes in try bytes.map { try Value(lmdbBytes: $0) } }
    }

    public func put(_ txn: LMDBTransaction, _ key: Key, _ value: Value) throws {
        try txn.put(table, key.lmdbBytes, value.lmdbBytes)
    }

    @discardableResult
    public func delete(_ txn: LMDBTransaction, _ key: Key) throws -> Bool {
        try txn.delete(table, key.lmdbBytes)
    }

    /// Every entry in key order (decoded copies).
    public func all(_ txn: LMDBTransaction) throws -> [(Key, Value)] {
        var out: [(Key, Value)] = []
        try txn.forEach(table) { k, v in
            out.append((try Key(lmdbBytes: k), try Value(lmdbBytes: v)))
            return true
        }
        return out
    }
}

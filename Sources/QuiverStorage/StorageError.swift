/// The one error type of the storage layer: what failed, on which file or table, and the
/// underlying system or LMDB code when there is one.
public struct StorageError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The broad kind of failure, for callers that react to some of them.
    public enum Kind: String, Sendable {
        /// A system call failed (`code` is the errno).
        case io
        /// LMDB returned an error (`code` is the LMDB return code).
        case lmdb
        /// A file's contents are damaged: a bad checksum, a bad magic number, or an impossible length.
        case corrupt
        /// The database is locked by another process.
        case locked
        /// A previous fsync or write failed; the log refuses further writes until reopened.
        case failStopped
        /// Compression or decompression failed.
        case compression
        /// The caller asked for something the storage cannot do (an oversized record, say).
        case invalidArgument
    }

    public let kind: Kind
    public let message: String
    /// errno for `.io`, the LMDB return code for `.lmdb`, otherwise 0.
    public let code: Int32

    public init(_ kind: Kind, _ message: String, code: Int32 = 0) {
        self.kind = kind
        self.message = message
        self.code = code
    }

    public var description: String { message }
}

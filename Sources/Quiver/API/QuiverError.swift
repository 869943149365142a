import QuiverStorage

/// Every error the Quiver API throws. Each case names what it is about (the collection, the
/// record's id and its position in the batch) so that a caller can report it in one line.
public enum QuiverError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No collection has this name.
    case unknownCollection(String)
    /// A collection of this name exists already.
    case collectionExists(String)
    /// A collection name is empty, too long, or uses characters outside `[A-Za-z0-9_.-]`.
    case invalidCollectionName(String, reason: String)
    /// A collection's dimension is outside 1...65,536.
    case invalidDimension(Int)
    /// A vector's length differs from its collection's dimension.
    case dimensionMismatch(collection: String, id: String, index: Int, expected: Int, actual: Int)
    /// A vector has a NaN or infinite component.
    case nonFiniteVector(collection: String, id: String, index: Int, component: Int)
    /// A document id is empty, longer than the limit, or holds a NUL character.
    case invalidDocumentID(id: String, index: Int, reason: String)
    /// `insert` found an id that is already stored (or twice in one batch).
    case duplicateID(collection: String, id: String, index: Int)
    /// Metadata is not an object of supported values, or is too large.
    case invalidMetadata(id: String, index: Int, reason: String)
    /// A document has no vector, and its collection has no text encoder to make one.
    case missingVector(collection: String, id: String, index: Int)
    /// A document of a collection with a text encoder has neither a vector nor text (or its text is
    /// `null`) for the encoder to make one from.
    case missingVectorAndText(collection: String, id: String, index: Int)
    /// A document is larger than the limits allow.
    case documentTooLarge(id: String, index: Int, reason: String)
    /// A query or option is out of range.
    case invalidArgument(String)
    /// The database directory is missing, not a Quiver database, or of an unsupported version.
    case notADatabase(path: String, reason: String)
    /// Another process has the database open for writing.
    case databaseLocked(path: String)
    /// The database was closed, or stopped accepting writes after a storage failure.
    case unavailable(String)
    /// The text encoder is missing, different from the one the collection was built with, or failed.
    case encoder(String)
    /// A failure of the storage layer (I/O, LMDB, a damaged file).
    case storage(StorageError)
    /// A filter does not parse or breaks the limits: the error carries the position.
    case invalidFilter(FilterError)
    /// An input file (import) has a bad row or is damaged: the file, the 1-based line (or the
    /// vector index for bare vector files) and why.
    case badInput(file: String, line: Int, reason: String)

    /// The position in its batch of the record this error is about, when it is about one.
    public var recordIndex: Int? {
        switch self {
        case .dimensionMismatch(_, _, let i, _, _), .nonFiniteVector(_, _, let i, _), .invalidDocumentID(_, let i, _),
             .duplicateID(_, _, let i), .invalidMetadata(_, let i, _), .missingVector(_, _, let i), .missingVectorAndText(_, _, let i), .documentTooLarge(_, let i, _):
            return i
        default:
            return nil
        }
    }

    public var description: String { message(withRecord: true) }

    /// The message, with or without the record's position in its batch (an importer names the
    /// file and line instead).
    public func message(withRecord: Bool) -> String {
        func at(_ i: Int) -> String { withRecord ? " (record \(i))" : "" }
        // Names, ids and paths come from users: shortened and escaped (see MessageText).
        func q(_ s: String) -> String { MessageText.quoted(s) }
        func p(_ s: String) -> String { MessageText.path(s) }
        switch self {
        case .unknownCollection(let name): return "no collection named \(q(name))"
        case .collectionExists(let name): return "a collection named \(q(name)) already exists"
        case .invalidCollectionName(let name, let reason): return "invalid collection name \(q(name)): \(reason)"
        case .invalidDimension(let d): return "invalid dimension \(d): it must be between 1 and \(Limits.maxDimension)"
        case .dimensionMismatch(let c, let id, let i, let expected, let actual):
            return "document \(q(id))\(at(i)) in \(q(c)): vector has \(actual) components, the collection has dimension \(expected)"
        case .nonFiniteVector(let c, let id, let i, let component):
            return "document \(q(id))\(at(i)) in \(q(c)): vector component \(component) is NaN or infinite"
        case .invalidDocumentID(let id, let i, let reason): return (withRecord ? "record \(i): " : "") + "invalid document id \(q(id)): \(reason)"
        case .duplicateID(let c, let id, let i): return "document \(q(id))\(at(i)) already exists in \(q(c))"
        case .invalidMetadata(let id, let i, let reason): return "document \(q(id))\(at(i)): invalid metadata: \(MessageText.escapingControls(reason))"
        case .missingVector(let c, let id, let i):
            return "document \(q(id))\(at(i)) in \(q(c)) has no vector, and the collection has no text encoder to make one"
        case .missingVectorAndText(let c, let id, let i):
            return "document \(q(id))\(at(i)) in \(q(c)) has neither a vector nor a text (a null text is none); give one of them (the collection's encoder makes the vector from the text)"
        case .documentTooLarge(let id, let i, let reason): return "document \(q(id))\(at(i)) is too large: \(MessageText.escapingControls(reason))"
        case .invalidArgument(let m): return MessageText.escapingControls(m, keepingNewlines: true)
        case .notADatabase(let path, let reason): return "\(p(path)) is not a Quiver database: \(reason)"
        case .databaseLocked(let path): return "the database at \(p(path)) is open for writing in another process"
        case .unavailable(let m): return m
        case .encoder(let m): return m
        case .storage(let e): return MessageText.escapingControls(e.message)
        case .badInput(let file, let line, let reason):
            // Line 0: the error is about the file as a whole (a header, a missing file), not a line.
            return line == 0 ? "\(p(file)): \(MessageText.escapingControls(reason))" : "\(p(file)):\(line): \(MessageText.escapingControls(reason))"
        case .invalidFilter(let e): return "invalid filter: \(e.description)"
        }
    }
}

/// The limits that validation enforces.
public enum Limits {
    /// The largest vector dimension.
    public static let maxDimension = 65_536
    /// The longest document id, in UTF-8 bytes (LMDB keys are at most 511 bytes, 4 of them the
    /// collection's number).
    public static let maxIDBytes = 500
    /// The longest collection name, in UTF-8 bytes.
    public static let maxCollectionNameBytes = 128
    /// The largest document text, in UTF-8 bytes.
    public static let maxTextBytes = 16 << 20
    /// The largest encoded metadata of one document, in bytes.
    public static let maxMetadataBytes = 1 << 20
    /// The most keys in one metadata object.
    public static let maxMetadataKeys = 1_024
    /// The most strings in one metadata list.
    public static let maxListItems = 10_000
    /// The largest k of a search.
    public static let maxK = 10_000
}

/// Runs `body`, turning storage errors into `QuiverError.storage`.
@inline(__always)
func wrapStorage<R>(_ body: () throws -> R) throws -> R {
    do { return try body() } catch let e as StorageError { throw QuiverError.storage(e) }
}

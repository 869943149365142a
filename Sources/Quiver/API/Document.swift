import Foundation
import QuiverCore

/// A document: a string id unique in its collection, optional text, a metadata object and a vector.
/// A document written without a vector gets one from its collection's text encoder.
public struct Document: Sendable, Equatable, Codable {
    public var id: String
    public var text: String?
    public var metadata: Metadata
    public var vector: [Float]?

    public init(id: String, text: String? = nil, metadata: Metadata = [:], vector: [Float]? = nil) {
        self.id = id
        self.text = text
        self.metadata = metadata
        self.vector = vector
    }

    /// A document whose metadata values are everyday Swift values (`Int`, `Double`, `Bool`,
    /// `String`, `[String]`, optionals of these, or `MetadataValue`):
    /// `Document(id: "a", metadata: ["year": year, "tags": tags])`.
    @_disfavoredOverload
    public init(id: String, text: String? = nil, metadata: [String: any MetadataConvertible], vector: [Float]? = nil) {
        self.init(id: id, text: text, metadata: metadata.mapValues { $0.metadataValue }, vector: vector)
    }

    enum CodingKeys: String, CodingKey { case id, text, metadata, vector }

    /// Decodes `{"id": "...", "text": "...", "metadata": {...}, "vector": [...]}`; only `id` is
    /// required. Metadata that is not an object of supported values is a decoding error that says so.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        text = try c.decodeIfPresent(String.self, forKey: .text)
        if c.contains(.metadata), try !c.decodeNil(forKey: .metadata) {
            do {
                metadata = try c.decode(Metadata.self, forKey: .metadata)
            } catch {
                throw DecodingError.dataCorruptedError(forKey: .metadata, in: c, debugDescription:
                    "metadata must be an object whose values are strings, numbers, booleans, null or lists of strings")
            }
        } else {
            metadata = [:]
        }
        vector = try c.decodeIfPresent([Float].self, forKey: .vector)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encodeIfPresent(text, forKey: .text)
        try c.encode(metadata, forKey: .metadata)
        try c.encodeIfPresent(vector, forKey: .vector)
    }
}

/// One hit of a search: the document's id, its score (cosine similarity, dot product, or
/// Euclidean distance, per the collection's metric) and its metadata; text and vector when asked.
public struct SearchResult: Sendable, Equatable, Codable {
    public var id: String
    public var score: Float
    public var metadata: Metadata
    public var text: String?
    public var vector: [Float]?
}

/// The description of a collection, as recorded in the catalog.
public struct CollectionInfo: Sendable, Equatable, Codable {
    /// The collection's name.
    public var name: String
    /// The dimension of its vectors.
    public var dimension: Int
    /// How vectors are compared.
    public var metric: Metric
    /// The text encoder that turns text into vectors, if any.
    public var encoder: EncoderBinding?
    /// Texts longer than this many UTF-8 bytes are stored zstd-compressed.
    public var textCompressionThreshold: Int
    /// When the collection was created.
    public var createdAt: Date
    /// The internal number of the collection (never reused, even after a drop).
    public var number: UInt32
    /// How vectors are indexed (nil in the catalog means the defaults).
    public var index: IndexSettings?

    /// Declared payload indexes (nil in the catalog means none).
    public var payloadIndexes: [PayloadIndexSpec]?
    /// BM25 full-text indexing of documents' text (nil: none).
    public var fullText: FullTextSettings?
    /// What `Collection.tune` stored as defaults: the query adapter and the hybrid fusion (nil: none).
    public var tuning: TuningSettings?
    /// How many LMDB values hold each stored vector (nil in the catalog means 1), chosen at creation
    /// from the dimension so that LMDB's pages are full (docs/file-formats.md, the `vectors` table).
    public var vectorPieces: Int?

    /// The index settings in effect.
    public var indexSettings: IndexSettings { index ?? IndexSettings() }
}

/// What a collection records of its text encoder, so that opening it with another model is an error.
public struct EncoderBinding: Sendable, Equatable, Codable {
    /// The registered name of the encoder (`all-MiniLM-L6-v2`).
    public var name: String
    /// The encoder's own identifier (model and version).
    public var identifier: String
    /// The dimension of its vectors.
    public var dimension: Int
    /// A checksum of its weights.
    public var weightsChecksum: String
}

/// Options of `Database.createCollection`.
public struct CollectionOptions: Sendable {
    /// Texts longer than this many UTF-8 bytes are stored zstd-compressed (default 512).
    public var textCompressionThreshold: Int = 512
    /// How vectors are indexed (HNSW parameters, segment sizes).
    public var index = IndexSettings()
    /// BM25 full-text indexing of documents' text, for lexical and hybrid search (default on, with
    /// `FullTextSettings.standard`; nil turns it off and saves its write cost).
    public var fullText: FullTextSettings? = .standard

    public init(textCompressionThreshold: Int = 512, index: IndexSettings = IndexSettings(), fullText: FullTextSettings? = .standard) {
        self.textCompressionThreshold = textCompressionThreshold
        self.index = index
        self.fullText = fullText
    }
}

/// Options of `Database.open`.
public struct DatabaseOptions: Sendable {
    /// When a write is acknowledged: `.full` (fsynced first; the default) or `.relaxed`.
    public var durability: DurabilitySetting = .full
    /// Create the database when the directory holds none (default true).
    public var createIfMissing = true
    /// The initial LMDB map size in bytes; it doubles on demand (default 256 MiB).
    public var initialMapSize = 256 << 20
    /// Write-ahead log files roll over at this size (default 64 MiB).
    public var walFileSize = 64 << 20
    /// When the log exceeds this many bytes, LMDB is synced and the log truncated (default 128 MiB).
    public var checkpointBytes = 128 << 20
    /// An import and `compact` end with a checkpoint, so that bulk work leaves no log behind it
    /// (default true). False keeps the log until it passes `checkpointBytes` (the damage sweep's
    /// fixture keeps every record so that each can be damaged).
    public var checkpointAfterBulkWork = true
    /// Where collections find their text encoders by name (default: the process-wide registry,
    /// whose models directory is `$QUIVER_MODELS`, else `~/.local/share/quiver/models`).
    public var encoders: EncoderRegistry = .shared
    /// The directory holding the model folders (`<directory>/all-MiniLM-L6-v2/`): `encoders`'
    /// models directory. Setting it replaces `encoders` with a new registry over that directory
    /// (`$QUIVER_MODELS` and `$HOME` are then not consulted), so set it before registering encoders
    /// of your own in `encoders`. A host app that ships its model sets it to where it put the folder.
    public var modelsDirectory: String {
        get { encoders.modelStore.directory }
        set { encoders = EncoderRegistry(modelsDirectory: newValue) }
    }
    /// Open for reading only, beside a writer in another process (default false). A read-only
    /// database takes no lock, never changes a file (no log replay or truncation, no removal of
    /// orphan segment files), sees LMDB's latest committed state (which every acknowledged write
    /// reached before it was acknowledged) and reloads its in-memory index before a search when the
    /// writer has committed since. Writes throw `QuiverError.unavailable`. The database must exist.
    public var readOnly = false
    /// Last resort for a write-ahead log damaged where the open cannot cut it without losing
    /// acknowledged writes (default false): the damaged file is copied into
    /// `<db>/quarantine/wal-<time>/` and cut at the damage, later files are moved there, and the
    /// database opens with what precedes the damage (`OpenReport.salvagedLog` says what was set
    /// aside). `quiver repair` opens this way. Damage in records LMDB already holds is dropped by
    /// every open, losing nothing.
    public var salvageDamagedLog = false

    /// Options; `modelsDirectory`, when given, is where the text encoders' models are read from
    /// (instead of `$QUIVER_MODELS`, else `~/.local/share/quiver/models`).
    public init(durability: DurabilitySetting = .full, createIfMissing: Bool = true, readOnly: Bool = false,
                modelsDirectory: String? = nil) {
        self.durability = durability
        self.createIfMissing = createIfMissing
        self.readOnly = readOnly
        if let modelsDirectory { self.modelsDirectory = modelsDirectory }
    }
}

/// When writes reach stable storage.
public enum DurabilitySetting: Sendable, Equatable {
    /// Every write is fsynced before the call returns; concurrent writers share fsyncs.
    case full
    /// Writes are fsynced by a background timer every `milliseconds`; a process crash loses
    /// nothing, an OS crash or power loss may lose the writes of the last interval.
    case relaxed(milliseconds: Int)
}

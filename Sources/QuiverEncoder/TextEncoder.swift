import QuiverCore

/// The plugin seam between text and vectors: a query tower and a document tower that map text into
/// one embedding space. Symmetric encoders use one model (and one code path) for both; asymmetric ones
/// differ by prefix (e5/bge `query: ` / `passage: `) or use two models (`DualTowerEncoder`).
///
/// Conformers must be safe to call from several threads at once (the facade encodes write batches and
/// queries concurrently). Register one with `EncoderRegistry` to make it available by name.
public protocol TextEncoder: Sendable {
    /// A stable name for the encoder and its configuration; the catalog stores it with a collection.
    var identifier: String { get }
    /// Width of every vector the encoder returns.
    var dimension: Int { get }
    /// A fingerprint of the weights (the built-in encoder: sha256 hex of `model.safetensors`), so that
    /// a collection opened with different weights is refused instead of searched with garbage.
    var weightsChecksum: String { get }
    /// Whether returned vectors have unit L2 norm (then dot product equals cosine).
    var producesNormalizedVectors: Bool { get }
    /// Vectors of documents, one row per text, in order (the document tower).
    func encode(documents: [String]) throws -> Matrix
    /// Vectors of queries, one row per text, in order (the query tower).
    func encode(queries: [String]) throws -> Matrix
}

extension TextEncoder {
    /// Encoders that do not say are assumed not to normalize.
    public var producesNormalizedVectors: Bool { false }
}

/// An asymmetric encoder made of two models, one per tower, that share an embedding space.
public struct DualTowerEncoder: TextEncoder {
    /// Encodes queries.
    public let queryEncoder: any TextEncoder
    /// Encodes documents.
    public let documentEncoder: any TextEncoder
    /// `query=<id>;document=<id>` unless given.
    public let identifier: String

    /// Pairs two encoders; their dimensions must agree.
    public init(query: any TextEncoder, document: any TextEncoder, identifier: String? = nil) throws {
        guard query.dimension == document.dimension else {
            throw EncoderError(.unsupportedModel, "query tower '\(query.identifier)' has dimension \(query.dimension) but document tower '\(document.identifier)' has \(document.dimension)")
        }
        self.queryEncoder = query
        self.documentEncoder = document
        self.identifier = identifier ?? "query=\(query.identifier);document=\(document.identifier)"
    }

    /// The shared width of both towers.
    public var dimension: Int { queryEncoder.dimension }
    /// Both towers' checksums: changing either weights file changes it.
    public var weightsChecksum: String { "query:\(queryEncoder.weightsChecksum);document:\(documentEncoder.weightsChecksum)" }
    /// True when both towers normalize.
    public var producesNormalizedVectors: Bool { queryEncoder.producesNormalizedVectors && documentEncoder.producesNormalizedVectors }
    /// The document tower's vectors.
    public func encode(documents: [String]) throws -> Matrix { try documentEncoder.encode(documents: documents) }
    /// The query tower's vectors.
    public func encode(queries: [String]) throws -> Matrix { try queryEncoder.encode(queries: queries) }
}

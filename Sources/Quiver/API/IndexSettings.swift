/// How a collection indexes its vectors: recent writes go to a mutable segment that is searched
/// exactly; when it holds `segmentSize` vectors it is sealed in the background into an immutable HNSW
/// segment file; compaction merges small sealed segments into the largest one (up to
/// `maxSegmentVectors`) and rewrites segments whose share of deleted vectors passes `rewriteDeletedShare`.
public struct IndexSettings: Sendable, Equatable, Codable {
    /// HNSW: links per node on the upper layers (twice as many on layer 0).
    public var m: Int = 16
    /// HNSW: candidate list size while building.
    public var efConstruction: Int = 200
    /// HNSW: candidate list size while searching (at least k is used).
    public var efSearch: Int = 64
    /// Vectors in the mutable segment that trigger sealing.
    public var segmentSize: Int = 8_192
    /// Compaction does not grow a segment past this many vectors.
    public var maxSegmentVectors: Int = 2_000_000
    /// A sealed segment whose deleted share exceeds this is rewritten without them.
    public var rewriteDeletedShare: Double = 0.2

    public init(m: Int = 16, efConstruction: Int = 200, efSearch: Int = 64, segmentSize: Int = 8_192,
                maxSegmentVectors: Int = 2_000_000, rewriteDeletedShare: Double = 0.2) {
        self.m = m
        self.efConstruction = efConstruction
        self.efSearch = efSearch
        self.segmentSize = segmentSize
        self.maxSegmentVectors = maxSegmentVectors
        self.rewriteDeletedShare = rewriteDeletedShare
    }

    func validate() throws {
        guard (2...255).contains(m) else { throw QuiverError.invalidArgument("HNSW m must be between 2 and 255, not \(m)") }
        guard (1...(1 << 20)).contains(efConstruction) else { throw QuiverError.invalidArgument("efConstruction must be between 1 and 1048576, not \(efConstruction)") }
        guard (1...(1 << 20)).contains(efSearch) else { throw QuiverError.invalidArgument("efSearch must be between 1 and 1048576, not \(efSearch)") }
        guard segmentSize >= 1 else { throw QuiverError.invalidArgument("segmentSize must be positive, not \(segmentSize)") }
        guard maxSegmentVectors >= segmentSize else { throw QuiverError.invalidArgument("maxSegmentVectors must be at least segmentSize") }
        guard rewriteDeletedShare > 0 && rewriteDeletedShare <= 1 else { throw QuiverError.invalidArgument("rewriteDeletedShare must be in (0, 1]") }
    }
}

/// The index kind of a collection's sealed segments.
public enum IndexKind: String, Sendable, Codable, CaseIterable {
    /// HNSW graphs over float32 vectors: the lowest latency; about 4d + 8m + 40 bytes per vector in memory.
    case hnsw
    /// Inverted lists of product-quantized residuals: `pqBytes` + 8 bytes per vector in memory, the full
    /// vectors stay in LMDB and re-rank the best candidates, so returned scores are exact.
    case ivfpq
    /// No sealed segments: every vector stays in the exact mutable segment (searched by a full scan).
    /// For small collections, and as the oracle.
    case flat
    /// HNSW while the collection's projected HNSW memory fits `memoryBudget` (or, without a budget,
    /// while it holds fewer than `IndexSettings.autoIVFPQThreshold` vectors), IVF-PQ beyond.
    case auto
}

/// How a collection's sealed HNSW segments store their vectors in memory.
public enum Quantization: String, Sendable, Codable, CaseIterable {
    /// float32 vectors in the graph (4d bytes per vector).
    case none
    /// 8-bit codes with a per-dimension scale and offset trained at seal (and retrained at each merge):
    /// d bytes per vector in memory; graph distances are computed on the codes and the final candidates
    /// re-scored with the float32 vectors, which stay in a cold section of the segment file, so returned
    /// scores are exact. HNSW segments only.
    case sq8
}

/// How a collection indexes its vectors: recent writes go to a mutable segment that is searched
/// exactly; when it holds `segmentSize` vectors it is sealed in the background into an immutable
/// segment file of the collection's index kind (HNSW by default, or IVF-PQ); compaction merges small
/// sealed segments into the largest one (up to `maxSegmentVectors`) and rewrites segments whose share
/// of deleted vectors passes `rewriteDeletedShare`.
public struct IndexSettings: Sendable, Equatable, Codable {
    /// The kind of the sealed segments (default HNSW).
    public var kind: IndexKind = .hnsw
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
    /// IVF-PQ: inverted lists; nil chooses from the collection's size when the codebook is trained
    /// (the power of two nearest 4 sqrt(n), at most n / 39, at least 16), and retrains as it grows.
    public var nlist: Int?
    /// IVF-PQ: bytes per code (subspaces of 8 bits); must divide the dimension. nil: about d / 8
    /// (48 for 384-d, 16 for 128-d).
    public var pqBytes: Int?
    /// IVF-PQ: lists probed per search (capped at nlist). 32 of the 256 lists chosen for 10,000
    /// vectors gives recall@10 0.99 on bigann10k (16 gives 0.95).
    public var nprobe: Int = 32
    /// IVF-PQ: candidates re-ranked with their full vectors from LMDB (at least k are).
    public var rerank: Int = 100
    /// `auto`: the bytes of memory HNSW segments may take before IVF-PQ is used instead (nil: none).
    public var memoryBudget: Int?
    /// HNSW: how sealed segments store their vectors (`.none`: float32; `.sq8`: 8-bit codes, exact
    /// re-scoring). Only with `kind` `.hnsw`.
    public var quantization: Quantization = .none

    /// `auto` without a memory budget switches to IVF-PQ at this many live vectors.
    public static let autoIVFPQThreshold = 2_000_000

    public init(kind: IndexKind = .hnsw, m: Int = 16, efConstruction: Int = 200, efSearch: Int = 64, segmentSize: Int = 8_192,
                maxSegmentVectors: Int = 2_000_000, rewriteDeletedShare: Double = 0.2,
                nlist: Int? = nil, pqBytes: Int? = nil, nprobe: Int = 32, rerank: Int = 100, memoryBudget: Int? = nil,
                quantization: Quantization = .none) {
        self.kind = kind
        self.m = m
        self.efConstruction = efConstruction
        self.efSearch = efSearch
        self.segmentSize = segmentSize
        self.maxSegmentVectors = maxSegmentVectors
        self.rewriteDeletedShare = rewriteDeletedShare
        self.nlist = nlist
        self.pqBytes = pqBytes
        self.nprobe = nprobe
        self.rerank = rerank
        self.memoryBudget = memoryBudget
        self.quantization = quantization
    }

    private enum CodingKeys: String, CodingKey {
        case kind, m, efConstruction, efSearch, segmentSize, maxSegmentVectors, rewriteDeletedShare
        case nlist, pqBytes, nprobe, rerank, memoryBudget, quantization
    }

    /// Catalogs written before a setting existed lack it: it takes its default.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = IndexSettings()
        kind = try c.decodeIfPresent(IndexKind.self, forKey: .kind) ?? d.kind
        m = try c.decodeIfPresent(Int.self, forKey: .m) ?? d.m
        efConstruction = try c.decodeIfPresent(Int.self, forKey: .efConstruction) ?? d.efConstruction
        efSearch = try c.decodeIfPresent(Int.self, forKey: .efSearch) ?? d.efSearch
        segmentSize = try c.decodeIfPresent(Int.self, forKey: .segmentSize) ?? d.segmentSize
        maxSegmentVectors = try c.decodeIfPresent(Int.self, forKey: .maxSegmentVectors) ?? d.maxSegmentVectors
        rewriteDeletedShare = try c.decodeIfPresent(Double.self, forKey: .rewriteDeletedShare) ?? d.rewriteDeletedShare
        nlist = try c.decodeIfPresent(Int.self, forKey: .nlist)
        pqBytes = try c.decodeIfPresent(Int.self, forKey: .pqBytes)
        nprobe = try c.decodeIfPresent(Int.self, forKey: .nprobe) ?? d.nprobe
        rerank = try c.decodeIfPresent(Int.self, forKey: .rerank) ?? d.rerank
        memoryBudget = try c.decodeIfPresent(Int.self, forKey: .memoryBudget)
        quantization = try c.decodeIfPresent(Quantization.self, forKey: .quantization) ?? d.quantization
    }

    func validate(dimension: Int) throws {
        guard (2...255).contains(m) else { throw QuiverError.invalidArgument("HNSW m must be between 2 and 255, not \(m)") }
        guard (1...(1 << 20)).contains(efConstruction) else { throw QuiverError.invalidArgument("efConstruction must be between 1 and 1048576, not \(efConstruction)") }
        guard (1...(1 << 20)).contains(efSearch) else { throw QuiverError.invalidArgument("efSearch must be between 1 and 1048576, not \(efSearch)") }
        guard segmentSize >= 1 else { throw QuiverError.invalidArgument("segmentSize must be positive, not \(segmentSize)") }
        guard maxSegmentVectors >= segmentSize else { throw QuiverError.invalidArgument("maxSegmentVectors must be at least segmentSize") }
        guard rewriteDeletedShare > 0 && rewriteDeletedShare <= 1 else { throw QuiverError.invalidArgument("rewriteDeletedShare must be in (0, 1]") }
        if let n = nlist, !(1...(1 << 20)).contains(n) { throw QuiverError.invalidArgument("nlist must be between 1 and 1048576, not \(n)") }
        if let b = pqBytes {
            guard b >= 1, b <= dimension, dimension % b == 0 else {
                throw QuiverError.invalidArgument("pqBytes (\(b)) must divide the dimension (\(dimension))")
            }
        }
        guard (1...(1 << 20)).contains(nprobe) else { throw QuiverError.invalidArgument("nprobe must be between 1 and 1048576, not \(nprobe)") }
        guard (0...(1 << 24)).contains(rerank) else { throw QuiverError.invalidArgument("rerank must be between 0 and 16777216, not \(rerank)") }
        if let b = memoryBudget, b < 0 { throw QuiverError.invalidArgument("memoryBudget must not be negative, not \(b)") }
        if quantization != .none && kind != .hnsw {
            throw QuiverError.invalidArgument("quantization \(quantization.rawValue) applies to HNSW segments only; a collection of kind \(kind.rawValue) \(kind == .flat ? "keeps every vector in its exact mutable segment" : kind == .ivfpq ? "already stores product-quantized codes" : "may seal IVF-PQ segments, which quantize already")")
        }
    }

    /// The PQ code size for `dimension`: `pqBytes`, or the largest divisor of the dimension at most
    /// d / 8 (at least 1).
    func codeBytes(dimension: Int) -> Int {
        if let b = pqBytes { return b }
        let target = max(1, dimension / 8)
        return (1...target).reversed().first { dimension % $0 == 0 } ?? 1
    }

    /// The number of lists for a codebook trained when the collection holds `vectors` live vectors.
    func listCount(forVectors vectors: Int) -> Int {
        if let n = nlist { return n }
        return IndexSettings.automaticListCount(vectors)
    }

    /// The power of two nearest 4 sqrt(n), at most n / 39 (k-means wants about 39 points per centroid),
    /// at least 16 (or 1 below 16 * 39 vectors).
    static func automaticListCount(_ n: Int) -> Int {
        let target = 4 * Double(n).squareRoot()
        var p = 1
        while Double(p * 2) <= target * 1.4142 { p *= 2 }
        let cap = max(1, n / 39)
        while p > cap && p > 16 { p /= 2 }
        if p > cap { p = 1 }
        return max(1, p)
    }

    /// Projected bytes of memory for `vectors` vectors of `dimension` components in HNSW segments.
    func hnswBytes(vectors: Int, dimension: Int) -> Int {
        vectors * (4 * dimension + 4 * (2 * m + 1) + 40)
    }

    /// The kind of segment to build now, for a collection of `liveVectors` live vectors.
    func sealKind(liveVectors: Int, dimension: Int) -> IndexKind {
        switch kind {
        case .auto:
            if let budget = memoryBudget { return hnswBytes(vectors: liveVectors, dimension: dimension) > budget ? .ivfpq : .hnsw }
            return liveVectors >= IndexSettings.autoIVFPQThreshold ? .ivfpq : .hnsw
        default:
            return kind
        }
    }
}

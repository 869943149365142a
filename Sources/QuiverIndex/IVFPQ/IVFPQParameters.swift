import QuiverCore

/// The build and search parameters of an `IVFPQIndex` (FAISS's names).
///
/// Defaults: `nprobe` 16 and `rerank` 100 (for k = 10) reach recall@10 >= 0.95 on bigann10k with
/// nlist 100 and m 16 (16-byte codes); see `IVFPQIndexTests` and docs/benchmarks.md. A rule of thumb for
/// `nlist` is 4 to 16 times sqrt(n), with at least 39 training vectors per list.
public struct IVFPQParameters: Sendable, Equatable {
    /// Inverted lists (coarse centroids), 1...2^20.
    public var nlist: Int
    /// PQ subspaces `m` (bytes per code); must divide the dimension.
    public var subspaces: Int
    /// Default lists probed per query (`search` calls without an explicit `nprobe`), 1...nlist; the
    /// initializer clamps it to nlist.
    public var nprobe: Int
    /// Default re-ranking depth: this many ADC candidates (at least k) get their exact distance from the
    /// index's `IVFPQVectorSource`; 0 = no re-ranking (distances are then PQ approximations).
    public var rerank: Int
    /// K-means of the coarse quantizer (k = nlist).
    public var coarseKMeans: KMeansParameters
    /// K-means of each PQ subspace (k = 256). Initialized from random training points by default, as
    /// FAISS does: k-means++ gave a lower quantization error on bigann10k but no better recall
    /// (leave-one-out recall@10 0.7357 vs 0.7369 over 5 seeds, +-0.0015) and costs more training time.
    public var pqKMeans: KMeansParameters
    /// L2 and cosine: any positive value keeps, per stored vector, the query-independent term of its ADC
    /// distance (4 bytes per vector; see `IVFPQIndex`), so that a search computes one table per query;
    /// 0 disables it, and tables are then built per probed list from the query's residual. (The name
    /// is from when the term was a per-list table of nlist * m * 256 floats, limited to this many bytes.)
    public var precomputedTableLimit: Int
    /// Workers of training and `add` (0 = one per core).
    public var threads: Int
    /// An OPQ rotation of the residuals before product quantization (nil = none, the default): trained
    /// on the residuals of the training sample after the coarse quantizer, at the cost of training
    /// time and one d x d matrix-vector product per query. See `OPQRotation` and docs/benchmarks.md for
    /// what it buys.
    public var opq: OPQParameters?

    /// Parameters with the documented defaults for everything but the list count and code size.
    public init(nlist: Int, subspaces: Int, nprobe: Int = 16, rerank: Int = 100,
                coarseKMeans: KMeansParameters = KMeansParameters(iterations: 20),
                pqKMeans: KMeansParameters = KMeansParameters(iterations: 25, initialization: .randomSample),
                precomputedTableLimit: Int = 256 << 20, threads: Int = 0, opq: OPQParameters? = nil) {
        self.nlist = nlist
        self.subspaces = subspaces
        self.nprobe = min(nprobe, nlist)
        self.rerank = rerank
        self.coarseKMeans = coarseKMeans
        self.pqKMeans = pqKMeans
        self.precomputedTableLimit = precomputedTableLimit
        self.threads = threads
        self.opq = opq
    }

    func validate(dimension: Int) throws {
        guard (1...(1 << 20)).contains(nlist) else { throw IndexError(.invalidParameter, "nlist must be in 1...2^20, got \(nlist)") }
        try ProductQuantizer.check(dimension: dimension, subspaces: subspaces)
        guard subspaces <= 4096 else { throw IndexError(.invalidParameter, "at most 4096 subspaces, got \(subspaces)") }
        guard (1...nlist).contains(nprobe) else { throw IndexError(.invalidParameter, "nprobe must be in 1...nlist, got \(nprobe)") }
        guard rerank >= 0, rerank <= 1 << 24 else { throw IndexError(.invalidParameter, "rerank must be in 0...2^24, got \(rerank)") }
        guard precomputedTableLimit >= 0, threads >= 0 else { throw IndexError(.invalidParameter, "negative limit or thread count") }
        try coarseKMeans.validate()
        try pqKMeans.validate()
        try opq?.validate()
    }
}

/// Where `IVFPQIndex` reads full-precision vectors for re-ranking: the facade reads them from LMDB,
/// tests and benchmarks from memory (`MatrixVectorSource`).
///
/// Thread-safety: `readVectors` is called from concurrent searches, so implementations must allow that.
public protocol IVFPQVectorSource: Sendable {
    /// For each `i`, writes the stored vector of `ids[i]` (as it was added: not normalized) to
    /// `destination + i * dimension` and sets `found[i]`; an id it does not know gets `found[i] = false`
    /// (the candidate is then dropped). Throws to abort the search (a storage error).
    func readVectors(_ ids: UnsafeBufferPointer<Int64>, dimension: Int, into destination: UnsafeMutablePointer<Float>,
                     found: UnsafeMutablePointer<Bool>) throws

    /// Optional zero-copy access, for sources that hold the vectors in memory: sets `rows[i]` to the
    /// stored vector of `ids[i]` (`dimension` floats, as added), or nil for an unknown id, calls `body`
    /// while those pointers are valid, and returns true. The pointers must not be used after `body`
    /// returns. The default implementation returns false without calling `body`; the index then copies
    /// through `readVectors`.
    func withVectors(_ ids: UnsafeBufferPointer<Int64>, dimension: Int, rows: UnsafeMutablePointer<UnsafePointer<Float>?>,
                     _ body: () throws -> Void) throws -> Bool
}

extension IVFPQVectorSource {
    public func withVectors(_ ids: UnsafeBufferPointer<Int64>, dimension: Int, rows: UnsafeMutablePointer<UnsafePointer<Float>?>,
                            _ body: () throws -> Void) throws -> Bool {
        false
    }
}

/// An in-memory `IVFPQVectorSource`: rows of a matrix under ids (row i = `ids[i]`, or id i when `ids`
/// is nil). Immutable, so safe for concurrent searches.
public struct MatrixVectorSource: IVFPQVectorSource {
    /// The stored vectors, row-major.
    public let vectors: Matrix
    private let rowOf: [Int64: Int]?

    /// `ids`, if given, must have one distinct id per row.
    public init(_ vectors: Matrix, ids: [Int64]? = nil) {
        precondition(ids == nil || ids!.count == vectors.rows, "one id per row")
        self.vectors = vectors
        if let ids {
            var map = [Int64: Int](minimumCapacity: ids.count)
            for (i, id) in ids.enumerated() { map[id] = i }
            rowOf = map
        } else {
            rowOf = nil
        }
    }

    @inline(__always)
    private func row(of id: Int64) -> Int? {
        if let rowOf { return rowOf[id] }
        return id >= 0 && id < Int64(vectors.rows) ? Int(id) : nil
    }

    /// Pointers into the matrix: no copy.
    public func withVectors(_ ids: UnsafeBufferPointer<Int64>, dimension: Int, rows: UnsafeMutablePointer<UnsafePointer<Float>?>,
                            _ body: () throws -> Void) throws -> Bool {
        precondition(dimension == vectors.dimension)
        try vectors.storage.withUnsafeBufferPointer { v in
            for (i, id) in ids.enumerated() { rows[i] = row(of: id).map { v.baseAddress! + $0 * dimension } }
            try body()
        }
        return true
    }

    public func readVectors(_ ids: UnsafeBufferPointer<Int64>, dimension: Int, into destination: UnsafeMutablePointer<Float>,
                            found: UnsafeMutablePointer<Bool>) throws {
        precondition(dimension == vectors.dimension)
        vectors.storage.withUnsafeBufferPointer { v in
            for (i, id) in ids.enumerated() {
                if let row = row(of: id) {
                    (destination + i * dimension).update(from: v.baseAddress! + row * dimension, count: dimension)
                    found[i] = true
                } else {
                    found[i] = false
                }
            }
        }
    }
}

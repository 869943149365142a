import COpenBLAS
import QuiverCore
import Synchronization

/// Inverted file with product-quantized residuals (Jégou et al., 2011; FAISS's `IndexIVFPQ`): a coarse
/// k-means quantizer splits the space into `nlist` lists; a vector is stored in the list of its nearest
/// centroid as the PQ code (m bytes) of its residual `x - centroid`. A search probes the `nprobe` lists
/// closest to the query, scores every code there by asymmetric distance computation (ADC: one table
/// of m * 256 floats per query or list, then m lookups per code), keeps the best `max(k, rerank)`, and
/// re-ranks them with exact distances on full vectors read through `vectorSource`.
///
/// ## Metrics
/// - `.l2`: lists by nearest centroid; ADC distance = ||q - y||^2 + sum_j (||c_j||^2 + 2<y_j, c_j>)
///   - 2 sum_j <q_j, c_j>, with the middle term precomputed per list (FAISS's precomputed tables) when it
///   fits `precomputedTableLimit`, otherwise tables of ||(q - y)_j - c||^2 per probed list.
/// - `.cosine`: vectors and queries are normalized, then everything is as for `.l2`; the ADC distance
///   returned without re-ranking is ||q - x^||^2 / 2, which equals 1 - cos when ||x^|| = 1. Ranking by
///   the L2 form rather than by 1 - <q, x^> is measurably better: its error for a neighbour x is
///   2 <q - x, e> + ||e||^2 (e = the PQ error), while the inner-product form's is <q, e>, and q - x is
///   short for near neighbours (exhaustive ADC recall@10 on the clustered data of IVFPQIndexTests:
///   0.38 with the inner-product form, 0.61 with this one).
/// - `.dot`: lists by largest inner product (as FAISS's IP quantizer); ADC = -<q, y> - sum_j <q_j, c_j>.
/// Re-ranked distances are exact and computed exactly as `FlatIndex` does.
///
/// ## Memory
/// Per list, two flat arrays: codes (count * m bytes) and ids (count Int64). Plus the coarse centroids
/// (nlist * d floats), PQ centroids (m * 256 * d/m floats), the L2 precomputed table (nlist * m * 256
/// floats) and an id set (only when ids are not exactly 0..<count in insertion order) and a tombstone set.
///
/// ## Filters and completeness
/// A search returns `min(k, allowed live vectors)` results: when the probed lists yield fewer than that,
/// it widens to the next lists in coarse order until it has them (in the end every list). A bitset filter
/// that allows few ids (allowed * d at most the expected ADC work, or at most the re-ranking depth) is
/// answered by an exact scan of the allowed ids through `vectorSource`, when one is set.
///
/// ## OpenBLAS
/// Training, `add` and batched searches parallelize over row blocks themselves and set OpenBLAS to one
/// thread, process-wide (as the encoder does), so that sgemm calls from several workers do not each
/// spawn threads.
///
/// ## Thread-safety
/// - `search` (every overload), `contains`, `count`, `memoryBytes`: safe concurrently with each other.
/// - `train`, `add`, `markDeleted` and the setters of `nprobe`, `rerank`, `vectorSource`: exclusive.
/// - Search contexts: one per thread (`IVFPQSearchContext`); context-less overloads use a pool.
public final class IVFPQIndex: VectorIndex, @unchecked Sendable {
    /// Components per vector (immutable; read from any thread).
    public let dimension: Int
    /// How vectors are compared (immutable; read from any thread).
    public let metric: Metric
    /// The parameters the index was created with.
    public let parameters: IVFPQParameters
    /// Lists probed by searches that pass no `nprobe` (1...nlist). Set only while no search runs.
    public var nprobe: Int
    /// Re-ranking depth of searches that pass no `rerank` (0 = none). Set only while no search runs.
    public var rerank: Int
    /// Where re-ranking and exact filtered scans read full vectors; without one, searches return ADC
    /// distances. Set only while no search runs.
    public var vectorSource: (any IVFPQVectorSource)?

    /// Number of inverted lists.
    public var nlist: Int { parameters.nlist }
    /// Bytes per PQ code (the number of subspaces).
    public var codeSize: Int { parameters.subspaces }

    /// (nlist, d) coarse centroids; empty until trained.
    private(set) var coarse: [Float] = []
    /// ||centroid||^2 per list.
    private(set) var coarseNorms: [Float] = []
    /// The residual quantizer; nil until trained.
    public private(set) var pq: ProductQuantizer?
    /// L2 only: nlist * m * 256 floats, entry (l, j, c) = ||c||^2 + 2 <y_l[j-th block], c>; else empty.
    private(set) var precomputed: [Float] = []
    /// The inverted lists.
    private(set) var lists: [InvertedList]
    /// Vectors stored, tombstoned ones included (changes only in `add`).
    public private(set) var count = 0
    /// Tombstoned ids.
    private(set) var deleted = Set<Int64>()
    /// Every stored id, or nil while the ids are exactly 0..<count (then membership is a range check).
    private(set) var idSet: Set<Int64>?
    private let contexts = Mutex<[IVFPQSearchContext]>([])

    /// One inverted list: `ids.count` entries; entry i has id `ids[i]` and code `codes[i*m ..< (i+1)*m]`.
    struct InvertedList: Sendable, Equatable {
        var codes: [UInt8] = []
        var ids: [Int64] = []
    }

    /// An empty, untrained index. Throws `IndexError(.invalidParameter)` on a dimension outside
    /// 1...65536 or parameters outside their documented ranges.
    public init(dimension: Int, metric: Metric, parameters: IVFPQParameters) throws {
        guard (1...65_536).contains(dimension) else {
            throw IndexError(.invalidParameter, "dimension must be in 1...65536, got \(dimension)")
        }
        try parameters.validate(dimension: dimension)
        self.dimension = dimension
        self.metric = metric
        self.parameters = parameters
        nprobe = parameters.nprobe
        rerank = parameters.rerank
        lists = [InvertedList](repeating: InvertedList(), count: parameters.nlist)
    }

    /// An index over decoded state (see `IVFPQCodec`), already validated.
    init(decoded dimension: Int, metric: Metric, parameters: IVFPQParameters, coarse: [Float], pq: ProductQuantizer,
         lists: [InvertedList], count: Int, deleted: Set<Int64>, idSet: Set<Int64>?) {
        self.dimension = dimension
        self.metric = metric
        self.parameters = parameters
        nprobe = parameters.nprobe
        rerank = parameters.rerank
        self.lists = lists
        self.count = count
        self.deleted = deleted
        self.idSet = idSet
        install(coarse: coarse, pq: pq)
    }

    /// Whether `train` has run (or the index was decoded).
    public var isTrained: Bool { pq != nil }
    public var liveCount: Int { count - deleted.count }
    /// Tombstoned vectors.
    public var deletedCount: Int { deleted.count }

    /// The number of vectors in each list.
    public var listSizes: [Int] { lists.map(\.ids.count) }

    /// Bytes held: codes and ids at their sizes, centroids, tables, and the id and tombstone sets
    /// (estimated at 16 bytes per entry).
    public var memoryBytes: Int {
        let stored = lists.reduce(0) { $0 + $1.codes.capacity + 8 * $1.ids.capacity }
        let model = 4 * (coarse.count + coarseNorms.count + (pq?.centroids.count ?? 0) * 2 + precomputed.count)
        return stored + model + 16 * ((idSet?.count ?? 0) + deleted.count)
    }

    private func install(coarse: [Float], pq: ProductQuantizer) {
        self.coarse = coarse
        self.pq = pq
        let d = dimension, nl = parameters.nlist
        coarseNorms = coarse.withUnsafeBufferPointer { NearestCentroid.norms($0.baseAddress!, k: nl, d: d) }
        precomputed = []
        let m = pq.subspaces, dsub = pq.subDimension
        guard metric != .dot, parameters.precomputedTableLimit > 0,
              nl * m * 256 <= parameters.precomputedTableLimit / 4 else { return }
        var table = [Float](repeating: 0, count: nl * m * 256)
        table.withUnsafeMutableBufferPointer { t in
            coarse.withUnsafeBufferPointer { cp in
                pq.centroids.withUnsafeBufferPointer { pc in
                    pq.centroidNorms.withUnsafeBufferPointer { pn in
                        // Lists are independent: workers write disjoint list blocks.
                        let shared = UncheckedSendable((t.baseAddress!, cp.baseAddress!, pc.baseAddress!, pn.baseAddress!))
                        ParallelFor.run(nl, threads: parameters.threads) { l in
                            let (t, cp, pc, pn) = shared.value
                            for j in 0..<m {
                                let y = cp + l * d + j * dsub
                                let row = t + (l * m + j) * 256
                                for c in 0..<256 {
                                    row[c] = pn[j * 256 + c] + 2 * DistanceKernels.dot(y, pc + (j * 256 + c) * dsub, dsub)
                                }
                            }
                        }
                    }
                }
            }
        }
        precomputed = table
    }

    // MARK: - Train

    /// Trains the coarse quantizer (k-means, k = nlist) on `sample`, then the PQ on the residuals of
    /// the sample to its assigned centroids. Needs at least max(nlist, 256) rows. Replaces any earlier
    /// training; throws `IndexError(.invalidParameter)` if vectors were already added. Exclusive.
    public func train(_ sample: Matrix) throws {
        guard sample.dimension == dimension else {
            throw IndexError(.dimensionMismatch, "training vectors of \(sample.dimension) components in a \(dimension)-d index")
        }
        guard count == 0 else { throw IndexError(.invalidParameter, "train before adding vectors (the index holds \(count))") }
        let nl = parameters.nlist, d = dimension
        guard sample.rows >= max(nl, ProductQuantizer.centroidCount) else {
            throw IndexError(.invalidParameter, "training needs at least max(nlist, 256) = \(max(nl, 256)) vectors, got \(sample.rows)")
        }
        var data = sample.storage
        if metric.normalizes { Self.normalizeRows(&data, d) }
        var coarseParameters = parameters.coarseKMeans
        coarseParameters.threads = parameters.threads
        let coarseResult = try KMeans.train(Matrix(dimension: d, storage: data), k: nl, parameters: coarseParameters)
        let coarse = coarseResult.centroids.storage

        // Residuals of a capped, evenly strided subset (the PQ k-means samples again below its cap).
        let cap = max(ProductQuantizer.centroidCount, parameters.pqKMeans.maxPointsPerCentroid * ProductQuantizer.centroidCount)
        let n = min(sample.rows, cap)
        var residuals = [Float](repeating: 0, count: n * d)
        data.withUnsafeBufferPointer { x in
            residuals.withUnsafeMutableBufferPointer { r in
                for i in 0..<n {
                    let src = i * sample.rows / n
                    (r.baseAddress! + i * d).update(from: x.baseAddress! + src * d, count: d)
                }
            }
        }
        let norms = coarse.withUnsafeBufferPointer { NearestCentroid.norms($0.baseAddress!, k: nl, d: d) }
        subtractAssigned(&residuals, rows: n, coarse: coarse, norms: norms)
        var pqParameters = parameters.pqKMeans
        pqParameters.threads = parameters.threads
        let pq = try ProductQuantizer.train(Matrix(dimension: d, storage: residuals), subspaces: parameters.subspaces, parameters: pqParameters)
        install(coarse: coarse, pq: pq)
    }

    static func normalizeRows(_ data: inout [Float], _ d: Int) {
        let n = data.count / d
        data.withUnsafeMutableBufferPointer { p in
            for i in 0..<n { DistanceKernels.normalize(p.baseAddress! + i * d, d) }
        }
    }

    /// Assigns each row of `x` to its list (L2: nearest centroid; dot: largest inner product), replaces
    /// the row by its residual, and returns the lists.
    @discardableResult
    private func subtractAssigned(_ x: inout [Float], rows n: Int, coarse: [Float], norms: [Float]) -> [Int32] {
        let d = dimension, nl = parameters.nlist
        var labels = [Int32](repeating: 0, count: n)
        let assignNorms = metric == .dot ? [Float](repeating: 0, count: nl) : norms
        x.withUnsafeMutableBufferPointer { xp in
            coarse.withUnsafeBufferPointer { c in
                assignNorms.withUnsafeBufferPointer { nm in
                    labels.withUnsafeMutableBufferPointer { lb in
                        NearestCentroid.assignParallel(xp.baseAddress!, rows: n, ldx: d, d: d, centroids: c.baseAddress!, k: nl,
                                                       norms: nm.baseAddress!, labels: lb.baseAddress!, distances: nil,
                                                       threads: parameters.threads)
                    }
                }
                for i in 0..<n {
                    let row = xp.baseAddress! + i * d
                    let y = c.baseAddress! + Int(labels[i]) * d
                    for j in 0..<d { row[j] -= y[j] }
                }
            }
        }
        return labels
    }

    // MARK: - Ids

    public func contains(_ id: Int64) -> Bool {
        let stored = idSet.map { $0.contains(id) } ?? (id >= 0 && id < Int64(count))
        return stored && !deleted.contains(id)
    }

    private func isStored(_ id: Int64) -> Bool {
        idSet.map { $0.contains(id) } ?? (id >= 0 && id < Int64(count))
    }

    @discardableResult
    public func markDeleted(_ id: Int64) -> Bool {
        guard isStored(id) else { return false }
        return deleted.insert(id).inserted
    }

    // MARK: - Add

    /// Adds vectors (see `VectorIndex.add`); the index must be trained (`IndexError(.invalidParameter)`
    /// otherwise). Coarse assignment and encoding run on all cores. Exclusive.
    public func add(_ batch: Matrix, ids: [Int64]) throws {
        guard batch.dimension == dimension else {
            throw IndexError(.dimensionMismatch, "vectors of \(batch.dimension) components in a \(dimension)-d index")
        }
        guard ids.count == batch.rows else { throw IndexError(.idCountMismatch, "\(ids.count) ids for \(batch.rows) vectors") }
        guard let pq else { throw IndexError(.invalidParameter, "train the index before adding vectors") }
        let n = batch.rows
        if n == 0 { return }
        var dense = idSet == nil
        if dense {
            for (i, id) in ids.enumerated() where id != Int64(count + i) {
                dense = false
                break
            }
        }
        if !dense {
            var seen = Set<Int64>(minimumCapacity: n)
            for id in ids where isStored(id) || !seen.insert(id).inserted {
                throw IndexError(.duplicateId, "id \(id) is already in the index or repeated in the batch")
            }
        }
        let d = dimension, m = pq.subspaces
        var residuals = batch.storage
        if metric.normalizes { Self.normalizeRows(&residuals, d) }
        let labels = subtractAssigned(&residuals, rows: n, coarse: coarse, norms: coarseNorms)
        var codes = [UInt8](repeating: 0, count: n * m)
        residuals.withUnsafeBufferPointer { r in
            codes.withUnsafeMutableBufferPointer { c in
                pq.encode(r.baseAddress!, rows: n, into: c.baseAddress!, threads: parameters.threads)
            }
        }
        if !dense {
            if idSet == nil { idSet = Set((0..<Int64(count)).map { $0 }) }
            idSet!.formUnion(ids)
        }
        codes.withUnsafeBufferPointer { c in
            for i in 0..<n {
                let l = Int(labels[i])
                lists[l].codes.append(contentsOf: UnsafeBufferPointer(start: c.baseAddress! + i * m, count: m))
                lists[l].ids.append(ids[i])
            }
        }
        count += n
    }

    // MARK: - Search

    private func borrowContext() -> IVFPQSearchContext {
        contexts.withLock { $0.popLast() } ?? IVFPQSearchContext()
    }

    private func recycle(_ ctx: IVFPQSearchContext) {
        contexts.withLock { pool in
            if pool.count < 64 { pool.append(ctx) }
        }
    }

    public func search(_ query: UnsafeBufferPointer<Float>, k: Int, allow: AllowFilter?) throws -> [Neighbor] {
        let ctx = borrowContext()
        defer { recycle(ctx) }
        return try search(query, k: k, nprobe: nil, rerank: nil, allow: allow, context: ctx)
    }

    public func search(_ queries: Matrix, k: Int, allow: AllowFilter?) throws -> [[Neighbor]] {
        try search(queries, k: k, nprobe: nil, rerank: nil, allow: allow)
    }

    /// Batched search with explicit `nprobe` / `rerank` (nil = the index's defaults) on up to `threads`
    /// workers (0 = one per core). As FAISS does, the coarse scores of a block of queries come from one
    /// sgemm (queries x centroids), which reads the centroids once per block instead of once per query;
    /// then each query is searched as `search(_:k:nprobe:rerank:allow:context:)` would (same results).
    /// Errors of the vector source are rethrown (the first one). Safe concurrently with other searches.
    public func search(_ queries: Matrix, k: Int, nprobe: Int?, rerank: Int?, allow: AllowFilter?, threads: Int = 0) throws -> [[Neighbor]] {
        guard queries.dimension == dimension else {
            throw IndexError(.dimensionMismatch, "queries of \(queries.dimension) components in a \(dimension)-d index")
        }
        guard k >= 0 else { throw IndexError(.invalidParameter, "k must not be negative, got \(k)") }
        let n = queries.rows, d = dimension, nl = parameters.nlist
        var out = [[Neighbor]](repeating: [], count: n)
        let firstError = Mutex<(any Error)?>(nil)
        // Queries as the index compares them (normalized for cosine), for the coarse sgemm only: each
        // query is still normalized by the per-query search itself, exactly as a single search does.
        var prepared = queries.storage
        if metric.normalizes { Self.normalizeRows(&prepared, d) }
        let block = max(1, min(n, 256))
        var dots = [Float](repeating: 0, count: isTrained ? block * nl : 0)
        if isTrained && n > 1 { openblasSingleThreaded() }
        // Workers write disjoint elements of `out` and only read the queries and the block's dots.
        try out.withUnsafeMutableBufferPointer { results in
            let results = UncheckedSendable(results)
            try queries.storage.withUnsafeBufferPointer { q in
                let q = UncheckedSendable(q)
                var start = 0
                while start < n {
                    let b = min(block, n - start)
                    var dotsBase: UnsafePointer<Float>? = nil
                    if isTrained {
                        dots.withUnsafeMutableBufferPointer { dp in
                            prepared.withUnsafeBufferPointer { pp in
                                coarse.withUnsafeBufferPointer { cp in
                                    // dots (b, nl) = Q (b, d) * C^T (d, nl)
                                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(b), Int32(nl), Int32(d),
                                                1, pp.baseAddress! + start * d, Int32(d), cp.baseAddress!, Int32(d), 0,
                                                dp.baseAddress!, Int32(nl))
                                }
                            }
                        }
                        dotsBase = dots.withUnsafeBufferPointer { UnsafePointer($0.baseAddress!) }
                    }
                    // `dots` is not resized or written while the block's workers read it.
                    let shared = UncheckedSendable(dotsBase)
                    let first = start
                    ParallelFor.run(b, threads: threads) { i in
                        let ctx = self.borrowContext()
                        defer { self.recycle(ctx) }
                        let row = UnsafeBufferPointer(start: q.value.baseAddress! + (first + i) * d, count: d)
                        do {
                            results.value[first + i] = try self.search(row, k: k, nprobe: nprobe, rerank: rerank, allow: allow,
                                                                        context: ctx, coarseDots: shared.value.map { $0 + i * nl })
                        } catch {
                            firstError.withLock { if $0 == nil { $0 = error } }
                        }
                    }
                    if let error = firstError.withLock({ $0 }) { throw error }
                    start += b
                }
            }
        }
        return out
    }

    /// The hot-path search: the `k` nearest live, allowed vectors to `query` (`dimension` floats),
    /// closest first, probing `nprobe` lists (widened as the type's comment says) and re-ranking the best
    /// `max(k, rerank)` ADC candidates when `rerank > 0` and a `vectorSource` is set (exact distances);
    /// otherwise the distances are ADC approximations. Uses `context`'s memory.
    /// Throws on a dimension mismatch, negative k, nprobe outside 1...nlist, or a vector-source error.
    /// Safe concurrently with other searches, as long as each uses its own `context`.
    public func search(_ query: UnsafeBufferPointer<Float>, k: Int, nprobe: Int? = nil, rerank: Int? = nil,
                       allow: AllowFilter? = nil, context ctx: IVFPQSearchContext) throws -> [Neighbor] {
        try search(query, k: k, nprobe: nprobe, rerank: rerank, allow: allow, context: ctx, coarseDots: nil)
    }

    /// `coarseDots`: the normalized query's inner product with each centroid, when a batched search
    /// computed them already (nil: computed here).
    func search(_ query: UnsafeBufferPointer<Float>, k: Int, nprobe: Int?, rerank: Int?, allow: AllowFilter?,
                context ctx: IVFPQSearchContext, coarseDots: UnsafePointer<Float>?) throws -> [Neighbor] {
        guard query.count == dimension else {
            throw IndexError(.dimensionMismatch, "a query of \(query.count) components in a \(dimension)-d index")
        }
        guard k >= 0 else { throw IndexError(.invalidParameter, "k must not be negative, got \(k)") }
        let nprobe = nprobe ?? self.nprobe
        guard (1...parameters.nlist).contains(nprobe) else {
            throw IndexError(.invalidParameter, "nprobe must be in 1...\(parameters.nlist), got \(nprobe)")
        }
        let depth = rerank ?? self.rerank
        guard depth >= 0 else { throw IndexError(.invalidParameter, "rerank must not be negative, got \(depth)") }
        guard k > 0, let pq, liveCount > 0 else { return [] }
        let source = depth > 0 ? vectorSource : nil
        let candidates = source == nil ? k : max(k, depth)
        let d = dimension, nl = parameters.nlist
        ctx.prepare(dimension: d, nlist: nl, subspaces: pq.subspaces, candidates: candidates, k: k, rerankBatch: min(max(candidates, 64), 1024))

        // The query, normalized for cosine.
        ctx.query.update(from: query.baseAddress!, count: d)
        if metric.normalizes { DistanceKernels.normalize(ctx.query, d) }

        var mostAllowed = liveCount
        switch allow {
        case .bitset(let bits):
            let allowed = bits.count
            mostAllowed = min(mostAllowed, allowed)
            let expectedScan = Double(nprobe) * Double(count) / Double(nl) * Double(pq.subspaces)
            if let source = vectorSource, allowed <= candidates || Double(allowed) * Double(d) <= expectedScan {
                return try exactScan(bits, k: k, source: source, context: ctx)
            }
        case .predicate, nil:
            break
        }
        let want = min(k, mostAllowed)
        if want == 0 { return [] }

        scoreLists(pq, context: ctx, coarseDots: coarseDots)
        var probed = 0
        var sortedPrefix = selectProbes(nprobe, context: ctx)
        while probed < nl {
            let end = min(nl, probed < nprobe ? nprobe : probed + max(1, nprobe))
            if end > sortedPrefix { sortedPrefix = selectProbes(nl, context: ctx) }
            for p in probed..<end {
                scan(list: Int(ctx.probes[p]), pq: pq, allow: allow, context: ctx)
            }
            probed = end
            if ctx.heap.count >= want { break }
        }

        let n = ctx.heap.drainSorted()
        guard let source else {
            // Cosine ranks by ||q - x^||^2 of unit vectors, which is 2 (1 - cos) when ||x^|| = 1.
            let scale: Float = metric == .cosine ? 0.5 : 1
            return (0..<min(n, k)).map { Neighbor(id: ctx.heap.ids[$0], distance: scale * ctx.heap.distances[$0]) }
        }
        // Re-rank: exact distances of the n candidates, in batches through the source.
        ctx.exact.reset(capacity: k)
        var start = 0
        while start < n {
            let b = min(ctx.rerankIds.count, n - start)
            let from = ctx.heap.ids + start
            ctx.rerankIds.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: from, count: b) }
            try rerankBatch(b, source: source, context: ctx)
            start += b
        }
        let found = ctx.exact.drainSorted()
        return (0..<found).map { Neighbor(id: ctx.exact.ids[$0], distance: ctx.exact.distances[$0]) }
    }

    /// Fills the probing key and ADC base term of every list, and the query table.
    private func scoreLists(_ pq: ProductQuantizer, context ctx: IVFPQSearchContext, coarseDots: UnsafePointer<Float>?) {
        let d = dimension, nl = parameters.nlist
        let q = UnsafePointer(ctx.query)
        let key = ctx.coarseKey, base = ctx.coarseBase
        // One dot product per centroid (with the stored ||c||^2) instead of a difference and a square:
        // FAISS's form for L2 too; the rounding it adds (about 1e-7 of ||q||^2 + ||c||^2) only moves
        // near-ties of the probing order and the ADC base.
        let qn = metric == .dot ? 0 : DistanceKernels.dot(q, q, d)
        coarse.withUnsafeBufferPointer { cp in
            coarseNorms.withUnsafeBufferPointer { norms in
                for l in 0..<nl {
                    let dot = coarseDots?[l] ?? DistanceKernels.dot(q, cp.baseAddress! + l * d, d)
                    switch metric {
                    case .l2, .cosine:
                        let dist = max(0, qn + norms[l] - 2 * dot)
                        key[l] = dist
                        base[l] = dist
                    case .dot:
                        key[l] = -dot
                        base[l] = -dot
                    }
                }
            }
        }
        let t = ctx.queryTable
        switch metric {
        case .l2, .cosine:
            if !precomputed.isEmpty { pq.distanceTable(q, kind: .innerProduct, into: t) }
        case .dot:
            pq.distanceTable(q, kind: .innerProduct, into: t)
            for i in 0..<pq.subspaces * 256 { t[i] = -t[i] }
        }
    }

    /// Puts the `p` lists of smallest key first in `ctx.probes`, sorted (ties by list number); returns p.
    private func selectProbes(_ p: Int, context ctx: IVFPQSearchContext) -> Int {
        let nl = parameters.nlist
        do {
            let key = ctx.coarseKey
            do {
                let pr = ctx.probes
                func worse(_ a: Int32, _ b: Int32) -> Bool {
                    key[Int(a)] > key[Int(b)] || (key[Int(a)] == key[Int(b)] && a > b)
                }
                // A max-heap of the p best in pr[0..<p], then a heap sort of it.
                var size = 0
                func siftDown(_ start: Int, _ n: Int) {
                    var parent = start
                    while true {
                        let l = 2 * parent + 1
                        if l >= n { return }
                        var w = l
                        if l + 1 < n && worse(pr[l + 1], pr[l]) { w = l + 1 }
                        if worse(pr[w], pr[parent]) { swap(pr, w, parent); parent = w } else { return }
                    }
                }
                for l in 0..<nl {
                    let li = Int32(l)
                    if size < p {
                        pr[size] = li
                        var child = size
                        size += 1
                        while child > 0 {
                            let parent = (child - 1) / 2
                            if worse(pr[child], pr[parent]) { swap(pr, child, parent); child = parent } else { break }
                        }
                    } else if worse(pr[0], li) {
                        pr[0] = li
                        siftDown(0, size)
                    }
                }
                var end = size
                while end > 1 {
                    end -= 1
                    swap(pr, 0, end)
                    siftDown(0, end)
                }
            }
        }
        return p
    }

    @inline(__always)
    private func swap(_ p: UnsafeMutablePointer<Int32>, _ a: Int, _ b: Int) {
        let t = p[a]; p[a] = p[b]; p[b] = t
    }

    /// ADC over one list into `ctx.heap`; tombstones and the filter are checked only for candidates
    /// that would enter the heap.
    private func scan(list l: Int, pq: ProductQuantizer, allow: AllowFilter?, context ctx: IVFPQSearchContext) {
        let list = lists[l]
        let n = list.ids.count
        if n == 0 { return }
        let m = pq.subspaces, d = dimension
        // Without precomputed tables an L2 table holds the whole ||(q - y_l)_j - c||^2: no base term.
        let base = metric != .dot && precomputed.isEmpty ? 0 : ctx.coarseBase[l]
        let hasDeleted = !deleted.isEmpty
        // The table of this list.
        let table: UnsafePointer<Float>
        switch metric {
        case .dot:
            table = UnsafePointer(ctx.queryTable)
        case .l2, .cosine:
            let t = ctx.listTable
            if precomputed.isEmpty {
                let r = ctx.residual
                coarse.withUnsafeBufferPointer { c in
                    for j in 0..<d { r[j] = ctx.query[j] - c[l * d + j] }
                }
                pq.distanceTable(r, kind: .squaredL2, into: t)
            } else {
                precomputed.withUnsafeBufferPointer { pre in
                    Self.madd(pre.baseAddress! + l * m * 256, -2, ctx.queryTable, into: t, count: m * 256)
                }
            }
            table = UnsafePointer(t)
        }
        // A local copy of the heap (raw buffers, no reference counting) for the loop; written back after.
        var heap = ctx.heap
        list.codes.withUnsafeBufferPointer { cp in
            list.ids.withUnsafeBufferPointer { ip in
                let codes = cp.baseAddress!
                var threshold = heap.threshold
                for i in 0..<n {
                    let dist = base + ProductQuantizer.tableSum(table, codes + i * m, subspaces: m)
                    if dist > threshold { continue }
                    let id = ip[i]
                    guard heap.admits(dist, id) else { continue }
                    if hasDeleted && deleted.contains(id) { continue }
                    if let allow, !allow.allows(id) { continue }
                    heap.push(dist, id)
                    threshold = heap.threshold
                }
            }
        }
        ctx.heap = heap
    }

    /// out = a + s * b over `count` floats.
    @inline(__always)
    static func madd(_ a: UnsafePointer<Float>, _ s: Float, _ b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b), ro = UnsafeMutableRawPointer(out)
        let sv = SIMD8<Float>(repeating: s)
        while i + 8 <= count {
            let v = ra.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) + sv * rb.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            ro.storeBytes(of: v, toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count { out[i] = a[i] + s * b[i]; i += 1 }
    }

    /// Reads the vectors of `ctx.rerankIds[0..<b]` and pushes their exact distances into `ctx.exact`.
    private func rerankBatch(_ b: Int, source: any IVFPQVectorSource, context ctx: IVFPQSearchContext) throws {
        let d = dimension
        try ctx.rerankIds.withUnsafeBufferPointer { ids in
            try ctx.rerankVectors.withUnsafeMutableBufferPointer { v in
                try ctx.rerankFound.withUnsafeMutableBufferPointer { f in
                    try source.readVectors(UnsafeBufferPointer(rebasing: ids[0..<b]), dimension: d, into: v.baseAddress!, found: f.baseAddress!)
                    for i in 0..<b where f[i] {
                        let x = v.baseAddress! + i * d
                        if metric.normalizes { DistanceKernels.normalize(x, d) }
                        ctx.exact.push(metric.distance(ctx.query, x, dimension: d), ids[i])
                    }
                }
            }
        }
    }

    /// The exact answer over the live ids of a selective bitset.
    private func exactScan(_ bits: Bitset, k: Int, source: any IVFPQVectorSource, context ctx: IVFPQSearchContext) throws -> [Neighbor] {
        ctx.exact.reset(capacity: k)
        var b = 0
        for (w, word) in bits.words.enumerated() {
            var rest = word
            while rest != 0 {
                let id = Int64(w * 64 + rest.trailingZeroBitCount)
                rest &= rest - 1
                guard contains(id) else { continue }
                ctx.rerankIds[b] = id
                b += 1
                if b == ctx.rerankIds.count {
                    try rerankBatch(b, source: source, context: ctx)
                    b = 0
                }
            }
        }
        if b > 0 { try rerankBatch(b, source: source, context: ctx) }
        let n = ctx.exact.drainSorted()
        return (0..<n).map { Neighbor(id: ctx.exact.ids[$0], distance: ctx.exact.distances[$0]) }
    }
}

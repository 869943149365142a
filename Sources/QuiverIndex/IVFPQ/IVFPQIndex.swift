import COpenBLAS
import CQuiverKernels
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
/// - `.l2`: lists by nearest centroid; ADC distance = ||q - y||^2 + e - 2 sum_j <q_j, c_j>, where
///   e = sum_j (||c_j||^2 + 2<y_j, c_j>) = ||r^||^2 + 2<y, r^> (r^ the decoded residual) does not depend
///   on the query: it is computed when a vector is added (or decoded) and kept beside its code (4 bytes
///   per vector). A search then needs one table of <q_j, c> per query and no table per probed list
///   (FAISS's precomputed tables keep the same term per list and subspace instead: nlist * m * 256
///   floats, 25 MB at nlist 512 and m 48, whose per-list pass over memory cost more than the scan).
///   With `precomputedTableLimit` 0: no terms; tables of ||(q - y)_j - c||^2 per probed list.
/// - `.cosine`: vectors and queries are normalized, then everything is as for `.l2`; the ADC distance
///   returned without re-ranking is ||q - x^||^2 / 2, which equals 1 - cos when ||x^|| = 1. Ranking by
///   the L2 form rather than by 1 - <q, x^> is measurably better: its error for a neighbour x is
///   2 <q - x, e> + ||e||^2 (e = the PQ error), while the inner-product form's is <q, e>, and q - x is
///   short for near neighbours (exhaustive ADC recall@10 on the clustered data of IVFPQIndexTests:
///   0.38 with the inner-product form, 0.61 with this one).
/// - `.dot`: lists by largest inner product (as FAISS's IP quantizer); ADC = -<q, y> - sum_j <q_j, c_j>.
/// Re-ranked distances are exact and computed exactly as `FlatIndex` does.
///
/// ## OPQ
/// With `parameters.opq`, training learns an orthogonal rotation R of the residuals (`OPQRotation`)
/// after the coarse quantizer and before the PQ, which is trained on, and encodes, r R. Coarse
/// assignment, list bases and re-ranking are untouched; the PQ tables are built from q R and the ADC
/// terms from y R (rotations keep distances and inner products). The rotation is learned on the
/// residuals because they are what the PQ encodes; FAISS's `OPQm,IVFn,PQm` learns it on the vectors
/// and rotates them before the coarse quantizer, which gives the same lists up to k-means' randomness.
///
/// ## Memory
/// Per list, flat arrays: codes (count * m bytes), ids (count Int64) and, for L2 and cosine, the ADC
/// terms (count Float): m + 12 bytes per vector (FAISS: m + 8, plus its per-list tables). Plus the
/// coarse centroids (nlist * d floats), PQ centroids (m * 256 * d/m floats), with OPQ the rotation
/// (d * d floats) and the rotated centroids (nlist * d), and an id set (only when ids are not exactly
/// 0..<count in insertion order) and a tombstone set.
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
    /// The OPQ rotation of the residuals, when the index was trained with `parameters.opq`.
    private(set) var rotation: OPQRotation?
    /// With a rotation: the coarse centroids rotated (y R, nlist * d), for the ADC terms and per-list
    /// tables; else empty.
    private(set) var rotatedCoarse: [Float] = []

    /// The OPQ rotation R (d * d floats, row-major; a residual r is quantized as r R), or nil.
    public var opqRotation: [Float]? { rotation?.matrix }
    /// The inverted lists.
    private(set) var lists: [InvertedList]
    /// Vectors stored, tombstoned ones included (changes only in `add`).
    public private(set) var count = 0
    /// Tombstoned ids.
    private(set) var deleted = Set<Int64>()
    /// Every stored id, or nil while the ids are exactly 0..<count (then membership is a range check).
    private(set) var idSet: Set<Int64>?
    private let contexts = ContextPool { IVFPQSearchContext() }

    /// One inverted list: `ids.count` entries; entry i has id `ids[i]` and code `codes[i*m ..< (i+1)*m]`,
    /// and, when the index uses ADC terms (`usesTerms`), `terms[i]` = ||r^||^2 + 2<y, r^> (see the type's
    /// comment); otherwise `terms` is empty. Terms are derived data: not stored by the codec.
    struct InvertedList: Sendable, Equatable {
        var codes: [UInt8] = []
        var ids: [Int64] = []
        var terms: [Float] = []
    }

    /// Whether lists keep the query-independent ADC term per entry (L2 and cosine, unless
    /// `precomputedTableLimit` is 0).
    var usesTerms: Bool { metric != .dot && parameters.precomputedTableLimit > 0 }

    /// An empty, untrained index. Throws `IndexError(.invalidParameter)` on a dimension outside
    /// 1...65536 or parameters outside their documented ranges.
    public convenience init(dimension: Int, metric: Metric, parameters: IVFPQParameters) throws {
        guard (1...65_536).contains(dimension) else {
            throw IndexError(.invalidParameter, "dimension must be in 1...65536, got \(dimension)")
        }
        try parameters.validate(dimension: dimension)
        self.init(validDimension: dimension, metric: metric, parameters: parameters)
    }

    /// An empty, untrained index of a dimension and parameters already validated.
    init(validDimension dimension: Int, metric: Metric, parameters: IVFPQParameters) {
        self.dimension = dimension
        self.metric = metric
        self.parameters = parameters
        nprobe = parameters.nprobe
        rerank = parameters.rerank
        lists = [InvertedList](repeating: InvertedList(), count: parameters.nlist)
    }

    /// An index over decoded state (see `IVFPQCodec`), already validated.
    init(decoded dimension: Int, metric: Metric, parameters: IVFPQParameters, coarse: [Float], pq: ProductQuantizer,
         rotation: OPQRotation?, lists: [InvertedList], count: Int, deleted: Set<Int64>, idSet: Set<Int64>?) {
        self.dimension = dimension
        self.metric = metric
        self.parameters = parameters
        nprobe = parameters.nprobe
        rerank = parameters.rerank
        self.lists = lists
        self.count = count
        self.deleted = deleted
        self.idSet = idSet
        install(coarse: coarse, pq: pq, rotation: rotation)
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
        let stored = lists.reduce(0) { $0 + $1.codes.capacity + 8 * $1.ids.capacity + 4 * $1.terms.capacity }
        let model = 4 * (coarse.count + coarseNorms.count + (pq?.centroids.count ?? 0) * 2
                         + (rotation?.matrix.count ?? 0) + rotatedCoarse.count)
        return stored + model + 16 * ((idSet?.count ?? 0) + deleted.count)
    }

    private func install(coarse: [Float], pq: ProductQuantizer, rotation: OPQRotation?) {
        self.coarse = coarse
        self.pq = pq
        self.rotation = rotation
        rotatedCoarse = rotation?.applied(coarse, rows: parameters.nlist) ?? []
        coarseNorms = coarse.withUnsafeBufferPointer { NearestCentroid.norms($0.baseAddress!, k: parameters.nlist, d: dimension) }
        // Decoded lists come without terms.
        if usesTerms {
            for l in 0..<lists.count where lists[l].terms.count != lists[l].ids.count {
                lists[l].terms = []
                let n = lists[l].ids.count
                lists[l].codes.withUnsafeBufferPointer { appendTerms(list: l, codes: $0.baseAddress!, count: n, pq: pq) }
            }
        }
    }

    /// Appends to list `l`'s terms those of `count` codes (m bytes each) at `codes`:
    /// e = sum_j (||c_j||^2 + 2 <y_l[block j], c_j>), summed in Float as the ADC sums are.
    private func appendTerms(list l: Int, codes: UnsafePointer<UInt8>, count n: Int, pq: ProductQuantizer) {
        let m = pq.subspaces, dsub = pq.subDimension, d = dimension
        lists[l].terms.reserveCapacity(lists[l].terms.count + n)
        (rotation == nil ? coarse : rotatedCoarse).withUnsafeBufferPointer { cp in
            pq.centroids.withUnsafeBufferPointer { pc in
                pq.centroidNorms.withUnsafeBufferPointer { pn in
                    let y = cp.baseAddress! + l * d
                    for i in 0..<n {
                        var e: Float = 0
                        for j in 0..<m {
                            let c = j * 256 + Int(codes[i * m + j])
                            e += pn[c] + 2 * DistanceKernels.dot(y + j * dsub, pc.baseAddress! + c * dsub, dsub)
                        }
                        lists[l].terms.append(e)
                    }
                }
            }
        }
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
        var rotation: OPQRotation? = nil
        if let opq = parameters.opq {
            if n > 1 { openblasSingleThreaded() }
            let r = try OPQRotation.train(residuals, rows: n, dimension: d, subspaces: parameters.subspaces, parameters: opq,
                                          pqKMeans: pqParameters)
            residuals = r.applied(residuals, rows: n)
            rotation = r
        }
        let pq = try ProductQuantizer.train(Matrix(dimension: d, storage: residuals), subspaces: parameters.subspaces, parameters: pqParameters)
        install(coarse: coarse, pq: pq, rotation: rotation)
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
        let dense = try continuesDenseIDs(ids, dense: idSet == nil, count: count, stored: isStored)
        let d = dimension, m = pq.subspaces
        var residuals = batch.storage
        if metric.normalizes { Self.normalizeRows(&residuals, d) }
        let labels = subtractAssigned(&residuals, rows: n, coarse: coarse, norms: coarseNorms)
        if let rotation { residuals = rotation.applied(residuals, rows: n) }
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
        let terms = usesTerms
        codes.withUnsafeBufferPointer { c in
            for i in 0..<n {
                let l = Int(labels[i])
                lists[l].codes.append(contentsOf: UnsafeBufferPointer(start: c.baseAddress! + i * m, count: m))
                lists[l].ids.append(ids[i])
                if terms { appendTerms(list: l, codes: c.baseAddress! + i * m, count: 1, pq: pq) }
            }
        }
        count += n
    }

    // MARK: - Search

    /// Reads `parameters.nprobe` and `allowedShare` (the lists probed: `SearchParameters.probes`,
    /// from the index's `nprobe` when nil), `rerank` (nil: the index's) and `allow`; `efSearch` is
    /// ignored.
    public func search(_ query: UnsafeBufferPointer<Float>, k: Int, parameters: SearchParameters) throws -> [Neighbor] {
        try parameters.validate()
        let ctx = contexts.take()
        defer { contexts.give(ctx) }
        return try search(query, k: k, nprobe: probes(parameters), rerank: parameters.rerank, allow: parameters.allow, context: ctx)
    }

    /// The batched form, on every core (see `search(_:k:nprobe:rerank:allow:threads:)`).
    public func search(_ queries: Matrix, k: Int, parameters: SearchParameters) throws -> [[Neighbor]] {
        try parameters.validate()
        return try search(queries, k: k, nprobe: probes(parameters), rerank: parameters.rerank, allow: parameters.allow)
    }

    /// The lists a search with `parameters` probes.
    private func probes(_ parameters: SearchParameters) -> Int {
        parameters.nprobe == nil && parameters.allowedShare == nil ? nprobe : parameters.probes(nlist: nlist, default: nprobe)
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
                        let ctx = self.contexts.take()
                        defer { self.contexts.give(ctx) }
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

        // Re-ranking takes the candidates in any order (the exact heap breaks ties by id): no sort.
        let n = source == nil ? ctx.heap.drainSorted() : ctx.heap.drainUnsorted()
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
        // PQ tables are built from q R (the rotation keeps distances and inner products).
        let tq: UnsafePointer<Float>
        if let rotation {
            rotation.apply(vector: q, into: ctx.rotatedQuery)
            tq = UnsafePointer(ctx.rotatedQuery)
        } else {
            tq = q
        }
        switch metric {
        case .l2, .cosine:
            // With terms, one table for every list: -2 <q_j, c>.
            if usesTerms {
                pq.distanceTable(tq, kind: .innerProduct, into: t)
                for i in 0..<pq.subspaces * 256 { t[i] *= -2 }
            }
        case .dot:
            pq.distanceTable(tq, kind: .innerProduct, into: t)
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
        var base = ctx.coarseBase[l]
        let hasDeleted = !deleted.isEmpty
        // The table of this list.
        let table: UnsafePointer<Float>
        if metric == .dot || usesTerms {
            table = UnsafePointer(ctx.queryTable)
        } else {
            // The table holds whole distances ||(q - y)_j - c||^2: no base term.
            base = 0
            let t = ctx.listTable
            let r = ctx.residual
            // (q - y) R = q R - y R.
            let q = rotation == nil ? ctx.query : ctx.rotatedQuery
            (rotation == nil ? coarse : rotatedCoarse).withUnsafeBufferPointer { c in
                for j in 0..<d { r[j] = q[j] - c[l * d + j] }
            }
            pq.distanceTable(r, kind: .squaredL2, into: t)
            table = UnsafePointer(t)
        }
        // A local copy of the heap (raw buffers, no reference counting) for the loop; written back after.
        var heap = ctx.heap
        let withTerms = usesTerms
        list.codes.withUnsafeBufferPointer { cp in
            list.ids.withUnsafeBufferPointer { ip in
                list.terms.withUnsafeBufferPointer { tp in
                    let codes = cp.baseAddress!
                    // Without terms, a zero per entry (the branch goes the same way for the whole list).
                    let terms = withTerms ? tp.baseAddress : nil
                    var threshold = heap.threshold
                    for i in 0..<n {
                        let dist = (base + (terms?[i] ?? 0)) + ProductQuantizer.tableSum(table, codes + i * m, subspaces: m)
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
        }
        ctx.heap = heap
    }

    /// Pushes the exact distances of `ctx.rerankIds[0..<b]` into `ctx.exact`: on the source's own memory
    /// when it offers it (`withVectors`), else on copies read through `readVectors`.
    private func rerankBatch(_ b: Int, source: any IVFPQVectorSource, context ctx: IVFPQSearchContext) throws {
        let d = dimension
        try ctx.rerankIds.withUnsafeBufferPointer { ids in
            let batch = UnsafeBufferPointer(rebasing: ids[0..<b])
            let rows = ctx.rerankRows
            let direct = try source.withVectors(batch, dimension: d, rows: rows) {
                if metric == .cosine {
                    // Two passes over the batch rather than two per vector: the norms first (the rows
                    // stream from memory with nothing in between that waits on them, so the misses of
                    // consecutive rows overlap, as in a plain distance loop), then the scaled dot
                    // products on rows now in cache.
                    let norms = ctx.rerankNorms
                    Self.prefetchAhead(rows, -1, b, d)
                    for i in 0..<b {
                        Self.prefetchAhead(rows, i, b, d)
                        if let x = rows[i] { norms[i] = DistanceKernels.dot(x, x, d).squareRoot() }
                    }
                    for i in 0..<b {
                        if let x = rows[i] { ctx.exact.push(cosineDistance(ctx.query, x, norm: norms[i]), ids[i]) }
                    }
                } else {
                    Self.prefetchAhead(rows, -1, b, d)
                    for i in 0..<b {
                        Self.prefetchAhead(rows, i, b, d)
                        if let x = rows[i] { ctx.exact.push(exactDistance(ctx.query, x), ids[i]) }
                    }
                }
            }
            if direct { return }
            try ctx.rerankVectors.withUnsafeMutableBufferPointer { v in
                try ctx.rerankFound.withUnsafeMutableBufferPointer { f in
                    try source.readVectors(batch, dimension: d, into: v.baseAddress!, found: f.baseAddress!)
                    for i in 0..<b where f[i] {
                        ctx.exact.push(exactDistance(ctx.query, v.baseAddress! + i * d), ids[i])
                    }
                }
            }
        }
    }

    /// How many rows ahead re-ranking prefetches on a zero-copy source: the rows are scattered, so each
    /// one is a cache (and TLB) miss that the distance loop would wait on; with the next rows already
    /// requested, their misses overlap the current row's work. On WordNet (116,659 x 384, 179 MB of
    /// rows) re-ranking 100 candidates ran about 25% faster with 8 to 16 rows ahead than without.
    static let prefetchDistance = 12

    /// Prefetches rows `i + prefetchDistance` (or, for i = -1, the first `prefetchDistance` rows) of `b`.
    @inline(__always)
    private static func prefetchAhead(_ rows: UnsafeMutablePointer<UnsafePointer<Float>?>, _ i: Int, _ b: Int, _ d: Int) {
        let range = i < 0 ? 0..<min(prefetchDistance, b) : min(i + prefetchDistance, b)..<min(i + prefetchDistance + 1, b)
        for r in range { if let x = rows[r] { qk_prefetch(x, d * MemoryLayout<Float>.size) } }
    }

    /// The distance `FlatIndex` reports between the (normalized, for cosine) query `q` and a stored
    /// vector `x` as added, bit for bit: for cosine, FlatIndex stores x * (1 / ||x||) and computes
    /// 1 - <q, x * (1 / ||x||)>; `dotScaled` forms the same products in the same order without writing
    /// the normalized copy (one read of x for the norm, one for the dot).
    @inline(__always)
    private func exactDistance(_ q: UnsafePointer<Float>, _ x: UnsafePointer<Float>) -> Float {
        let d = dimension
        switch metric {
        case .l2: return DistanceKernels.squaredL2(q, x, d)
        case .dot: return -DistanceKernels.dot(q, x, d)
        case .cosine: return cosineDistance(q, x, norm: DistanceKernels.dot(x, x, d).squareRoot())
        }
    }

    /// `exactDistance` for cosine, given ||x|| (as `DistanceKernels.normalize` computes it).
    @inline(__always)
    private func cosineDistance(_ q: UnsafePointer<Float>, _ x: UnsafePointer<Float>, norm: Float) -> Float {
        1 - (norm > 0 ? Self.dotScaled(q, x, 1 / norm, dimension) : DistanceKernels.dot(q, x, dimension))
    }

    /// `DistanceKernels.dot(a, b')` where b' = b * s componentwise (each product rounded as the stored
    /// copy would be): bit-identical to scaling a copy of b and calling `dot` (checked by
    /// `IVFPQIndexTests.dotScaledMatchesNormalizeThenDot`), in whichever kernel variant runs.
    @inline(__always)
    static func dotScaled(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ s: Float, _ n: Int) -> Float {
        DistanceKernels.dotScaled(a, b, s, n)
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

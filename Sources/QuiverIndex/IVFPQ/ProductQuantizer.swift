import QuiverCore

/// A product quantizer (Jégou, Douze & Schmid, 2011) with 8-bit codes: a `d`-dimensional vector is
/// cut into `m` contiguous subvectors of `dsub = d / m` floats, and each subvector is replaced by the
/// index (one byte) of its nearest centroid among 256 trained for that subspace. A code is `m` bytes.
///
/// ## Layout
/// `centroids`: m * 256 * dsub floats; centroid `c` of subspace `j` starts at `(j * 256 + c) * dsub`.
/// Codes: row-major `n * m` bytes, byte `j` of a code = the centroid index of subspace `j`.
/// Distance tables: `m * 256` floats, entry `j * 256 + c` = the query subvector `j` against centroid c.
///
/// Thread-safety: an immutable value; every method may run concurrently with any other.
public struct ProductQuantizer: Sendable, Equatable {
    /// Centroids per subspace (8-bit codes).
    public static let centroidCount = 256

    /// Components of the vectors this quantizer encodes.
    public let dimension: Int
    /// Number of subspaces `m`, which is also the code size in bytes.
    public let subspaces: Int
    /// Components per subspace, `dimension / subspaces`.
    public let subDimension: Int
    /// m * 256 * dsub floats (see the type's layout).
    public let centroids: [Float]
    /// ||centroid||^2 per (subspace, centroid): m * 256 floats, the norm term of the L2 encoder and of
    /// precomputed IVF-PQ tables.
    let centroidNorms: [Float]
    /// The centroids transposed per subspace: m * dsub * 256 floats, entry (j, t, c) = component t of
    /// centroid c of subspace j, so a query table is dsub SIMD passes over 256 contiguous floats.
    let centroidsTransposed: [Float]

    /// Code size in bytes.
    public var codeSize: Int { subspaces }

    /// A quantizer over given centroids (`subspaces * 256 * dimension / subspaces` floats). Throws
    /// `IndexError(.invalidParameter)` unless `subspaces` divides `dimension` and the count matches.
    public init(dimension: Int, subspaces: Int, centroids: [Float]) throws {
        try Self.check(dimension: dimension, subspaces: subspaces)
        let dsub = dimension / subspaces
        guard centroids.count == subspaces * Self.centroidCount * dsub else {
            throw IndexError(.invalidParameter, "\(centroids.count) centroid floats; \(subspaces) x 256 x \(dsub) expected")
        }
        self.dimension = dimension
        self.subspaces = subspaces
        self.subDimension = dsub
        self.centroids = centroids
        centroidNorms = centroids.withUnsafeBufferPointer {
            NearestCentroid.norms($0.baseAddress!, k: subspaces * Self.centroidCount, d: dsub)
        }
        var transposed = [Float](repeating: 0, count: centroids.count)
        for j in 0..<subspaces {
            for c in 0..<Self.centroidCount {
                for t in 0..<dsub {
                    transposed[(j * dsub + t) * Self.centroidCount + c] = centroids[(j * Self.centroidCount + c) * dsub + t]
                }
            }
        }
        centroidsTransposed = transposed
    }

    static func check(dimension: Int, subspaces: Int) throws {
        guard dimension > 0, subspaces > 0, subspaces <= dimension, dimension % subspaces == 0 else {
            throw IndexError(.invalidParameter, "subspaces (\(subspaces)) must divide the dimension (\(dimension))")
        }
    }

    /// Trains one 256-centroid k-means per subspace on the rows of `data` (at least 256 rows; the
    /// sample is capped by `parameters.maxPointsPerCentroid * 256`). Subspaces train in parallel, one
    /// per core, each k-means on one thread; subspace `j` uses seed `parameters.seed + j`, so the result
    /// does not depend on the thread count.
    public static func train(_ data: Matrix, subspaces: Int, parameters: KMeansParameters = KMeansParameters()) throws -> ProductQuantizer {
        try train(data, subspaces: subspaces, parameters: parameters, warmStart: nil)
    }

    /// `warmStart`: a quantizer of the same shape whose centroids start each subspace's k-means.
    static func train(_ data: Matrix, subspaces: Int, parameters: KMeansParameters, warmStart: ProductQuantizer?) throws -> ProductQuantizer {
        let d = data.dimension
        try check(dimension: d, subspaces: subspaces)
        try parameters.validate()
        guard data.rows >= centroidCount else {
            throw IndexError(.invalidParameter, "product quantizer training needs at least \(centroidCount) vectors, got \(data.rows)")
        }
        let dsub = d / subspaces
        var centroids = [Float](repeating: 0, count: subspaces * centroidCount * dsub)
        let workers = min(subspaces, parameters.threads > 0 ? parameters.threads : onlineProcessorCount())
        if workers > 1 { openblasSingleThreaded() }
        var failures = [IndexError?](repeating: nil, count: subspaces)
        let initial = warmStart?.centroids ?? []
        precondition(initial.isEmpty || initial.count == centroids.count, "warm start of another shape")
        data.storage.withUnsafeBufferPointer { x in
            centroids.withUnsafeMutableBufferPointer { c in
                failures.withUnsafeMutableBufferPointer { f in
                    initial.withUnsafeBufferPointer { i0 in
                        // Workers write disjoint subspace blocks of `centroids` and slots of `failures`.
                        let start = initial.isEmpty ? nil : i0.baseAddress
                        let shared = UncheckedSendable((x.baseAddress!, c.baseAddress!, f.baseAddress!, start))
                        ParallelFor.run(subspaces, threads: workers) { j in
                            let (x, c, f, start) = shared.value
                            var p = parameters
                            p.seed = parameters.seed &+ UInt64(j)
                            p.threads = 1
                            do {
                                let r = try KMeans.train(x + j * dsub, rows: data.rows, ldx: d, dimension: dsub, k: centroidCount,
                                                         parameters: p, initialCentroids: start.map { $0 + j * centroidCount * dsub })
                                r.centroids.storage.withUnsafeBufferPointer {
                                    (c + j * centroidCount * dsub).update(from: $0.baseAddress!, count: centroidCount * dsub)
                                }
                            } catch {
                                f[j] = error as? IndexError ?? IndexError(.invalidParameter, "\(error)")
                            }
                        }
                    }
                }
            }
        }
        let failure = failures.compactMap { $0 }.first
        if let failure { throw failure }
        return try ProductQuantizer(dimension: d, subspaces: subspaces, centroids: centroids)
    }

    // MARK: - Encode, decode

    /// Codes of the rows of `data`: `data.rows * codeSize` bytes. Precondition: `data.dimension == dimension`.
    public func encode(_ data: Matrix, threads: Int = 0) -> [UInt8] {
        precondition(data.dimension == dimension, "vectors of \(data.dimension) components for a \(dimension)-d quantizer")
        var codes = [UInt8](repeating: 0, count: data.rows * subspaces)
        data.storage.withUnsafeBufferPointer { x in
            codes.withUnsafeMutableBufferPointer { c in
                encode(x.baseAddress!, rows: data.rows, into: c.baseAddress!, threads: threads)
            }
        }
        return codes
    }

    /// Encodes `n` contiguous rows at `x` into `codes` (`n * codeSize` bytes), on up to `threads`
    /// workers (0 = one per core), blocks of rows per worker, one sgemm per (block, subspace).
    public func encode(_ x: UnsafePointer<Float>, rows n: Int, into codes: UnsafeMutablePointer<UInt8>, threads: Int = 0) {
        let m = subspaces, dsub = subDimension, d = dimension, kc = Self.centroidCount
        let block = 256
        let blocks = (n + block - 1) / block
        let workers = min(max(1, threads > 0 ? threads : onlineProcessorCount()), max(1, blocks))
        if workers > 1 { openblasSingleThreaded() }
        centroids.withUnsafeBufferPointer { cp in
            centroidNorms.withUnsafeBufferPointer { np in
                // Workers write disjoint row blocks of `codes`.
                let shared = UncheckedSendable((x, codes, cp.baseAddress!, np.baseAddress!))
                ParallelFor.run(workers, threads: workers) { w in
                    let (x, codes, cents, norms) = shared.value
                    var nc = NearestCentroid(k: kc)
                    var labels = [Int32](repeating: 0, count: block)
                    labels.withUnsafeMutableBufferPointer { lb in
                        var blk = w
                        while blk < blocks {
                            let r0 = blk * block
                            let b = min(block, n - r0)
                            for j in 0..<m {
                                nc.assign(x + r0 * d + j * dsub, rows: b, ldx: d, d: dsub,
                                          centroids: cents + j * kc * dsub, norms: norms + j * kc,
                                          labels: lb.baseAddress!, distances: nil)
                                for i in 0..<b { codes[(r0 + i) * m + j] = UInt8(truncatingIfNeeded: lb[i]) }
                            }
                            blk += workers
                        }
                    }
                }
            }
        }
    }

    /// The reconstruction of `n` codes (`n * codeSize` bytes) into `out` (`n * dimension` floats).
    public func decode(_ codes: UnsafePointer<UInt8>, rows n: Int, into out: UnsafeMutablePointer<Float>) {
        let m = subspaces, dsub = subDimension, kc = Self.centroidCount
        centroids.withUnsafeBufferPointer { cp in
            for i in 0..<n {
                for j in 0..<m {
                    let c = Int(codes[i * m + j])
                    (out + i * dimension + j * dsub).update(from: cp.baseAddress! + (j * kc + c) * dsub, count: dsub)
                }
            }
        }
    }

    /// The reconstructions of `codes` (a multiple of `codeSize` bytes) as a matrix.
    public func decode(_ codes: [UInt8]) -> Matrix {
        precondition(codes.count % subspaces == 0, "\(codes.count) bytes is not a whole number of \(subspaces)-byte codes")
        let n = codes.count / subspaces
        var out = [Float](repeating: 0, count: n * dimension)
        codes.withUnsafeBufferPointer { c in
            out.withUnsafeMutableBufferPointer { o in decode(c.baseAddress!, rows: n, into: o.baseAddress!) }
        }
        return Matrix(dimension: dimension, storage: out)
    }

    // MARK: - Asymmetric distance tables

    /// The kind of table `distanceTable` fills.
    public enum TableKind: Sendable {
        /// Entry = ||q_j - c||^2: summing one entry per subspace gives ||q - decode(code)||^2.
        case squaredL2
        /// Entry = <q_j, c>: summing gives <q, decode(code)>.
        case innerProduct
    }

    /// Fills `table` (m * 256 floats, layout in the type's comment) for the query `q` (`dimension` floats).
    /// Allocation-free: the per-query hot path of asymmetric distance computation (ADC). Computed from
    /// the transposed centroids by `DistanceKernels.pqInnerProductTable` (8 or 16 centroids per SIMD
    /// operation, in the variant the CPU runs); the L2 form as
    /// ||q_j||^2 + ||c||^2 - 2 <q_j, c>.
    public func distanceTable(_ q: UnsafePointer<Float>, kind: TableKind, into table: UnsafeMutablePointer<Float>) {
        let m = subspaces, dsub = subDimension, kc = Self.centroidCount
        centroidsTransposed.withUnsafeBufferPointer { ctp in
            DistanceKernels.pqInnerProductTable(q, ctp.baseAddress!, subspaces: m, subDimension: dsub, into: table)
        }
        guard kind == .squaredL2 else { return }
        centroidNorms.withUnsafeBufferPointer { np in
            for j in 0..<m {
                let qj = q + j * dsub
                let qn = DistanceKernels.dot(qj, qj, dsub)
                let t = table + j * kc
                let n = np.baseAddress! + j * kc
                for i in 0..<kc { t[i] = max(0, qn + n[i] - 2 * t[i]) }
            }
        }
    }

    /// The ADC sum of one code against a table: sum over j of `table[j * 256 + code[j]]`. Code bytes are
    /// read 8 at a time (one load, then shifts), which halves the loads per code; four partial sums keep
    /// the additions independent.
    @inlinable @inline(__always)
    public static func tableSum(_ table: UnsafePointer<Float>, _ code: UnsafePointer<UInt8>, subspaces m: Int) -> Float {
        var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
        var j = 0
        let raw = UnsafeRawPointer(code)
        while j + 8 <= m {
            let w = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: j, as: UInt64.self))
            let t = table + (j << 8)
            s0 += t[Int(w & 0xFF)]
            s1 += t[256 + Int((w >> 8) & 0xFF)]
            s2 += t[512 + Int((w >> 16) & 0xFF)]
            s3 += t[768 + Int((w >> 24) & 0xFF)]
            s0 += t[1024 + Int((w >> 32) & 0xFF)]
            s1 += t[1280 + Int((w >> 40) & 0xFF)]
            s2 += t[1536 + Int((w >> 48) & 0xFF)]
            s3 += t[1792 + Int(w >> 56)]
            j += 8
        }
        while j < m {
            s0 += table[(j << 8) | Int(code[j])]
            j += 1
        }
        return (s0 + s1) + (s2 + s3)
    }
}

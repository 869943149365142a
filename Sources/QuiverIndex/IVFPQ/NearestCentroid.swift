import COpenBLAS
import QuiverCore

/// Batched nearest-centroid assignment on `cblas_sgemm`, the inner loop of k-means, of coarse
/// assignment and of PQ encoding.
///
/// For a block of rows X (b, d) and centroids C (k, d) it computes G = -2 X C^T with one sgemm, then
/// for each row the argmin over j of `G[i, j] + ||c_j||^2` (the row's own ||x||^2 does not change the
/// argmin; it is added only when distances are asked for). Passing zero norms turns the argmin into an
/// argmax of the inner product (the coarse quantizer of the `.dot` metric).
///
/// Rows may be strided (`ldx >= d`), so a PQ subspace (columns j*dsub ..< (j+1)*dsub of a row-major
/// matrix) is assigned in place without copying. Ties go to the smallest centroid index.
///
/// Thread-safety: a value holds one scratch block and must be used by one thread at a time.
struct NearestCentroid {
    /// Rows per sgemm block: the block's b x k scores stay near 1 MB so they live in L2/L3 cache.
    let blockRows: Int
    let k: Int
    // b x k scores of the current block.
    private var scores: [Float]

    init(k: Int) {
        self.k = k
        blockRows = max(16, min(1024, (1 << 18) / max(1, k)))
        scores = [Float](repeating: 0, count: blockRows * k)
    }

    /// Assigns rows `0..<n` of `x` (row i at `x + i * ldx`, `d` floats) to their nearest centroid.
    /// `centroids`: (k, d) contiguous; `norms`: k values, ||c_j||^2 (or zeros for inner product).
    /// Writes `labels[i]`, and when `distances` is non-nil `distances[i] = max(0, ||x_i||^2 + min_j(...))`
    /// (the squared L2 distance for real norms).
    mutating func assign(_ x: UnsafePointer<Float>, rows n: Int, ldx: Int, d: Int,
                         centroids: UnsafePointer<Float>, norms: UnsafePointer<Float>,
                         labels: UnsafeMutablePointer<Int32>, distances: UnsafeMutablePointer<Float>?) {
        let k = self.k
        var start = 0
        scores.withUnsafeMutableBufferPointer { sp in
            let s = sp.baseAddress!
            while start < n {
                let b = min(blockRows, n - start)
                // s (b, k) = -2 * X (b, d) * C^T (d, k)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(b), Int32(k), Int32(d),
                            -2, x + start * ldx, Int32(ldx), centroids, Int32(d), 0, s, Int32(k))
                for i in 0..<b {
                    let (best, bestJ) = Self.argmin(s + i * k, norms, k)
                    labels[start + i] = Int32(bestJ)
                    if let distances {
                        let xi = x + (start + i) * ldx
                        distances[start + i] = max(0, DistanceKernels.dot(xi, xi, d) + best)
                    }
                }
                start += b
            }
        }
    }

    /// The smallest `row[j] + norms[j]` over j in 0..<k and its first index: 8 lanes, each keeping its
    /// first minimum, then the smallest index among the lanes that hold the overall minimum (so the same
    /// answer as the plain loop, which `NearestCentroid`'s test checks).
    @inline(__always)
    static func argmin(_ row: UnsafePointer<Float>, _ norms: UnsafePointer<Float>, _ k: Int) -> (Float, Int) {
        var j = 0
        var best: Float = .infinity
        var bestJ = 0
        if k >= 8 {
            let r = UnsafeRawPointer(row), nr = UnsafeRawPointer(norms)
            var bestV = SIMD8<Float>(repeating: .infinity)
            var bestI = SIMD8<Int32>(repeating: 0)
            var idx = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
            let step = SIMD8<Int32>(repeating: 8)
            while j + 8 <= k {
                let v = r.loadUnaligned(fromByteOffset: 4 * j, as: SIMD8<Float>.self) + nr.loadUnaligned(fromByteOffset: 4 * j, as: SIMD8<Float>.self)
                let lt = v .< bestV
                bestV.replace(with: v, where: lt)
                bestI.replace(with: idx, where: lt)
                idx &+= step
                j += 8
            }
            best = bestV.min()
            bestJ = Int.max
            for lane in 0..<8 where bestV[lane] == best { bestJ = min(bestJ, Int(bestI[lane])) }
            if bestJ == Int.max { bestJ = 0 }  // all lanes NaN: keep index 0
        }
        while j < k {
            let v = row[j] + norms[j]
            if v < best { best = v; bestJ = j }
            j += 1
        }
        return (best, bestJ)
    }

    /// Squared norms of `k` contiguous `d`-float rows.
    static func norms(_ c: UnsafePointer<Float>, k: Int, d: Int) -> [Float] {
        (0..<k).map { DistanceKernels.dot(c + $0 * d, c + $0 * d, d) }
    }

    /// `assign` over `n` rows on up to `threads` workers (0 = one per core), each with its own scratch
    /// block; results do not depend on the thread count (blocks are fixed, rows independent).
    ///
    /// OpenBLAS: with more than one worker this sets OpenBLAS to one thread (process-wide, as the
    /// encoder does), because two workers each running a single-threaded sgemm beat one sgemm split in
    /// two, and nested thread pools would oversubscribe the cores.
    static func assignParallel(_ x: UnsafePointer<Float>, rows n: Int, ldx: Int, d: Int,
                               centroids: UnsafePointer<Float>, k: Int, norms: UnsafePointer<Float>,
                               labels: UnsafeMutablePointer<Int32>, distances: UnsafeMutablePointer<Float>?,
                               threads: Int) {
        let probe = NearestCentroid(k: k)
        let blocks = (n + probe.blockRows - 1) / probe.blockRows
        let workers = min(max(1, threads > 0 ? threads : onlineProcessorCount()), blocks)
        if workers <= 1 {
            var nc = probe
            nc.assign(x, rows: n, ldx: ldx, d: d, centroids: centroids, norms: norms, labels: labels, distances: distances)
            return
        }
        openblasSingleThreaded()
        // Workers write disjoint ranges of labels/distances and only read x, centroids and norms.
        let shared = UncheckedSendable((x, centroids, norms, labels, distances))
        let rowsPerBlock = probe.blockRows
        ParallelFor.run(workers, threads: workers) { w in
            let (x, centroids, norms, labels, distances) = shared.value
            var nc = NearestCentroid(k: k)
            var blk = w
            while blk < blocks {
                let r0 = blk * rowsPerBlock
                let b = min(rowsPerBlock, n - r0)
                nc.assign(x + r0 * ldx, rows: b, ldx: ldx, d: d, centroids: centroids, norms: norms,
                          labels: labels + r0, distances: distances.map { $0 + r0 })
                blk += workers
            }
        }
    }
}

/// Sets OpenBLAS to one thread, process-wide (the encoder does the same when it runs its own workers):
/// the index layer parallelizes over row blocks or subspaces itself, and an sgemm split again inside
/// each worker would oversubscribe the cores.
func openblasSingleThreaded() {
    openblas_set_num_threads(1)
}

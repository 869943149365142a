import QuiverCore

/// The parameters of `KMeans.train` (FAISS's `ClusteringParameters`, with the same defaults where
/// they exist).
public struct KMeansParameters: Sendable, Equatable {
    /// How the first centroids are chosen.
    public enum Initialization: Sendable, Equatable {
        /// k-means++ (Arthur & Vassilvitskii, 2007): each next centroid is a training point drawn with
        /// probability proportional to its squared distance to the nearest centroid so far.
        /// O(k * n * d), run on the (capped) training sample.
        case kMeansPlusPlus
        /// k distinct training points drawn uniformly (FAISS's default): O(k).
        case randomSample
    }

    /// Maximum Lloyd iterations (assignment + update).
    public var iterations: Int
    /// Stop early when an iteration lowers the mean squared distance by less than this fraction.
    public var tolerance: Double
    /// Training-sample cap: at most `maxPointsPerCentroid * k` points are used (a seeded random subset).
    public var maxPointsPerCentroid: Int
    /// How the first centroids are chosen (default k-means++).
    public var initialization: Initialization
    /// Seed of the sampling and initialization: same input, parameters and seed give the same centroids
    /// whatever the thread count.
    public var seed: UInt64
    /// Workers of the assignment step: 0 = one per core.
    public var threads: Int

    /// The defaults: 25 iterations, tolerance 1e-4, 256 points per centroid, k-means++, all cores.
    public init(iterations: Int = 25, tolerance: Double = 1e-4, maxPointsPerCentroid: Int = 256,
                initialization: Initialization = .kMeansPlusPlus, seed: UInt64 = 0x4B4D_4541_4E53, threads: Int = 0) {
        self.iterations = iterations
        self.tolerance = tolerance
        self.maxPointsPerCentroid = maxPointsPerCentroid
        self.initialization = initialization
        self.seed = seed
        self.threads = threads
    }

    func validate() throws {
        guard (1...10_000).contains(iterations) else { throw IndexError(.invalidParameter, "iterations must be in 1...10000, got \(iterations)") }
        guard tolerance >= 0, tolerance.isFinite else { throw IndexError(.invalidParameter, "tolerance must be finite and >= 0") }
        guard maxPointsPerCentroid >= 1 else { throw IndexError(.invalidParameter, "maxPointsPerCentroid must be positive") }
        guard threads >= 0 else { throw IndexError(.invalidParameter, "threads must not be negative") }
    }
}

/// What `KMeans.train` found.
public struct KMeansResult: Sendable {
    /// (k, d) centroids, row-major.
    public let centroids: Matrix
    /// Mean squared L2 distance of the training points to their nearest centroid, after the last
    /// assignment (the quantity Lloyd iterations lower).
    public let meanSquaredError: Double
    /// Lloyd iterations run (fewer than the maximum when the tolerance stopped them).
    public let iterations: Int
    /// Training points used (after the sample cap).
    public let trainingPoints: Int
    /// Empty clusters repaired by splitting the largest one, over all iterations.
    public let emptyClustersRepaired: Int
}

/// Lloyd's k-means in L2 with batched assignment on `cblas_sgemm` (see `NearestCentroid`).
///
/// Steps: cap the sample (`maxPointsPerCentroid * k` seeded random points), initialize (k-means++ or a
/// random sample), then iterate: assign every point on all cores, recompute each centroid as the mean
/// of its points (accumulated in Double), repair empty clusters by splitting the largest cluster in two
/// (FAISS's rule: both halves move by a relative 1/1024 in opposite directions), stop after
/// `iterations` or when the mean squared error improves by less than `tolerance`.
///
/// With more than one worker, the assignment sets OpenBLAS to one thread, process-wide (see
/// `NearestCentroid.assignParallel`).
///
/// Thread-safety: `train` is a pure function of its arguments and may run concurrently with anything.
public enum KMeans {
    /// Trains `k` centroids on the rows of `data`. Throws `IndexError(.invalidParameter)` when `k < 1`,
    /// when there are fewer than `k` points, or on invalid parameters.
    public static func train(_ data: Matrix, k: Int, parameters: KMeansParameters = KMeansParameters()) throws -> KMeansResult {
        try data.storage.withUnsafeBufferPointer { p in
            try train(p.baseAddress!, rows: data.rows, ldx: data.dimension, dimension: data.dimension, k: k, parameters: parameters)
        }
    }

    /// Pointer form: rows `0..<rows` at `x + i * ldx`, `dimension` floats each (`ldx >= dimension`, so a
    /// column block of a wider matrix, such as a PQ subspace, needs no copy by the caller).
    public static func train(_ x: UnsafePointer<Float>, rows: Int, ldx: Int, dimension d: Int, k: Int,
                             parameters: KMeansParameters = KMeansParameters()) throws -> KMeansResult {
        try train(x, rows: rows, ldx: ldx, dimension: d, k: k, parameters: parameters, initialCentroids: nil)
    }

    /// `initialCentroids` (k * d floats), when given, replace the initialization (a warm start, as OPQ's
    /// alternations use: the rotation moves the data a little, so the previous centroids are a good start).
    static func train(_ x: UnsafePointer<Float>, rows: Int, ldx: Int, dimension d: Int, k: Int,
                      parameters: KMeansParameters, initialCentroids: UnsafePointer<Float>?) throws -> KMeansResult {
        try parameters.validate()
        guard d > 0, ldx >= d else { throw IndexError(.invalidParameter, "dimension \(d) with row stride \(ldx)") }
        guard k >= 1 else { throw IndexError(.invalidParameter, "k must be positive, got \(k)") }
        guard rows >= k else { throw IndexError(.invalidParameter, "k-means with k = \(k) needs at least \(k) points, got \(rows)") }
        var rng = SplitMix64(state: parameters.seed)

        // Sample: a seeded partial Fisher-Yates shuffle picks the rows; copied contiguous.
        let (cap, overflow) = parameters.maxPointsPerCentroid.multipliedReportingOverflow(by: k)
        let n = overflow ? rows : min(rows, max(k, cap))
        var sample = [Float](repeating: 0, count: n * d)
        if n == rows {
            sample.withUnsafeMutableBufferPointer { s in
                for i in 0..<n { (s.baseAddress! + i * d).update(from: x + i * ldx, count: d) }
            }
        } else {
            var perm = Array(0..<rows)
            for i in 0..<n {
                let j = i + Int(rng.next() % UInt64(rows - i))
                perm.swapAt(i, j)
            }
            // Sorted, so the sample keeps the input order (and reads memory forward).
            let picked = perm[0..<n].sorted()
            sample.withUnsafeMutableBufferPointer { s in
                for (i, r) in picked.enumerated() { (s.baseAddress! + i * d).update(from: x + r * ldx, count: d) }
            }
        }

        var centroids = [Float](repeating: 0, count: k * d)
        sample.withUnsafeBufferPointer { s in
            centroids.withUnsafeMutableBufferPointer { c in
                if let initialCentroids {
                    c.baseAddress!.update(from: initialCentroids, count: k * d)
                    return
                }
                switch parameters.initialization {
                case .randomSample:
                    var perm = Array(0..<n)
                    for i in 0..<k {
                        perm.swapAt(i, i + Int(rng.next() % UInt64(n - i)))
                        (c.baseAddress! + i * d).update(from: s.baseAddress! + perm[i] * d, count: d)
                    }
                case .kMeansPlusPlus:
                    kMeansPlusPlus(s.baseAddress!, n: n, d: d, k: k, into: c.baseAddress!, rng: &rng, threads: parameters.threads)
                }
            }
        }

        var labels = [Int32](repeating: 0, count: n)
        var dist = [Float](repeating: 0, count: n)
        var sums = [Double](repeating: 0, count: k * d)
        var counts = [Int](repeating: 0, count: k)
        var previous = Double.infinity
        var mse = 0.0
        var iterationsRun = 0
        var repaired = 0
        for _ in 0..<parameters.iterations {
            iterationsRun += 1
            let norms = centroids.withUnsafeBufferPointer { NearestCentroid.norms($0.baseAddress!, k: k, d: d) }
            sample.withUnsafeBufferPointer { s in
                centroids.withUnsafeBufferPointer { c in
                    norms.withUnsafeBufferPointer { nm in
                        labels.withUnsafeMutableBufferPointer { lb in
                            dist.withUnsafeMutableBufferPointer { ds in
                                NearestCentroid.assignParallel(s.baseAddress!, rows: n, ldx: d, d: d, centroids: c.baseAddress!, k: k,
                                                               norms: nm.baseAddress!, labels: lb.baseAddress!, distances: ds.baseAddress!,
                                                               threads: parameters.threads)
                            }
                        }
                    }
                }
            }
            mse = dist.reduce(0.0) { $0 + Double($1) } / Double(n)

            // Update: mean of each cluster.
            for i in 0..<sums.count { sums[i] = 0 }
            for i in 0..<k { counts[i] = 0 }
            sample.withUnsafeBufferPointer { s in
                sums.withUnsafeMutableBufferPointer { sm in
                    for i in 0..<n {
                        let c = Int(labels[i])
                        counts[c] += 1
                        let row = s.baseAddress! + i * d
                        let acc = sm.baseAddress! + c * d
                        for j in 0..<d { acc[j] += Double(row[j]) }
                    }
                }
            }
            for c in 0..<k where counts[c] > 0 {
                let inv = 1 / Double(counts[c])
                for j in 0..<d { centroids[c * d + j] = Float(sums[c * d + j] * inv) }
            }
            repaired += splitEmptyClusters(&centroids, counts: &counts, k: k, d: d, rng: &rng)

            if previous.isFinite && previous - mse <= parameters.tolerance * previous { break }
            previous = mse
        }
        return KMeansResult(centroids: Matrix(dimension: d, storage: centroids), meanSquaredError: mse,
                            iterations: iterationsRun, trainingPoints: n, emptyClustersRepaired: repaired)
    }

    /// Gives every empty cluster half of the largest one (chosen with probability proportional to its
    /// size beyond 1, as FAISS does): the two centroids move apart by a relative 1/1024, in opposite
    /// directions per component. Returns the number of clusters repaired.
    static func splitEmptyClusters(_ centroids: inout [Float], counts: inout [Int], k: Int, d: Int, rng: inout SplitMix64) -> Int {
        var repaired = 0
        let eps: Float = 1.0 / 1024
        for empty in 0..<k where counts[empty] == 0 {
            let total = counts.reduce(0) { $0 + max(0, $1 - 1) }
            guard total > 0 else { break }  // every cluster holds <= 1 point: nothing to split
            var r = Int(rng.next() % UInt64(total))
            var big = 0
            for c in 0..<k {
                let w = max(0, counts[c] - 1)
                if r < w { big = c; break }
                r -= w
            }
            for j in 0..<d {
                let v = centroids[big * d + j]
                let sign: Float = j % 2 == 0 ? 1 : -1
                centroids[empty * d + j] = v * (1 + sign * eps)
                centroids[big * d + j] = v * (1 - sign * eps)
            }
            counts[empty] = counts[big] / 2
            counts[big] -= counts[empty]
            repaired += 1
        }
        return repaired
    }

    /// k-means++ seeding over the n rows of `s` (contiguous), writing k centroids to `out`.
    /// `minDist[i]` is point i's squared distance to the nearest centroid so far; each step draws the
    /// next centroid proportionally to it and updates it on all cores. When every point already sits
    /// on a centroid (fewer distinct points than k), the draw falls back to uniform.
    static func kMeansPlusPlus(_ s: UnsafePointer<Float>, n: Int, d: Int, k: Int, into out: UnsafeMutablePointer<Float>,
                               rng: inout SplitMix64, threads: Int) {
        var minDist = [Float](repeating: .infinity, count: n)
        var next = Int(rng.next() % UInt64(n))
        let workers = min(max(1, threads > 0 ? threads : onlineProcessorCount()), max(1, n / 4096))
        for c in 0..<k {
            let center = out + c * d
            center.update(from: s + next * d, count: d)
            if c == k - 1 { break }
            minDist.withUnsafeMutableBufferPointer { md in
                // Workers update disjoint strided rows of minDist; the total is summed afterwards in
                // row order so that the draw does not depend on the thread count.
                let shared = UncheckedSendable((md.baseAddress!, UnsafePointer(center)))
                ParallelFor.run(workers, threads: workers) { w in
                    let (md, center) = shared.value
                    var i = w
                    while i < n {
                        let dd = DistanceKernels.squaredL2(s + i * d, center, d)
                        if dd < md[i] { md[i] = dd }
                        i += workers
                    }
                }
            }
            var total = 0.0
            for v in minDist { total += Double(v) }
            if total > 0 {
                var r = Double(rng.next() >> 11) * 0x1.0p-53 * total
                next = n - 1
                for i in 0..<n {
                    r -= Double(minDist[i])
                    if r < 0 { next = i; break }
                }
            } else {
                next = Int(rng.next() % UInt64(n))
            }
        }
    }
}

import QuiverCore
import Testing
@testable import QuiverIndex

struct KMeansTests {
    /// Well-separated blobs: k-means with k = blobs finds one centroid per blob (each near its blob's
    /// mean), and the error is the blob noise, far below the spread of the centres.
    /// (A random-sample initialization may put two seeds in one blob and stay in that local optimum,
    /// which is why k-means++ is the default.)
    @Test func findsSeparatedClusters() throws {
        let k = 8, d = 16, perBlob = 200
        var rng = SplitMix64(state: 3)
        var centres = [Float]()
        for _ in 0..<(k * d) { centres.append(Float(rng.next() % 1000) / 10) }  // 0..<100
        var data = [Float]()
        for i in 0..<(k * perBlob) {
            let c = i % k
            for j in 0..<d { data.append(centres[c * d + j] + Float(rng.nextUnitInterval() - 0.5)) }
        }
        var p = KMeansParameters(initialization: .kMeansPlusPlus, seed: 7)
        p.iterations = 50
        let result = try KMeans.train(Matrix(dimension: d, storage: data), k: k, parameters: p)
        // Noise is uniform in [-0.5, 0.5): per-component variance 1/12, so MSE ~ d/12.
        #expect(result.meanSquaredError < Double(d) / 12 * 1.2)
        for c in 0..<k {
            let truth = Array(centres[c * d ..< (c + 1) * d])
            let best = (0..<k).map { j in zip(truth, result.centroids[row: j]).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }.min()!
            #expect(best < 0.05, "blob \(c) has no centroid nearby (\(best))")
        }
    }

    /// Same seed, same input: same centroids, whatever the thread count.
    @Test func deterministicAcrossThreads() throws {
        let data = TestData.clustered(n: 3000, dimension: 12, seed: 5)
        let one = try KMeans.train(data, k: 40, parameters: KMeansParameters(seed: 9, threads: 1))
        let two = try KMeans.train(data, k: 40, parameters: KMeansParameters(seed: 9, threads: 2))
        #expect(one.centroids == two.centroids)
        let other = try KMeans.train(data, k: 40, parameters: KMeansParameters(seed: 10, threads: 2))
        #expect(other.centroids != one.centroids)
    }

    /// The sample cap bounds the points used; more centroids lower the error.
    @Test func sampleCapAndErrorDecreasesWithK() throws {
        let data = TestData.clustered(n: 5000, dimension: 8, clusters: 64, seed: 8)
        let small = try KMeans.train(data, k: 8, parameters: KMeansParameters(maxPointsPerCentroid: 100))
        #expect(small.trainingPoints == 800)
        let big = try KMeans.train(data, k: 64, parameters: KMeansParameters(maxPointsPerCentroid: 100))
        #expect(big.trainingPoints == 5000)
        #expect(big.meanSquaredError < small.meanSquaredError * 0.8)
    }

    /// Duplicate points and k close to n leave clusters empty: they are split, not left at stale places,
    /// and no centroid is NaN.
    @Test func emptyClustersAreRepaired() throws {
        // 300 points on 10 distinct locations, 300 centroids requested from a random initialization
        // that picks many duplicates.
        var data = [Float]()
        for i in 0..<300 { data += [Float(i % 10), Float((i % 10) * 2)] }
        let r = try KMeans.train(Matrix(dimension: 2, storage: data), k: 20,
                                 parameters: KMeansParameters(iterations: 5, initialization: .randomSample, seed: 1))
        #expect(r.emptyClustersRepaired > 0)
        #expect(r.centroids.storage.allSatisfy { $0.isFinite })
        #expect(r.meanSquaredError < 1e-3)
    }

    @Test func rejectsTooFewPoints() {
        #expect(throws: IndexError.self) { try KMeans.train(Matrix(dimension: 2, rows: [[0, 0], [1, 1]]), k: 3) }
        #expect(throws: IndexError.self) { try KMeans.train(Matrix(dimension: 2, rows: [[0, 0]]), k: 0) }
    }

    /// The sgemm assignment agrees with a brute-force argmin (scalar kernels).
    @Test func assignmentMatchesBruteForce() {
        let x = TestData.clustered(n: 1500, dimension: 20, seed: 2)
        let c = TestData.clustered(n: 77, dimension: 20, seed: 4)
        var labels = [Int32](repeating: -1, count: x.rows)
        var dist = [Float](repeating: -1, count: x.rows)
        let norms = c.storage.withUnsafeBufferPointer { NearestCentroid.norms($0.baseAddress!, k: 77, d: 20) }
        x.storage.withUnsafeBufferPointer { xp in
            c.storage.withUnsafeBufferPointer { cp in
                NearestCentroid.assignParallel(xp.baseAddress!, rows: x.rows, ldx: 20, d: 20, centroids: cp.baseAddress!, k: 77,
                                               norms: norms, labels: &labels, distances: &dist, threads: 2)
            }
        }
        var mismatches = 0
        for i in 0..<x.rows {
            let all = (0..<77).map { j in x.withRow(i) { a in c.withRow(j) { b in DistanceKernels.scalarSquaredL2(a, b, 20) } } }
            let best = all.min()!
            // Rounding may flip near-ties; the chosen centroid must be within rounding of the best.
            if all[Int(labels[i])] > best * 1.0001 + 1e-4 { mismatches += 1 }
            #expect(abs(dist[i] - best) <= 1e-3 * max(1, best))
        }
        #expect(mismatches == 0)
    }

    /// The SIMD argmin equals the plain first-minimum loop, ties and tails included.
    @Test func simdArgminMatchesLoop() {
        var rng = SplitMix64(state: 12)
        for k in [1, 7, 8, 9, 16, 31, 256, 1000] {
            for _ in 0..<50 {
                // Few distinct values, so ties are common.
                let row = (0..<k).map { _ in Float(rng.next() % 5) }
                let norms = (0..<k).map { _ in Float(rng.next() % 3) }
                var best: Float = .infinity, bestJ = 0
                for j in 0..<k where row[j] + norms[j] < best { best = row[j] + norms[j]; bestJ = j }
                let got = row.withUnsafeBufferPointer { r in norms.withUnsafeBufferPointer { NearestCentroid.argmin(r.baseAddress!, $0.baseAddress!, k) } }
                #expect(got.0 == best && got.1 == bestJ, "k = \(k)")
            }
        }
    }
}

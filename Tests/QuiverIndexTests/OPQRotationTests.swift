import Foundation
import QuiverCore
import Testing
@testable import QuiverIndex

struct OPQRotationTests {
    /// Correlated data whose variance is spread unevenly over the PQ blocks: latent coordinates of
    /// decreasing scale (scale 1 / (k + 1)) mixed by a random dense matrix, so that every coordinate
    /// carries a bit of every latent one; the case OPQ is for.
    static func correlated(n: Int, dimension d: Int, seed: UInt64) -> Matrix {
        var rng = SplitMix64(state: seed)
        func gaussian() -> Float {
            let u1 = rng.nextUnitInterval(), u2 = rng.nextUnitInterval()
            return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
        }
        let mix = (0..<d * d).map { _ in gaussian() / Float(d).squareRoot() }
        var out = [Float](repeating: 0, count: n * d)
        var z = [Float](repeating: 0, count: d)
        for i in 0..<n {
            for k in 0..<d { z[k] = gaussian() / Float(k + 1) }
            for j in 0..<d {
                var s: Float = 0
                for k in 0..<d { s += z[k] * mix[k * d + j] }
                out[i * d + j] = s
            }
        }
        return Matrix(dimension: d, storage: out)
    }

    static func meanSquaredError(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) } / Double(a.count)
    }

    /// The learned R is orthogonal, and the PQ of x R reconstructs x (after rotating back) with no more
    /// error than a PQ of x trained with the same k-means, on correlated data.
    @Test func rotationIsOrthogonalAndLowersTheError() throws {
        let d = 32, m = 8, n = 3000
        let data = Self.correlated(n: n, dimension: d, seed: 5)
        let kmeans = KMeansParameters(iterations: 20, initialization: .randomSample)
        let r = try OPQRotation.train(data.storage, rows: n, dimension: d, subspaces: m, parameters: OPQParameters(iterations: 8),
                                      pqKMeans: kmeans)
        #expect(r.orthogonalityError < 1e-4)

        let plain = try ProductQuantizer.train(data, subspaces: m, parameters: kmeans)
        let plainError = Self.meanSquaredError(plain.decode(plain.encode(data)).storage, data.storage)
        let rotated = Matrix(dimension: d, storage: r.applied(data.storage, rows: n))
        let pq = try ProductQuantizer.train(rotated, subspaces: m, parameters: kmeans)
        // ||x R - y|| = ||x - y R^T||: the error can be measured in the rotated space.
        let opqError = Self.meanSquaredError(pq.decode(pq.encode(rotated)).storage, rotated.storage)
        print("PQ error \(plainError), OPQ error \(opqError)")
        #expect(opqError <= plainError)
    }

    /// The Procrustes step recovers a known rotation: for Y = X R0, argmin ||X R - Y|| is R0.
    @Test func procrustesRecoversARotation() throws {
        let d = 12, n = 200
        let x = Self.correlated(n: n, dimension: d, seed: 9).storage
        // R0: a rotation learned on other data, so an arbitrary orthogonal matrix.
        let r0 = try OPQRotation.procrustes(Self.correlated(n: n, dimension: d, seed: 10).storage, x, rows: n, dimension: d)
        let y = r0.applied(x, rows: n)
        let r = try OPQRotation.procrustes(x, y, rows: n, dimension: d)
        #expect(zip(r.matrix, r0.matrix).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    static func build(_ data: Matrix, metric: Metric, ids: [Int64]) throws -> IVFPQIndex {
        let parameters = IVFPQParameters(nlist: 16, subspaces: 8, nprobe: 4, rerank: 40, opq: OPQParameters(iterations: 4))
        let index = try IVFPQIndex(dimension: data.dimension, metric: metric, parameters: parameters)
        try index.train(data)
        try index.add(data, ids: ids)
        index.vectorSource = MatrixVectorSource(data, ids: ids)
        return index
    }

    /// IVF-PQ with OPQ, every list probed and every vector re-ranked, is exact: the flat index's
    /// answers, for every metric; without re-ranking it still finds most of them.
    @Test(arguments: Metric.allCases)
    func fullProbeAndRerankEqualsFlat(metric: Metric) throws {
        let all = TestData.clustered(n: 3050, dimension: 32, seed: 41)
        let data = Matrix(dimension: 32, storage: Array(all.storage[0 ..< 3000 * 32]))
        let queries = Matrix(dimension: 32, storage: Array(all.storage[(3000 * 32)...]))
        let ids = (0..<3000).map { Int64($0) * 7 + 5 }
        let index = try Self.build(data, metric: metric, ids: ids)
        #expect(index.opqRotation != nil)
        let flat = try FlatIndex(dimension: 32, metric: metric)
        try flat.add(data, ids: ids)
        let want = try flat.search(queries, k: 10, allow: nil)
        #expect(try index.search(queries, k: 10, nprobe: 16, rerank: 3000, allow: nil) == want)
        let adc = try index.search(queries, k: 10, nprobe: 16, rerank: 0, allow: nil)
        let r = TestData.recall(adc, want.map { $0.map(\.id) }, k: 10)
        print("OPQ ADC-only recall \(metric): \(r)")
        #expect(r > 0.5)
    }

    /// The rotation goes through the codec: same results, same bytes on re-encoding, same matrix; the
    /// per-list tables (no ADC terms) give the same neighbours as the terms.
    @Test(arguments: [Metric.l2, .cosine, .dot])
    func codecRoundTrip(metric: Metric) throws {
        let data = Self.correlated(n: 1500, dimension: 16, seed: 13)
        let queries = Matrix(dimension: 16, storage: Array(Self.correlated(n: 20, dimension: 16, seed: 14).storage))
        let parameters = IVFPQParameters(nlist: 8, subspaces: 4, nprobe: 3, rerank: 0, opq: OPQParameters(iterations: 3))
        let index = try IVFPQIndex(dimension: 16, metric: metric, parameters: parameters)
        try index.train(data)
        try index.add(data, ids: (0..<1500).map { Int64($0) })
        index.markDeleted(7)
        let bytes = try IVFPQCodec.encode(index)
        let loaded = try IVFPQCodec.decode(bytes)
        #expect(loaded.opqRotation == index.opqRotation && loaded.parameters.opq != nil)
        #expect(try loaded.search(queries, k: 10, allow: nil) == index.search(queries, k: 10, allow: nil))
        #expect(try IVFPQCodec.encode(loaded) == bytes)

        // The rotation section is the last one; a non-orthogonal matrix with valid checksums is refused.
        let l = IVFPQCodec.layout(dimension: 16, nlist: 8, m: 4, count: 1500, deleted: 1, rotation: true)!
        #expect(l.total == bytes.count)
        var damaged = bytes
        let entry = l.offsets[6]
        withUnsafeBytes(of: Float(2).bitPattern.littleEndian) { for i in 0..<4 { damaged[entry + i] = $0[i] } }
        #expect(throws: IndexError.self) { try IVFPQCodec.decode(damaged, verify: .structure) }
        #expect(throws: IndexError.self) { try IVFPQCodec.decode(damaged) }

        // Without the per-vector ADC terms (per-list residual tables), the same neighbours.
        var noTerms = parameters
        noTerms.precomputedTableLimit = 0
        let plain = try IVFPQIndex(dimension: 16, metric: metric, parameters: noTerms)
        try plain.train(data)
        try plain.add(data, ids: (0..<1500).map { Int64($0) })
        let a = try plain.search(queries, k: 10, allow: nil), b = try index.search(queries, k: 10, allow: nil)
        var same = 0
        for (x, y) in zip(a, b) { same += Set(x.map(\.id)).intersection(y.map(\.id)).count }
        #expect(same >= 20 * 10 * 9 / 10)
    }
}

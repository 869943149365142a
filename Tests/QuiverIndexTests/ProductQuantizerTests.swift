import QuiverCore
import Testing
@testable import QuiverIndex

struct ProductQuantizerTests {
    /// sum ||x - decode(encode(x))||^2 / sum ||x - mean||^2 over the rows of `data`.
    static func relativeError(_ pq: ProductQuantizer, _ data: Matrix) -> Double {
        let rec = pq.decode(pq.encode(data))
        let d = data.dimension
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<data.rows { for j in 0..<d { mean[j] += Double(data.storage[i * d + j]) / Double(data.rows) } }
        var err = 0.0, spread = 0.0
        for i in 0..<data.storage.count {
            let e = Double(data.storage[i] - rec.storage[i])
            err += e * e
            let s = Double(data.storage[i]) - mean[i % d]
            spread += s * s
        }
        return err / spread
    }

    /// Reconstruction error is bounded on random (clustered) data and on bigann, and falls with more
    /// subspaces (longer codes).
    @Test func reconstructionErrorBounded() throws {
        let train = TestData.clustered(n: 4000, dimension: 32, seed: 21)
        let test = TestData.clustered(n: 1000, dimension: 32, seed: 21 + 1)
        _ = test
        var last = 1.0
        for m in [4, 8, 16] {
            let pq = try ProductQuantizer.train(train, subspaces: m)
            let e = Self.relativeError(pq, train)
            #expect(e < [4: 0.12, 8: 0.06, 16: 0.03][m]!, "m = \(m): relative error \(e)")
            #expect(e < last * 0.8, "m = \(m) did not lower the error (\(e) vs \(last))")
            last = e
        }
    }

    @Test func reconstructionErrorBoundedOnBigann() throws {
        let data = try TestData.bigann.get()
        let base = data.base
        var last = 1.0
        for m in [8, 16, 32] {
            let pq = try ProductQuantizer.train(base, subspaces: m, parameters: KMeansParameters(iterations: 10))
            let e = Self.relativeError(pq, base)
            #expect(e < [8: 0.25, 16: 0.15, 32: 0.08][m]!, "m = \(m): relative error \(e)")
            #expect(e < last * 0.85)
            last = e
        }
    }

    /// Encoding picks the nearest centroid per subspace (checked by brute force), decode inverts the
    /// layout, and ADC tables sum to the exact distance / inner product of the reconstruction.
    @Test func encodeDecodeAndTables() throws {
        let d = 24, m = 6
        let data = TestData.clustered(n: 600, dimension: d, seed: 31)
        let pq = try ProductQuantizer.train(data, subspaces: m, parameters: KMeansParameters(iterations: 8))
        let codes = pq.encode(data)
        #expect(codes.count == 600 * m)
        let rec = pq.decode(codes)
        let dsub = d / m
        for i in stride(from: 0, to: 600, by: 37) {
            for j in 0..<m {
                let sub = Array(data[row: i][j * dsub ..< (j + 1) * dsub])
                let dists = (0..<256).map { c -> Float in
                    let cent = Array(pq.centroids[(j * 256 + c) * dsub ..< (j * 256 + c + 1) * dsub])
                    return zip(sub, cent).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                }
                let chosen = Int(codes[i * m + j])
                #expect(dists[chosen] <= dists.min()! * 1.0001 + 1e-5)
                #expect(Array(rec[row: i][j * dsub ..< (j + 1) * dsub]) == Array(pq.centroids[(j * 256 + chosen) * dsub ..< (j * 256 + chosen + 1) * dsub]))
            }
        }
        let q = TestData.clustered(n: 1, dimension: d, seed: 99)[row: 0]
        var l2 = [Float](repeating: 0, count: m * 256), ip = l2
        q.withUnsafeBufferPointer { qp in
            pq.distanceTable(qp.baseAddress!, kind: .squaredL2, into: &l2)
            pq.distanceTable(qp.baseAddress!, kind: .innerProduct, into: &ip)
        }
        for i in 0..<20 {
            let code = Array(codes[i * m ..< (i + 1) * m])
            let r = rec[row: i]
            let exactL2 = zip(q, r).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            let exactIP = zip(q, r).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            let adcL2 = l2.withUnsafeBufferPointer { t in code.withUnsafeBufferPointer { ProductQuantizer.tableSum(t.baseAddress!, $0.baseAddress!, subspaces: m) } }
            let adcIP = ip.withUnsafeBufferPointer { t in code.withUnsafeBufferPointer { ProductQuantizer.tableSum(t.baseAddress!, $0.baseAddress!, subspaces: m) } }
            #expect(abs(adcL2 - exactL2) <= 1e-3 * max(1, exactL2))
            #expect(abs(adcIP - exactIP) <= 1e-3 * max(1, abs(exactIP)))
        }
    }

    @Test func rejectsBadShapes() {
        let data = TestData.clustered(n: 300, dimension: 10, seed: 1)
        #expect(throws: IndexError.self) { try ProductQuantizer.train(data, subspaces: 3) }
        #expect(throws: IndexError.self) { try ProductQuantizer.train(TestData.clustered(n: 100, dimension: 10, seed: 1), subspaces: 5) }
        #expect(throws: IndexError.self) { try ProductQuantizer(dimension: 8, subspaces: 2, centroids: [1, 2, 3]) }
    }
}

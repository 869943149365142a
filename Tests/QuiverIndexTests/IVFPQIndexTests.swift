import QuiverCore
import Testing
@testable import QuiverIndex

struct IVFPQIndexTests {
    static func build(_ data: Matrix, metric: Metric, nlist: Int = 16, m: Int = 8, ids: [Int64]? = nil,
                      source: Bool = true) throws -> IVFPQIndex {
        let index = try IVFPQIndex(dimension: data.dimension, metric: metric,
                                   parameters: IVFPQParameters(nlist: nlist, subspaces: m, nprobe: min(4, nlist), rerank: 40))
        try index.train(data)
        let ids = ids ?? (0..<data.rows).map { Int64($0) }
        try index.add(data, ids: ids)
        if source { index.vectorSource = MatrixVectorSource(data, ids: ids) }
        return index
    }

    /// With every list probed and every vector re-ranked, IVF-PQ is exact: the same ids and distances
    /// as the flat index, for every metric (ties broken by id in both).
    @Test(arguments: Metric.allCases)
    func fullProbeAndRerankEqualsFlat(metric: Metric) throws {
        let all = TestData.clustered(n: 3050, dimension: 32, seed: 41)
        let data = Matrix(dimension: 32, storage: Array(all.storage[0 ..< 3000 * 32]))
        let queries = Matrix(dimension: 32, storage: Array(all.storage[(3000 * 32)...]))
        let ids = (0..<3000).map { Int64($0) * 7 + 5 }
        let index = try Self.build(data, metric: metric, ids: ids)
        let flat = try FlatIndex(dimension: 32, metric: metric)
        try flat.add(data, ids: ids)
        let want = try flat.search(queries, k: 10, allow: nil)
        let got = try index.search(queries, k: 10, nprobe: 16, rerank: 3000, allow: nil)
        #expect(got == want)
        // Without re-ranking the ids are approximate but the exhaustive ADC still finds most of them.
        let adc = try index.search(queries, k: 10, nprobe: 16, rerank: 0, allow: nil)
        let r = TestData.recall(adc, want.map { $0.map(\.id) }, k: 10)
        print("ADC-only recall \(metric): \(r)")
        #expect(r > 0.5)
    }

    /// recall@10 on bigann10k at the documented defaults (nprobe 16, rerank 100) with nlist 100, m 16.
    @Test func bigannRecallAtDefaults() throws {
        let data = try TestData.bigann.get()
        let index = try IVFPQIndex(dimension: 128, metric: .l2, parameters: IVFPQParameters(nlist: 100, subspaces: 16))
        try index.train(data.base)
        try index.add(data.base, ids: (0..<data.base.rows).map { Int64($0) })
        index.vectorSource = MatrixVectorSource(data.base)
        let truth = data.groundTruth.map { $0.map { Int64($0) } }
        let found = try index.search(data.queries, k: 10, allow: nil)
        let recall = TestData.recall(found, truth, k: 10)
        let adcOnly = TestData.recall(try index.search(data.queries, k: 10, nprobe: nil, rerank: 0, allow: nil), truth, k: 10)
        print("IVFPQ bigann10k recall@10: \(recall) re-ranked, \(adcOnly) ADC only")
        #expect(recall >= 0.95)
        #expect(adcOnly >= 0.5)
        // Re-ranked distances are exact squared L2.
        for (qi, list) in found.enumerated().prefix(5) {
            for n in list {
                let exact = data.queries.withRow(qi) { q in data.base.withRow(Int(n.id)) { DistanceKernels.scalarSquaredL2(q, $0, 128) } }
                #expect(abs(n.distance - exact) <= 1e-3 * exact)
            }
        }
    }

    /// Filters: every result is allowed, and a search returns k results whenever k are allowed, even
    /// when the allowed ids are far from the probed lists; with and without a vector source.
    @Test(arguments: [true, false])
    func allowFilterReturnsKAllowed(withSource: Bool) throws {
        let all = TestData.clustered(n: 4020, dimension: 16, seed: 51)
        let data = Matrix(dimension: 16, storage: Array(all.storage[0 ..< 4000 * 16]))
        let queries = Matrix(dimension: 16, storage: Array(all.storage[(4000 * 16)...]))
        let index = try Self.build(data, metric: .l2, nlist: 32, m: 4, source: withSource)
        let flat = try FlatIndex(dimension: 16, metric: .l2)
        try flat.add(data, ids: (0..<4000).map { Int64($0) })
        var sparse = Bitset(capacity: 4000)
        for i in stride(from: 3, to: 4000, by: 97) { sparse.insert(i) }  // 42 ids
        var wide = Bitset(capacity: 4000)
        for i in stride(from: 0, to: 4000, by: 3) { wide.insert(i) }
        let filters: [AllowFilter] = [.bitset(sparse), .bitset(wide), .predicate { $0 % 11 == 4 }, .predicate { $0 == 17 || $0 == 3999 }]
        for filter in filters {
            let got = try index.search(queries, k: 10, allow: filter)
            let want = try flat.search(queries, k: 10, allow: filter)
            for (g, w) in zip(got, want) {
                #expect(g.count == w.count)
                #expect(g.allSatisfy { filter.allows($0.id) })
            }
        }
        // A selective bitset with a source is answered exactly.
        if withSource {
            #expect(try index.search(queries, k: 10, allow: .bitset(sparse)) == flat.search(queries, k: 10, allow: .bitset(sparse)))
        }
    }

    /// Tombstoned vectors never come back, and searches still return k live results.
    @Test(arguments: [true, false])
    func tombstonesNeverReturned(withSource: Bool) throws {
        let data = TestData.clustered(n: 2000, dimension: 16, seed: 61)
        let index = try Self.build(data, metric: .cosine, nlist: 8, m: 4, source: withSource)
        let queries = Matrix(dimension: 16, storage: Array(data.storage[0 ..< 20 * 16]))
        var removed = Set<Int64>()
        for list in try index.search(queries, k: 10, allow: nil) {
            for n in list where index.markDeleted(n.id) { removed.insert(n.id) }
        }
        for i in stride(from: Int64(0), to: 2000, by: 3) where index.markDeleted(i) { removed.insert(i) }
        #expect(index.liveCount == 2000 - removed.count)
        #expect(!index.markDeleted(removed.first!))
        #expect(!index.markDeleted(99_999))
        #expect(!index.contains(removed.first!))
        for list in try index.search(queries, k: 10, allow: nil) {
            #expect(list.count == 10)
            #expect(list.allSatisfy { !removed.contains($0.id) })
        }
        // Only two live vectors: both come back, nothing else.
        let survivors = (0..<Int64(2000)).filter { !removed.contains($0) }
        for id in survivors.dropFirst(2) { index.markDeleted(id) }
        for list in try index.search(queries, k: 10, allow: nil) {
            #expect(Set(list.map(\.id)) == Set(survivors.prefix(2)))
        }
    }

    @Test func batchedEqualsSingleAndErrors() throws {
        let data = TestData.clustered(n: 1200, dimension: 8, seed: 71)
        let index = try Self.build(data, metric: .dot, nlist: 4, m: 2)
        let queries = Matrix(dimension: 8, storage: Array(data.storage[0 ..< 30 * 8]))
        let batched = try index.search(queries, k: 5, allow: nil)
        for i in 0..<30 { #expect(try index.search(queries[row: i], k: 5) == batched[i]) }
        #expect(throws: IndexError.self) { try index.add(Matrix(dimension: 8, rows: [[Float](repeating: 0, count: 8)]), ids: [3]) }
        #expect(throws: IndexError.self) { try index.add(Matrix(dimension: 4, rows: [[0, 0, 0, 0]]), ids: [5000]) }
        #expect(throws: IndexError.self) { try index.search([1, 2, 3], k: 1) }
        #expect(throws: IndexError.self) { try index.search(queries, k: 1, nprobe: 5, rerank: nil, allow: nil) }
        let untrained = try IVFPQIndex(dimension: 8, metric: .l2, parameters: IVFPQParameters(nlist: 4, subspaces: 2))
        #expect(throws: IndexError.self) { try untrained.add(data, ids: (0..<1200).map { Int64($0) }) }
        #expect(throws: IndexError.self) { try untrained.train(Matrix(dimension: 8, storage: Array(data.storage[0 ..< 100 * 8]))) }
        #expect(throws: IndexError.self) { try IVFPQIndex(dimension: 8, metric: .l2, parameters: IVFPQParameters(nlist: 4, subspaces: 3)) }
        #expect(try untrained.search(queries[row: 0], k: 3).isEmpty)
        // Sparse ids after dense ones; duplicates rejected.
        try index.add(Matrix(dimension: 8, storage: Array(data.storage[0 ..< 2 * 8])), ids: [-5, 1_000_000])
        #expect(index.contains(-5) && index.contains(1_000_000) && index.contains(0) && !index.contains(1200))
        #expect(throws: IndexError.self) { try index.add(Matrix(dimension: 8, storage: Array(data.storage[0 ..< 8])), ids: [-5]) }
        #expect(index.count == 1202)
    }

    /// Re-ranking computes cosine distances without a normalized copy; the result must be the bits
    /// FlatIndex gets from normalize-then-dot, for every length (tails included) and odd scales.
    @Test func dotScaledMatchesNormalizeThenDot() {
        var rng = SplitMix64(state: 7)
        for n in 1...200 {
            let a = (0..<n).map { _ in Float(Int(rng.next() % 2001) - 1000) / 337 }
            let b = (0..<n).map { _ in Float(Int(rng.next() % 2001) - 1000) / 113 }
            var normalized = b
            let norm = normalized.withUnsafeMutableBufferPointer { DistanceKernels.normalize($0.baseAddress!, n) }
            guard norm > 0 else { continue }
            let want = a.withUnsafeBufferPointer { pa in normalized.withUnsafeBufferPointer { DistanceKernels.dot(pa.baseAddress!, $0.baseAddress!, n) } }
            let got = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { IVFPQIndex.dotScaled(pa.baseAddress!, $0.baseAddress!, 1 / norm, n) } }
            #expect(got.bitPattern == want.bitPattern, "n = \(n)")
        }
    }
}

/// The two ways of scoring codes under L2 and cosine: one query table plus per-entry terms and the
/// list's coarse distance (FAISS's decomposition), and per-list tables of whole residual distances
/// (no base term) give the same ADC distances up to rounding.
struct IVFPQTableTests {
    @Test(arguments: [Metric.l2, .cosine])
    func precomputedAndPerListTablesAgree(metric: Metric) throws {
        let all = TestData.clustered(n: 2_020, dimension: 32, seed: 3)
        let data = Matrix(dimension: 32, storage: Array(all.storage[0 ..< 2_000 * 32]))
        let queries = Matrix(dimension: 32, storage: Array(all.storage[(2_000 * 32)...]))
        let with = try IVFPQIndex(dimension: 32, metric: metric, parameters: IVFPQParameters(nlist: 16, subspaces: 8, nprobe: 16, rerank: 0))
        try with.train(data)
        try with.add(data, ids: (0..<2_000).map { Int64($0) })
        let without = try with.withPrecomputedTableLimit(0)
        #expect(with.keepsADCTerms && !without.keepsADCTerms)
        let a = try with.search(queries, k: 20, nprobe: 16, rerank: 0, allow: nil)
        let b = try without.search(queries, k: 20, nprobe: 16, rerank: 0, allow: nil)
        for (x, y) in zip(a, b) {
            #expect(x.count == y.count)
            for (u, v) in zip(x, y) { #expect(abs(u.distance - v.distance) <= 1e-3 * max(1, abs(u.distance)), "\(u) vs \(v)") }
        }
    }
}

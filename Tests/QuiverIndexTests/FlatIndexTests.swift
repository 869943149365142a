import QuiverCore
import Testing
@testable import QuiverIndex

struct FlatIndexTests {
    /// The oracle against the shipped ground truth: exact search must find the exact top-10.
    @Test func flatMatchesBigannGroundTruth() throws {
        let data = try TestData.bigann.get()
        let flat = try FlatIndex(dimension: data.base.dimension, metric: .l2)
        try flat.add(data.base, ids: (0..<Int64(data.base.rows)).map { $0 })
        let found = try flat.search(data.queries, k: 10, allow: nil)
        let truth = data.groundTruth.map { $0.map(Int64.init) }
        #expect(TestData.recall(found, truth, k: 10) >= 0.999)
    }

    @Test func cosineScoresAreCosines() throws {
        let flat = try FlatIndex(dimension: 2, metric: .cosine)
        try flat.add(Matrix(dimension: 2, rows: [[3, 4], [0, 2], [-1, 0]]), ids: [10, 20, 30])
        let r = try flat.search([0, 5], k: 3)
        #expect(r.map(\.id) == [20, 10, 30])
        #expect(abs(Metric.cosine.score(fromDistance: r[0].distance) - 1) < 1e-6)
        #expect(abs(Metric.cosine.score(fromDistance: r[1].distance) - 0.8) < 1e-6)
    }

    @Test func rejectsBadInput() throws {
        let flat = try FlatIndex(dimension: 3, metric: .l2)
        #expect(throws: IndexError.self) { try flat.add(Matrix(dimension: 2, rows: [[1, 2]]), ids: [1]) }
        #expect(throws: IndexError.self) { try flat.add(Matrix(dimension: 3, rows: [[1, 2, 3]]), ids: [1, 2]) }
        try flat.add(Matrix(dimension: 3, rows: [[1, 2, 3]]), ids: [7])
        #expect(throws: IndexError.self) { try flat.add(Matrix(dimension: 3, rows: [[1, 2, 3]]), ids: [7]) }
        #expect(throws: IndexError.self) { try flat.search([1, 2], k: 1) }
        #expect(flat.markDeleted(7))
        #expect(!flat.markDeleted(7))
        #expect(try flat.search([1, 2, 3], k: 5).isEmpty)
    }
}

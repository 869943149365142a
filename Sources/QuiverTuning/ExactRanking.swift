import COpenBLAS
import Dispatch
import Foundation
import QuiverCore

/// Exact inner-product ranking of query rows against a document matrix held in memory, on
/// `cblas_sgemm` over blocks of queries, the blocks shared between `workers` threads (OpenBLAS
/// itself runs single-threaded in this process: the encoder and the index layer set it so).
/// Used by training to mine hard negatives and to score validation queries.
public struct ExactRanking: Sendable {
    /// Documents, (n, d) row-major, unit norm.
    public let documents: Matrix
    public let workers: Int

    public init(documents: Matrix, workers: Int = 2) {
        self.documents = documents
        self.workers = max(1, workers)
        // Each worker runs a single-threaded sgemm (as the encoder and the index layer set it,
        // process-wide): two of those beat one split in two, and nested pools would oversubscribe.
        openblas_set_num_threads(1)
    }

    /// For each query row of `queries` (rows, d), the `k` best document indexes (best first, ties to
    /// the lower index) that `exclude(query, document)` does not rule out.
    public func top(_ queries: [Float], rows n: Int, k: Int, exclude: (@Sendable (Int, Int32) -> Bool)? = nil) -> [[Int32]] {
        scored(queries, rows: n, k: k, exclude: exclude).map { $0.map(\.document) }
    }

    /// `top` with each document's inner product.
    public func scored(_ queries: [Float], rows n: Int, k: Int,
                       exclude: (@Sendable (Int, Int32) -> Bool)? = nil) -> [[(document: Int32, score: Float)]] {
        let d = documents.dimension, m = documents.rows
        let blockRows = 64
        let blocks = (n + blockRows - 1) / blockRows
        let out = ResultSlots<[(document: Int32, score: Float)]>(count: n)
        queries.withUnsafeBufferPointer { qp in
            documents.storage.withUnsafeBufferPointer { dp in
                // Workers only read the queries and documents, and write their own rows' slots.
                let shared = Shared((qp.baseAddress!, dp.baseAddress!))
                DispatchQueue.concurrentPerform(iterations: min(workers, max(blocks, 1))) { worker in
                    let (q, docs) = shared.value
                    var scores = [Float](repeating: 0, count: blockRows * m)
                    var block = worker
                    while block < blocks {
                        let r0 = block * blockRows, b = min(blockRows, n - r0)
                        scores.withUnsafeMutableBufferPointer { sp in
                            // scores (b, m) = Q (b, d) * D^T (d, m)
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(b), Int32(m), Int32(d), 1,
                                        q + r0 * d, Int32(d), docs, Int32(d), 0, sp.baseAddress!, Int32(m))
                            for i in 0..<b {
                                var top = TopK(k: k)
                                let row = sp.baseAddress! + i * m
                                for j in 0..<m where exclude?(r0 + i, Int32(j)) != true {
                                    top.push(id: Int64(j), distance: -row[j])
                                }
                                out.set(r0 + i, top.sorted().map { (Int32($0.id), -$0.distance) })
                            }
                        }
                        block += workers
                    }
                }
            }
        }
        return out.values
    }
}

/// A value shared with `concurrentPerform` workers that only read it (pointers into buffers that
/// outlive the workers).
struct Shared<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// One slot per index, each written by exactly one worker of a `concurrentPerform`.
final class ResultSlots<T>: @unchecked Sendable {
    // @unchecked: each index is written by one thread, and read only after the workers joined; the
    // slots are a raw buffer so that no array (and no exclusivity check) is shared between threads.
    private let slots: UnsafeMutableBufferPointer<T?>
    init(count: Int) { slots = .allocate(capacity: count); slots.initialize(repeating: nil) }
    deinit { slots.deinitialize(); slots.deallocate() }
    func set(_ i: Int, _ v: T) { slots[i] = v }
    var values: [T] { slots.map { $0! } }
}

/// nDCG@10 as BEIR computes it: binary gains, 1 / log2(rank + 1) discount, the ideal from the
/// number of relevant documents.
public func ndcg10<S: Sequence>(_ ranked: S, relevant: Set<S.Element>) -> Double where S.Element: Hashable {
    var dcg = 0.0
    for (i, id) in ranked.prefix(10).enumerated() where relevant.contains(id) { dcg += 1 / log2(Double(i) + 2) }
    let ideal = (0..<min(10, relevant.count)).reduce(0.0) { $0 + 1 / log2(Double($1) + 2) }
    return ideal > 0 ? dcg / ideal : 0
}

import COpenBLAS
import QuiverCore

/// A query-side transform of a dual encoder's output: a residual linear map, u = q + q W (full
/// rank, W: (d, d)) or u = q + (q A) B (rank r, A: (d, r), B: (r, d)), rescaled to the norm of q.
/// Zero weights are the identity, exactly (q + 0 = q, and the rescale multiplies by 1).
/// The document tower is untouched: documents are never re-embedded.
///
/// Thread-safety: a value type; `apply` may run on any number of threads at once.
public struct QueryAdapter: Sendable, Equatable {
    public enum Kind: Sendable, Equatable, CustomStringConvertible {
        case linear
        case lowRank(Int)

        public var description: String {
            switch self {
            case .linear: return "linear"
            case .lowRank(let r): return "lowrank:\(r)"
            }
        }

        /// `linear` or `lowrank:R` (R from 1 to the dimension, checked by `QueryAdapter`).
        public init?(_ text: String) {
            if text == "linear" { self = .linear; return }
            guard text.hasPrefix("lowrank:"), let r = Int(text.dropFirst(8)), r >= 1 else { return nil }
            self = .lowRank(r)
        }
    }

    public let kind: Kind
    public let dimension: Int
    /// linear: W, d x d row-major. lowRank(r): A (d x r, row-major) then B (r x d, row-major).
    public internal(set) var weights: [Float]

    /// The number of weights of an adapter of `kind` over `dimension`.
    public static func weightCount(_ kind: Kind, dimension d: Int) -> Int {
        switch kind {
        case .linear: return d * d
        case .lowRank(let r): return 2 * d * r
        }
    }

    /// The identity: W = 0; low rank: A small random (seeded), B = 0, so that B gets gradients.
    public static func identity(_ kind: Kind, dimension d: Int, seed: UInt64 = 1) -> QueryAdapter {
        var w = [Float](repeating: 0, count: weightCount(kind, dimension: d))
        if case .lowRank(let r) = kind {
            var rng = SplitMix64(seed: seed)
            let scale = 1 / Float(d).squareRoot()
            for i in 0..<(d * r) { w[i] = (Float(rng.next() >> 40) / Float(1 << 24) * 2 - 1) * scale }
        }
        return QueryAdapter(kind: kind, dimension: d, weights: w)
    }

    public init(kind: Kind, dimension: Int, weights: [Float]) {
        precondition(weights.count == QueryAdapter.weightCount(kind, dimension: dimension), "adapter weight count")
        self.kind = kind
        self.dimension = dimension
        self.weights = weights
    }

    /// The rank of the low-rank part (the dimension for a full-rank adapter).
    public var rank: Int {
        if case .lowRank(let r) = kind { return r }
        return dimension
    }

    /// Adapts one query vector.
    public func apply(_ q: [Float]) -> [Float] {
        precondition(q.count == dimension)
        var out = [Float](repeating: 0, count: dimension)
        q.withUnsafeBufferPointer { qp in out.withUnsafeMutableBufferPointer { apply(qp.baseAddress!, rows: 1, into: $0.baseAddress!) } }
        return out
    }

    /// Adapts `rows` query vectors. x: (rows, d), out: (rows, d); each output row keeps its input's norm.
    public func apply(_ x: UnsafePointer<Float>, rows n: Int, into out: UnsafeMutablePointer<Float>) {
        residual(x, rows: n, into: out, hidden: nil)
        let d = dimension
        for i in 0..<n {
            let q = x + i * d, u = out + i * d
            let nq = DistanceKernels.dot(q, q, d).squareRoot(), nu = DistanceKernels.dot(u, u, d).squareRoot()
            let s: Float = nu > 0 ? nq / nu : 1
            for j in 0..<d { u[j] *= s }
        }
    }

    /// u = x + x W, or u = x + (x A) B with x A written to `hidden` (rows x r) when given.
    /// x: (rows, d), out: (rows, d).
    func residual(_ x: UnsafePointer<Float>, rows n: Int, into out: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>?) {
        let d = dimension
        out.update(from: x, count: n * d)
        weights.withUnsafeBufferPointer { w in
            switch kind {
            case .linear:
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(d), Int32(d), 1, x, Int32(d), w.baseAddress!, Int32(d), 1, out, Int32(d))
            case .lowRank(let r):
                let h = hidden ?? UnsafeMutablePointer<Float>.allocate(capacity: n * r)
                defer { if hidden == nil { h.deallocate() } }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(r), Int32(d), 1, x, Int32(d), w.baseAddress!, Int32(r), 0, h, Int32(r))
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(d), Int32(r), 1, h, Int32(r), w.baseAddress! + d * r, Int32(d), 1, out, Int32(d))
            }
        }
    }

    /// The Frobenius norm of the weights (0 for the identity).
    public var weightNorm: Double {
        weights.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
    }
}

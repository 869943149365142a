#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CQuiverKernels
import QuiverCore

/// How an sq8 segment chooses each dimension's range [lo, hi] from the vectors it holds.
public enum SQ8Training: Sendable, Equatable {
    /// The least and greatest value: no value is clipped, the steps are as wide as the extremes make them.
    case minMax
    /// The `fraction` and `1 - fraction` quantiles (0 <= fraction < 0.5) of a sample: values outside
    /// are clipped to the range's ends, the steps between are finer.
    case clip(Double)

    /// The segments' default (measured in docs/benchmarks.md, "sq8 HNSW").
    public static let standard = SQ8Training.minMax
}

/// 8-bit scalar quantization with a scale and offset per dimension (FAISS's `QT_8bit`): component i
/// of a vector is stored as code c in 0...255, and stands for `offsets[i] + scales[i] * c`.
/// A Sendable value; the buffers are immutable once trained.
public struct SQ8Quantizer: Sendable {
    public let dimension: Int
    /// Per dimension: the step between two codes ((hi - lo) / 255; 0 where hi == lo).
    public let scales: [Float]
    /// Per dimension: the value of code 0 (lo).
    public let offsets: [Float]

    /// Rows sampled for quantiles (`SQ8Training.clip`); min/max reads every row.
    static let quantileSample = 65_536

    public init(scales: [Float], offsets: [Float]) {
        precondition(scales.count == offsets.count && !scales.isEmpty)
        dimension = scales.count
        self.scales = scales
        self.offsets = offsets
    }

    /// Trains the ranges on `rows` vectors of `dimension` floats at `vectors` (row-major), reading only
    /// the rows `include` admits (the live ones); with none admitted, every row is used.
    public init(training: SQ8Training, vectors: UnsafePointer<Float>, rows: Int, dimension: Int,
                include: (Int) -> Bool = { _ in true }) {
        var chosen = (0..<rows).filter(include)
        if chosen.isEmpty { chosen = Array(0..<rows) }
        var lo = [Float](repeating: 0, count: dimension), hi = [Float](repeating: 0, count: dimension)
        switch training {
        case .minMax:
            if !chosen.isEmpty {
                for j in 0..<dimension { lo[j] = vectors[chosen[0] * dimension + j]; hi[j] = lo[j] }
            }
            for r in chosen {
                let v = vectors + r * dimension
                for j in 0..<dimension {
                    lo[j] = Swift.min(lo[j], v[j])
                    hi[j] = Swift.max(hi[j], v[j])
                }
            }
        case .clip(let fraction):
            let stride = Swift.max(1, chosen.count / Self.quantileSample)
            let sample = Swift.stride(from: 0, to: chosen.count, by: stride).map { chosen[$0] }
            var column = [Float](repeating: 0, count: sample.count)
            for j in 0..<dimension where !sample.isEmpty {
                for (i, r) in sample.enumerated() { column[i] = vectors[r * dimension + j] }
                column.sort()
                let last = column.count - 1
                let cut = Swift.min(last / 2, Int((Double(last) * fraction).rounded()))
                lo[j] = column[cut]
                hi[j] = column[last - cut]
            }
        }
        self.init(scales: zip(lo, hi).map { $1 > $0 ? ($1 - $0) / 255 : 0 }, offsets: lo)
    }

    /// The code of `x` in dimension `j`: round((x - lo) / step), clipped to 0...255.
    @inline(__always)
    func code(_ x: Float, _ j: Int) -> UInt8 {
        let s = scales[j]
        guard s > 0 else { return 0 }
        let c = ((x - offsets[j]) / s).rounded()
        return UInt8(Swift.max(0, Swift.min(255, c.isNaN ? 0 : c)))
    }

    /// Writes the codes of `vector` (dimension floats) to `codes`.
    func encode(_ vector: UnsafePointer<Float>, into codes: UnsafeMutablePointer<UInt8>) {
        for j in 0..<dimension { codes[j] = code(vector[j], j) }
    }

    /// The value code `c` stands for in dimension `j`.
    func decode(_ c: UInt8, _ j: Int) -> Float { offsets[j] + scales[j] * Float(c) }
}

/// The query side of the sq8 kernels (`qk_sq8.h`): a float query folded with the ranges once per
/// search, so that each distance is one pass over a node's codes.
struct SQ8PreparedQuery {
    var raw: qk_sq8_query

    /// Prepares `q` (already normalized for cosine) for `metric` into `w` (dimension floats), over the
    /// ranges `scales` / `offsets` (dimension floats each, alive while the query is used).
    init(_ q: UnsafePointer<Float>, metric: Metric, scales: UnsafePointer<Float>, offsets: UnsafePointer<Float>,
         dimension d: Int, into w: UnsafeMutablePointer<Float>) {
        switch metric {
        case .l2:
            for i in 0..<d { w[i] = q[i] - offsets[i] }
            raw = qk_sq8_query(w: w, scale: scales, bias: 0, d: Int32(d))
        case .dot, .cosine:
            var qo: Float = 0
            for i in 0..<d {
                w[i] = q[i] * scales[i]
                qo += q[i] * offsets[i]
            }
            raw = qk_sq8_query(w: w, scale: nil, bias: (metric == .cosine ? 1 : 0) - qo, d: Int32(d))
        }
    }
}

enum SQ8Kernel {
    /// The widest sq8 kernel this CPU runs (chosen once).
    static let best = Int32(qk_kernel_best().rawValue)
}

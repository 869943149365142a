import CQuiverKernels

/// Distances from one query to four vectors in one pass (FAISS's `fvec_*_batch_4`): each chunk of the
/// query is loaded once for all four, and the four vectors stream from memory side by side, which is
/// what a graph search needs when it scores a node's unvisited neighbours.
///
/// Specification: `dot4(q, a, b, c, d, n)[i]` equals `dot(q, x_i, n)` and `squaredL2x4` equals
/// `squaredL2` for each of the four vectors, up to float rounding (the order of additions differs);
/// `FloatKernelTests` checks both against the scalar twins on every length 0...400, in every variant.
/// Two accumulators per vector keep eight independent add chains in flight.
extension DistanceKernels {
    /// Dot products of `q` with `a`, `b`, `c` and `d` (`n` floats each).
    @inlinable @inline(__always)
    public static func dot4(_ q: UnsafePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                            _ c: UnsafePointer<Float>, _ d: UnsafePointer<Float>, _ n: Int) -> SIMD4<Float> {
        batch4(qk_float_active().pointee.dot4, q, a, b, c, d, n)
    }

    /// Squared Euclidean distances from `q` to `a`, `b`, `c` and `d` (`n` floats each).
    @inlinable @inline(__always)
    public static func squaredL2x4(_ q: UnsafePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                   _ c: UnsafePointer<Float>, _ d: UnsafePointer<Float>, _ n: Int) -> SIMD4<Float> {
        batch4(qk_float_active().pointee.l2sqr4, q, a, b, c, d, n)
    }

    /// A four-vector kernel of the active variant (`qk_float_ops.dot4` or `.l2sqr4`).
    @usableFromInline
    typealias Batch4Kernel = @convention(c) (UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?,
                                             UnsafePointer<Float>?, UnsafePointer<Float>?, Int, UnsafeMutablePointer<Float>?) -> Void

    /// `kernel`'s four results as one vector.
    @inlinable @inline(__always)
    static func batch4(_ kernel: Batch4Kernel, _ q: UnsafePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                       _ c: UnsafePointer<Float>, _ d: UnsafePointer<Float>, _ n: Int) -> SIMD4<Float> {
        var r = SIMD4<Float>()
        withUnsafeMutableBytes(of: &r) { kernel(q, a, b, c, d, n, $0.baseAddress!.assumingMemoryBound(to: Float.self)) }
        return r
    }
}

import CQuiverKernels

/// Float32 distance kernels. The vector versions run in CQuiverKernels (qk_float.h), in the variant
/// chosen once when the process starts: AVX-512, AVX2 with FMA, or portable C, the widest the CPU runs
/// unless `$QUIVER_SIMD` forces a narrower one (see `FloatKernel`). The scalar twins (`scalarDot`,
/// `scalarSquaredL2`) are the specification; `FloatKernelTests` checks every variant against them on
/// every length from 0 to 1,000 (tails included).
public enum DistanceKernels {
    /// Dot product of `a` and `b` (`n` floats each).
    @inlinable @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        qk_float_active().pointee.dot(a, b, n)
    }

    /// Squared Euclidean distance between `a` and `b` (`n` floats each).
    @inlinable @inline(__always)
    public static func squaredL2(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        qk_float_active().pointee.l2sqr(a, b, n)
    }

    /// `dot(a, b')` where b' = b * s componentwise (each product rounded to float, as a stored scaled
    /// copy would be): bit for bit the same as scaling a copy of `b` and calling `dot`, without the copy.
    @inlinable @inline(__always)
    public static func dotScaled(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ s: Float, _ n: Int) -> Float {
        qk_float_active().pointee.dot_scaled(a, b, s, n)
    }

    /// A product quantizer's inner-product table: `out[j * 256 + c]` = <q_j, centroid c of subspace j>
    /// for `m` subspaces of `dsub` floats, from the transposed centroids `ct[(j * dsub + t) * 256 + c]`.
    @inlinable
    public static func pqInnerProductTable(_ q: UnsafePointer<Float>, _ ct: UnsafePointer<Float>, subspaces m: Int,
                                           subDimension dsub: Int, into out: UnsafeMutablePointer<Float>) {
        qk_float_active().pointee.pq_ip_table(q, ct, m, dsub, out)
    }

    /// The scalar twin of `dot`: the plain definition, used by tests as the oracle.
    public static func scalarDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var sum: Float = 0
        for i in 0..<n { sum += a[i] * b[i] }
        return sum
    }

    /// The scalar twin of `squaredL2`.
    public static func scalarSquaredL2(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var sum: Float = 0
        for i in 0..<n {
            let d = a[i] - b[i]
            sum += d * d
        }
        return sum
    }

    /// Scales `v` (`n` floats) to unit L2 norm in place; a zero vector stays zero.
    /// Returns the norm before scaling.
    @discardableResult
    @inlinable
    public static func normalize(_ v: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        let norm = dot(v, v, n).squareRoot()
        if norm > 0 {
            let inv = 1 / norm
            for i in 0..<n { v[i] *= inv }
        }
        return norm
    }
}

extension Array where Element == Float {
    /// This vector scaled to unit L2 norm (a zero vector is returned unchanged).
    public func normalized() -> [Float] {
        var copy = self
        let n = copy.count
        copy.withUnsafeMutableBufferPointer { p in
            if let base = p.baseAddress { DistanceKernels.normalize(base, n) }
        }
        return copy
    }
}

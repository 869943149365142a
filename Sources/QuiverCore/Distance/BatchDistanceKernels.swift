/// Distances from one query to four vectors in one pass (FAISS's `fvec_*_batch_4`): each chunk of the
/// query is loaded once for all four, and the four vectors stream from memory side by side, which is
/// what a graph search needs when it scores a node's unvisited neighbours.
///
/// Specification: `dot4(q, a, b, c, d, n)[i]` equals `dot(q, x_i, n)` and `squaredL2x4` equals
/// `squaredL2` for each of the four vectors, up to float rounding (the order of additions differs);
/// `BatchDistanceKernelTests` checks both against the scalar twins on every length 0...400.
/// Two sets of accumulators per vector keep eight independent add chains in flight.
extension DistanceKernels {
    /// Dot products of `q` with `a`, `b`, `c` and `d` (`n` floats each).
    @inlinable
    public static func dot4(_ q: UnsafePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                            _ c: UnsafePointer<Float>, _ d: UnsafePointer<Float>, _ n: Int) -> SIMD4<Float> {
        let rq = UnsafeRawPointer(q), ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        let rc = UnsafeRawPointer(c), rd = UnsafeRawPointer(d)
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), b0 = SIMD8<Float>(), b1 = SIMD8<Float>()
        var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), d0 = SIMD8<Float>(), d1 = SIMD8<Float>()
        var i = 0
        while i + 16 <= n {
            let o = i &* 4
            let x0 = rq.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            let x1 = rq.loadUnaligned(fromByteOffset: o + 32, as: SIMD8<Float>.self)
            a0 += x0 * ra.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            b0 += x0 * rb.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            c0 += x0 * rc.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            d0 += x0 * rd.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            a1 += x1 * ra.loadUnaligned(fromByteOffset: o + 32, as: SIMD8<Float>.self)
            b1 += x1 * rb.loadUnaligned(fromByteOffset: o + 32, as: SIMD8<Float>.self)
            c1 += x1 * rc.loadUnaligned(fromByteOffset: o + 32, as: SIMD8<Float>.self)
            d1 += x1 * rd.loadUnaligned(fromByteOffset: o + 32, as: SIMD8<Float>.self)
            i &+= 16
        }
        if i + 8 <= n {
            let o = i &* 4
            let x0 = rq.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            a0 += x0 * ra.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            b0 += x0 * rb.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            c0 += x0 * rc.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            d0 += x0 * rd.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            i &+= 8
        }
        var r = SIMD4<Float>((a0 + a1).sum(), (b0 + b1).sum(), (c0 + c1).sum(), (d0 + d1).sum())
        while i < n {
            let x = q[i]
            r += SIMD4(x * a[i], x * b[i], x * c[i], x * d[i])
            i &+= 1
        }
        return r
    }

    /// Squared Euclidean distances from `q` to `a`, `b`, `c` and `d` (`n` floats each).
    @inlinable
    public static func squaredL2x4(_ q: UnsafePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                   _ c: UnsafePointer<Float>, _ d: UnsafePointer<Float>, _ n: Int) -> SIMD4<Float> {
        let rq = UnsafeRawPointer(q), ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        let rc = UnsafeRawPointer(c), rd = UnsafeRawPointer(d)
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), b0 = SIMD8<Float>(), b1 = SIMD8<Float>()
        var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), d0 = SIMD8<Float>(), d1 = SIMD8<Float>()
        var i = 0
        while i + 16 <= n {
            let o = i &* 4
            let x0 = rq.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            let x1 = rq.loadUnaligned(fromByteOffset: o + 32, as: SIMD8<Float>.self)
            var t = x0 - ra.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self); a0 += t * t
            t = x0 - rb.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self); b0 += t * t
            t = x0 - rc.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self); c0 += t * t
            t = x0 - rd.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self); d0 += t * t
            t = x1 - ra.loadUnaligned(fromByteOffset: o + 32, as: SIMD8<Float>.self); a1 += t * t
            t = x1 - rb.loadUnaligned(fromByteOffset: o + 32, as: SIMD8<Float>.self); b1 += t * t
            t = x1 - rc.loadUnaligned(fromByteOffset: o + 32, as: SIMD8<Float>.self); c1 += t * t
            t = x1 - rd.loadUnaligned(fromByteOffset: o + 32, as: SIMD8<Float>.self); d1 += t * t
            i &+= 16
        }
        if i + 8 <= n {
            let o = i &* 4
            let x0 = rq.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            var t = x0 - ra.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self); a0 += t * t
            t = x0 - rb.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self); b0 += t * t
            t = x0 - rc.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self); c0 += t * t
            t = x0 - rd.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self); d0 += t * t
            i &+= 8
        }
        var r = SIMD4<Float>((a0 + a1).sum(), (b0 + b1).sum(), (c0 + c1).sum(), (d0 + d1).sum())
        while i < n {
            let x = q[i]
            let t = SIMD4(x - a[i], x - b[i], x - c[i], x - d[i])
            r += t * t
            i &+= 1
        }
        return r
    }
}

import COpenBLAS
import Foundation

/// The element-wise and row-wise kernels of the forward pass (everything but the matrix products).
///
/// Each vectorized kernel (8 lanes of float32, `SIMD8<Float>` over raw pointers, no bounds checks in
/// the hot loops) has a plain scalar twin in `ScalarKernels`, and a test compares the two.
/// Pointers are unaligned-safe: every vector load and store goes through `loadUnaligned`/`storeBytes`.
enum Kernels {
    typealias V = SIMD8<Float>

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    @inline(__always) static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

    // Lane-wise max and min through compare-and-select: the standard library's `pointwiseMax` is not
    // inlined and runs lane by lane (10% of the encoder's time in a profile), `replacing(with:where:)`
    // compiles to vector compares and blends.
    @inline(__always) static func vmax(_ a: V, _ b: V) -> V { a.replacing(with: b, where: a .< b) }
    @inline(__always) static func vmin(_ a: V, _ b: V) -> V { a.replacing(with: b, where: b .< a) }

    /// C = alpha * A · op(B) + beta * C on one-thread-or-more OpenBLAS, row-major.
    /// A: (m, k) with row stride lda; B: (n, k) when `transposeB` (a PyTorch Linear weight), else (k, n);
    /// C: (m, n) with row stride ldc.
    @inline(__always)
    static func sgemm(m: Int, n: Int, k: Int, alpha: Float = 1,
                      a: UnsafePointer<Float>, lda: Int,
                      b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Fills each of `rows` rows of `y` with `bias`, so that a following sgemm with beta 1 adds the bias for free.
    // y: (rows, n), bias: (n)
    static func broadcastRows(_ bias: UnsafePointer<Float>, rows: Int, n: Int, into y: UnsafeMutablePointer<Float>) {
        for r in 0..<rows { (y + r * n).update(from: bias, count: n) }
    }

    /// Adds `bias` to every row of `y` in place.
    // y: (rows, n), bias: (n)
    static func addRows(_ bias: UnsafePointer<Float>, rows: Int, n: Int, to y: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let row = y + r * n
            var i = 0
            while i + 8 <= n { store(load(row + i) + load(bias + i), row + i); i += 8 }
            while i < n { row[i] += bias[i]; i += 1 }
        }
    }

    /// LayerNorm over the last axis, in place: y = (x - mean) / sqrt(var + eps) * gamma + beta,
    /// with the biased variance, as PyTorch computes it.
    // x: (rows, n), gamma: (n), beta: (n)
    static func layerNorm(_ x: UnsafeMutablePointer<Float>, rows: Int, n: Int,
                          gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float) {
        for r in 0..<rows {
            let row = x + r * n
            var acc = V(repeating: 0)
            var i = 0
            while i + 8 <= n { acc += load(row + i); i += 8 }
            var sum = acc.sum()
            while i < n { sum += row[i]; i += 1 }
            let mean = sum / Float(n)
            // Two passes (mean, then squared deviations): one-pass E[x²] - E[x]² loses digits.
            let vmean = V(repeating: mean)
            var acc2 = V(repeating: 0)
            i = 0
            while i + 8 <= n { let d = load(row + i) - vmean; acc2 += d * d; i += 8 }
            var ss = acc2.sum()
            while i < n { let d = row[i] - mean; ss += d * d; i += 1 }
            let inv = 1 / (ss / Float(n) + eps).squareRoot()
            let vinv = V(repeating: inv)
            i = 0
            while i + 8 <= n {
                store((load(row + i) - vmean) * vinv * load(gamma + i) + load(beta + i), row + i)
                i += 8
            }
            while i < n { row[i] = (row[i] - mean) * inv * gamma[i] + beta[i]; i += 1 }
        }
    }

    /// GELU, erf form (BERT's "gelu"), in place: y = x / 2 * (1 + erf(x / sqrt 2)).
    // x: (count)
    static func gelu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        let half = V(repeating: 0.5), one = V(repeating: 1), invSqrt2 = V(repeating: 0.70710678118654752)
        var i = 0
        while i + 8 <= count {
            let v = load(x + i)
            store(half * v * (one + erf(v * invSqrt2)), x + i)
            i += 8
        }
        while i < count { x[i] = 0.5 * x[i] * (1 + erff(x[i] * 0.70710678118654752)); i += 1 }
    }

    /// Softmax of each row in place.
    // x: (rows, n) with row stride ld
    static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, n: Int, ld: Int) {
        for r in 0..<rows {
            let row = x + r * ld
            var i = 0
            var vm8 = V(repeating: -.infinity)
            while i + 8 <= n { vm8 = vmax(vm8, load(row + i)); i += 8 }
            var m = -Float.infinity
            for lane in 0..<8 { m = Swift.max(m, vm8[lane]) }
            while i < n { m = Swift.max(m, row[i]); i += 1 }
            let vm = V(repeating: m)
            var vsum = V(repeating: 0)
            i = 0
            while i + 8 <= n { let e = exp(load(row + i) - vm); store(e, row + i); vsum += e; i += 8 }
            var sum = vsum.sum()
            while i < n { let e = expf(row[i] - m); row[i] = e; sum += e; i += 1 }
            let vinv = V(repeating: 1 / sum)
            i = 0
            while i + 8 <= n { store(load(row + i) * vinv, row + i); i += 8 }
            while i < n { row[i] *= 1 / sum; i += 1 }
        }
    }

    /// e^x on 8 lanes: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, and the Cephes expf
    /// polynomial (relative error about 1e-7 on [-87, 88]); inputs are clamped to that range.
    @inline(__always)
    static func exp(_ x: V) -> V {
        let x = vmin(vmax(x, V(repeating: -87.33654)), V(repeating: 88.72283))
        // Adding 1.5 * 2^23 rounds to an integer in the low mantissa bits (round to nearest even).
        let magic = V(repeating: 12_582_912)
        let t = x * V(repeating: 1.44269504088896341) + magic
        let n = t - magic
        let r = x - n * V(repeating: 0.693359375) - n * V(repeating: -2.12194440e-4)
        var p = V(repeating: 1.9875691500e-4)
        p = p * r + V(repeating: 1.3981999507e-3)
        p = p * r + V(repeating: 8.3334519073e-3)
        p = p * r + V(repeating: 4.1665795894e-2)
        p = p * r + V(repeating: 1.6666665459e-1)
        p = p * r + V(repeating: 5.0000001201e-1)
        p = p * (r * r) + r + V(repeating: 1)
        let k = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let scale = unsafeBitCast((k &+ 127) &<< 23, to: V.self)
        return p * scale
    }

    /// erf on 8 lanes: Abramowitz & Stegun 7.1.26, absolute error below 1.5e-7 (float32's spacing
    /// near 1 is 6e-8, so GELU sees the same numbers as with `erff` to a few ulps).
    @inline(__always)
    static func erf(_ x: V) -> V {
        // |x| and sign(x) by bit masks; erf is odd, so erf(x) = sign(x) * erf(|x|).
        let bits = unsafeBitCast(x, to: SIMD8<UInt32>.self)
        let sign = bits & 0x8000_0000
        let ax = unsafeBitCast(bits & 0x7FFF_FFFF, to: V.self)
        let t = V(repeating: 1) / (V(repeating: 1) + V(repeating: 0.3275911) * ax)
        var p = V(repeating: 1.061405429)
        p = p * t + V(repeating: -1.453152027)
        p = p * t + V(repeating: 1.421413741)
        p = p * t + V(repeating: -0.284496736)
        p = p * t + V(repeating: 0.254829592)
        p = p * t
        let y = V(repeating: 1) - p * exp(V(repeating: 0) - ax * ax)
        return unsafeBitCast(unsafeBitCast(y, to: SIMD8<UInt32>.self) | sign, to: V.self)
    }
}

/// Plain scalar versions of the vectorized kernels: the reference the kernel tests compare against.
enum ScalarKernels {
    /// LayerNorm of each row, in place (double accumulation: the reference should be the exact one).
    // x: (rows, n)
    static func layerNorm(_ x: inout [Float], rows: Int, n: Int, gamma: [Float], beta: [Float], eps: Float) {
        for r in 0..<rows {
            let row = (r * n)..<((r + 1) * n)
            let mean = row.reduce(0.0) { $0 + Double(x[$1]) } / Double(n)
            let variance = row.reduce(0.0) { $0 + (Double(x[$1]) - mean) * (Double(x[$1]) - mean) } / Double(n)
            let inv = 1 / (variance + Double(eps)).squareRoot()
            for (j, i) in row.enumerated() { x[i] = Float((Double(x[i]) - mean) * inv) * gamma[j] + beta[j] }
        }
    }

    /// GELU with libm's erf.
    static func gelu(_ x: Float) -> Float { Float(0.5 * Double(x) * (1 + Foundation.erf(Double(x) / 2.0.squareRoot()))) }

    /// Softmax of a row, in double.
    static func softmax(_ x: [Float]) -> [Float] {
        let m = x.max() ?? 0
        let e = x.map { Foundation.exp(Double($0 - m)) }
        let s = e.reduce(0, +)
        return e.map { Float($0 / s) }
    }
}

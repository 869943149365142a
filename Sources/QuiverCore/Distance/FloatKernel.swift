import CQuiverKernels

/// The variants of the float32 distance kernels (CQuiverKernels' qk_float.h), narrowest first. One is
/// chosen when the process starts: the widest this CPU runs (cpuid, through `__builtin_cpu_supports`,
/// which also checks that the OS saves the wide registers), or the one the `QUIVER_SIMD` environment
/// variable names, so that one machine can measure each. A name that is not a variant, or a variant
/// the CPU lacks, is reported on standard error and in `selectionNote`, and the widest variant runs.
public enum FloatKernel: String, KernelVariant {
    /// Plain C (eight independent lanes), any CPU.
    case portable
    /// AVX2 with FMA: 256-bit vectors.
    case avx2
    /// AVX-512F: 512-bit vectors, tails by masked loads.
    case avx512

    /// The environment variable that forces a variant (`portable`, `avx2` or `avx512`).
    public static let environmentVariable = "QUIVER_SIMD"

    var c: qk_simd { qk_simd(cValue) }

    /// Whether this CPU runs the variant.
    public var isSupported: Bool { qk_simd_supported(c) != 0 }

    /// The widest variant this CPU runs.
    public static var best: FloatKernel { FloatKernel(qk_simd_best()) }

    /// The variant every distance of this process uses.
    public static var active: FloatKernel { FloatKernel(qk_float_active().pointee.simd) }

    /// Why `$QUIVER_SIMD` was not followed, or nil when it was (or is unset).
    public static var selectionNote: String? { qk_float_selection_note().map { String(cString: $0) } }

    init(_ simd: qk_simd) { self.init(cValue: simd.rawValue) }

    /// This variant's kernels, to call one variant directly (tests compare each with the scalar twins),
    /// or nil when the CPU does not run it.
    public var kernels: Kernels? { qk_float_ops_for(c).map(Kernels.init) }

    /// The kernels of one variant (the same functions `DistanceKernels` calls through the active one).
    public struct Kernels: @unchecked Sendable {
        let ops: UnsafePointer<qk_float_ops>

        public func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float { ops.pointee.dot(a, b, n) }
        public func squaredL2(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float { ops.pointee.l2sqr(a, b, n) }
        public func dotScaled(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ s: Float, _ n: Int) -> Float {
            ops.pointee.dot_scaled(a, b, s, n)
        }
        public func dot4(_ q: UnsafePointer<Float>, _ x: [UnsafePointer<Float>], _ n: Int) -> [Float] {
            var out = [Float](repeating: 0, count: 4)
            ops.pointee.dot4(q, x[0], x[1], x[2], x[3], n, &out)
            return out
        }
        public func squaredL2x4(_ q: UnsafePointer<Float>, _ x: [UnsafePointer<Float>], _ n: Int) -> [Float] {
            var out = [Float](repeating: 0, count: 4)
            ops.pointee.l2sqr4(q, x[0], x[1], x[2], x[3], n, &out)
            return out
        }
        /// A product quantizer's inner-product table (m * 256 floats) from transposed centroids
        /// `ct[(j * dsub + t) * 256 + c]`.
        public func pqInnerProductTable(_ q: UnsafePointer<Float>, _ ct: UnsafePointer<Float>, subspaces m: Int, subDimension dsub: Int,
                                        into out: UnsafeMutablePointer<Float>) {
            ops.pointee.pq_ip_table(q, ct, m, dsub, out)
        }
    }
}

import CQuiverKernels
import QuiverCore
import Foundation

/// The int8 matrix-product kernels of CQuiverKernels, narrowest first. The encoder takes the widest
/// the CPU runs unless told otherwise (`SentenceTransformerEncoder.Options.int8Kernel`, or the
/// `QUIVER_INT8_KERNEL` environment variable), so that one machine can measure each of them.
public enum Int8Kernel: String, KernelVariant {
    /// Plain C, any CPU.
    case portable
    /// AVX2 and FMA: `vpmaddubsw` on |a| and sign(w, a), then `vpmaddwd`.
    case avx2
    /// AVX-512 VNNI: `vpdpbusd` on activations shifted to unsigned.
    case avx512VNNI = "avx512-vnni"

    /// The environment variable that forces a kernel (`portable`, `avx2` or `avx512-vnni`).
    public static let environmentVariable = "QUIVER_INT8_KERNEL"

    var c: qk_kernel { qk_kernel(cValue) }

    /// Whether this CPU runs the kernel.
    public var isSupported: Bool { qk_kernel_supported(c) != 0 }

    /// The widest kernel this CPU runs.
    public static var best: Int8Kernel { Int8Kernel(cValue: qk_kernel_best().rawValue) }

    /// The kernel to use: `requested` if given, else `$QUIVER_INT8_KERNEL` if set, else `best`.
    /// A name that is not a kernel, or a kernel the CPU lacks, is an error naming what there is.
    public static func resolve(_ requested: Int8Kernel?,
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Int8Kernel {
        let supported = supportedNames
        var kernel = requested ?? best
        if requested == nil, let name = environment[environmentVariable], !name.isEmpty {
            guard let named = Int8Kernel(rawValue: name) else {
                throw EncoderError(.unsupportedKernel, "$\(environmentVariable) is '\(name)', which is not an int8 kernel (this CPU runs: \(supported))")
            }
            kernel = named
        }
        guard kernel.isSupported else {
            throw EncoderError(.unsupportedKernel, "the int8 kernel '\(kernel.rawValue)' does not run on this CPU (it runs: \(supported))")
        }
        return kernel
    }
}

/// A Linear layer's weight (out, in) in int8, quantized symmetrically per output channel and packed
/// for the kernels. Owns its C allocation; immutable, so any number of threads may apply it at once.
final class Int8Matrix: @unchecked Sendable {
    private let matrix: UnsafeMutablePointer<qk_i8_matrix>
    /// Output channels and inputs.
    let rows: Int, columns: Int

    /// Quantizes w (rows, columns), row-major; with `smoothing` s (columns), quantizes W · diag(s) and
    /// divides inputs by s before quantizing them (see `qk_i8_matrix_quantize_smoothed`).
    // w: (OC, C), smoothing: (C)
    init(quantizing w: UnsafePointer<Float>, rows: Int, columns: Int, smoothing: [Float]? = nil) {
        precondition(smoothing.map { $0.count == columns && $0.allSatisfy { $0 > 0 && $0.isFinite } } ?? true)
        let made = smoothing.map { qk_i8_matrix_quantize_smoothed(w, Int32(rows), Int32(columns), Int32(columns), $0) }
            ?? qk_i8_matrix_quantize(w, Int32(rows), Int32(columns), Int32(columns))
        guard let m = made else {
            fatalError("out of memory quantizing a \(rows) x \(columns) matrix")
        }
        matrix = m
        self.rows = rows
        self.columns = columns
    }

    /// A matrix of given int8 values q (rows, columns), row-major, and per-row scales (for tests).
    init(values q: [Int8], scales: [Float], rows: Int, columns: Int) {
        precondition(q.count == rows * columns && scales.count == rows && q.allSatisfy { $0 != -128 })
        guard let m = qk_i8_matrix_from_int8(q, scales, Int32(rows), Int32(columns)) else {
            fatalError("out of memory for a \(rows) x \(columns) matrix")
        }
        matrix = m
        self.rows = rows
        self.columns = columns
    }

    deinit { qk_i8_matrix_free(matrix) }

    /// Bytes held (packed values, scales and sums).
    var byteCount: Int { qk_i8_matrix_bytes(matrix) }

    /// The int8 values, unpacked to (rows, columns).
    var values: [Int8] {
        var q = [Int8](repeating: 0, count: rows * columns)
        qk_i8_matrix_unpack(matrix, &q)
        return q
    }

    /// The per-row scales.
    var scales: [Float] { Array(UnsafeBufferPointer(start: matrix.pointee.scales, count: rows)) }

    /// y = dequant(quant(x) · Wᵀ) + b, or y += that when `accumulate` (a Linear feeding the residual
    /// stream); each row of x quantized per token.
    // x: (T, C), b: (OC), y: (T, OC)
    func linear(_ x: UnsafePointer<Float>, tokens t: Int, bias: [Float], into y: UnsafeMutablePointer<Float>,
                accumulate: Bool, kernel: Int8Kernel) {
        let rc = bias.withUnsafeBufferPointer { b in
            qk_i8_linear(kernel.c, x, Int32(columns), Int32(t), matrix, b.baseAddress, y, Int32(rows), accumulate ? 1 : 0)
        }
        precondition(rc == 0, "out of memory in an int8 matrix product")
    }

    /// The scalar twin of `linear`: the same floats, bit for bit.
    func linearReference(_ x: UnsafePointer<Float>, tokens t: Int, bias: [Float], into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let rc = bias.withUnsafeBufferPointer { b in
            qk_i8_linear_reference(x, Int32(columns), Int32(t), matrix, b.baseAddress, y, Int32(rows), accumulate ? 1 : 0)
        }
        precondition(rc == 0, "out of memory in an int8 matrix product")
    }

    /// c = a · Wᵀ in int32 with `kernel` (a: (T, C) int8 in [-127, 127], c: (T, OC)).
    func product(_ a: [Int8], tokens t: Int, kernel: Int8Kernel) -> [Int32] {
        var c = [Int32](repeating: 0, count: t * rows)
        let rc = qk_i8_gemm_s32(kernel.c, a, Int32(columns), Int32(t), matrix, &c, Int32(rows))
        precondition(rc == 0, "out of memory in an int8 matrix product")
        return c
    }

    /// The scalar twin of `product`, from the unpacked values.
    func productReference(_ a: [Int8], tokens t: Int) -> [Int32] {
        var c = [Int32](repeating: 0, count: t * rows)
        qk_i8_gemm_s32_reference(a, Int32(columns), Int32(t), values, Int32(rows), Int32(columns), &c, Int32(rows))
        return c
    }
}

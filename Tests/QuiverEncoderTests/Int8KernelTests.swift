import CQuiverKernels
import Foundation
import QuiverCore
import Testing
@testable import QuiverEncoder

/// The int8 kernels of CQuiverKernels against their scalar twins, bit for bit, on every kernel this
/// CPU runs: int32 products (odd shapes for the tails, extreme values for saturation), per-token
/// activation quantization, and the whole dequantized Linear.
struct Int8KernelTests {
    static let kernels = Int8Kernel.allCases.filter(\.isSupported)

    func randomInt8(_ count: Int, _ rng: inout SplitMix64) -> [Int8] {
        (0..<count).map { _ in Int8(Int(rng.next() % 255) - 127) }
    }

    func randomFloats(_ count: Int, _ rng: inout SplitMix64, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in (Float(rng.next() % 2_000_001) / 1_000_000 - 1) * scale }
    }

    @Test func thisCPUHasTheVectorKernels() {
        // The benchmark machine has AVX-512 VNNI; elsewhere at least the portable kernel runs.
        #expect(Int8Kernel.portable.isSupported)
        #expect(Int8Kernel.best.isSupported)
        print("int8 kernels on this CPU: \(Self.kernels.map(\.rawValue)), best \(Int8Kernel.best.rawValue)")
    }

    @Test(arguments: kernels) func int32ProductsMatchTheScalarTwin(kernel: Int8Kernel) {
        var rng = SplitMix64(seed: 17)
        for _ in 0..<60 {
            let m = Int(rng.next() % 21) + 1, n = Int(rng.next() % 70) + 1, k = Int(rng.next() % 101) + 1
            let w = Int8Matrix(values: randomInt8(n * k, &rng), scales: [Float](repeating: 1, count: n), rows: n, columns: k)
            let a = randomInt8(m * k, &rng)
            #expect(w.product(a, tokens: m, kernel: kernel) == w.productReference(a, tokens: m), "m \(m) n \(n) k \(k)")
        }
    }

    /// All products at ±127 · ±127 over the model's widest input (1,536): the 16-bit pair sums of
    /// vpmaddubsw and the unsigned shift of vpdpbusd must not saturate or overflow.
    @Test(arguments: kernels) func extremeValuesDoNotSaturate(kernel: Int8Kernel) {
        let m = 9, n = 33, k = 1536
        var rng = SplitMix64(seed: 3)
        for pattern in 0..<3 {
            let q: [Int8] = (0..<(n * k)).map { i in pattern == 0 ? 127 : (pattern == 1 ? -127 : (rng.next() % 2 == 0 ? 127 : -127)) }
            let a: [Int8] = (0..<(m * k)).map { i in i % 3 == 0 ? -127 : 127 }
            let w = Int8Matrix(values: q, scales: [Float](repeating: 1, count: n), rows: n, columns: k)
            let got = w.product(a, tokens: m, kernel: kernel)
            #expect(got == w.productReference(a, tokens: m), "pattern \(pattern)")
            if pattern == 0 { #expect(got[0] == Int32(127 * 127) * Int32(512)) }  // 1,024 of +127·127, 512 of −127·127
        }
    }

    @Test(arguments: kernels) func linearMatchesTheScalarTwinBitForBit(kernel: Int8Kernel) {
        var rng = SplitMix64(seed: 99)
        for trial in 0..<40 {
            let m = Int(rng.next() % 120) + 1, n = Int(rng.next() % 60) + 1, k = Int(rng.next() % 90) + 1
            let weights = randomFloats(n * k, &rng, scale: 0.2)
            let w = weights.withUnsafeBufferPointer { Int8Matrix(quantizing: $0.baseAddress!, rows: n, columns: k) }
            var x = randomFloats(m * k, &rng, scale: 3)
            if trial % 5 == 0 { for j in 0..<k { x[j] = 0 } }  // an all-zero token
            let bias = trial % 7 == 0 ? [] : randomFloats(n, &rng)
            let accumulate = trial % 2 == 1
            let start = randomFloats(m * n, &rng)
            var got = start, want = start
            x.withUnsafeBufferPointer { xp in
                w.linear(xp.baseAddress!, tokens: m, bias: bias, into: &got, accumulate: accumulate, kernel: kernel)
                w.linearReference(xp.baseAddress!, tokens: m, bias: bias, into: &want, accumulate: accumulate)
            }
            #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "m \(m) n \(n) k \(k) accumulate \(accumulate)")
        }
    }

    @Test(arguments: kernels) func activationQuantizationMatchesTheScalarTwin(kernel: Int8Kernel) {
        var rng = SplitMix64(seed: 5)
        for k in [1, 7, 8, 15, 16, 17, 63, 384, 1536] {
            let x = randomFloats(k, &rng, scale: 40)
            var got = [Int8](repeating: 0, count: k), want = got
            let s1 = qk_quantize_row(kernel.c, x, Int32(k), &got)
            let s2 = qk_quantize_row_reference(x, Int32(k), &want)
            #expect(got == want && s1.bitPattern == s2.bitPattern, "k \(k)")
            // Symmetric: the largest magnitude maps to ±127 and every value is within half a step.
            #expect(want.contains { $0 == 127 || $0 == -127 })
            for j in 0..<k { #expect(abs(Float(want[j]) * s2 - x[j]) <= s2 * 0.5001) }
        }
    }

    @Test func weightQuantizationIsSymmetricPerOutputChannel() {
        var rng = SplitMix64(seed: 8)
        let n = 20, k = 50
        var w = randomFloats(n * k, &rng)
        for j in 0..<k { w[3 * k + j] *= 100; w[5 * k + j] = 0 }  // channels of very different ranges, and a zero one
        let m = w.withUnsafeBufferPointer { Int8Matrix(quantizing: $0.baseAddress!, rows: n, columns: k) }
        let q = m.values, scales = m.scales
        for i in 0..<n {
            let row = w[(i * k)..<((i + 1) * k)]
            let maxabs = row.map(abs).max()!
            #expect(scales[i] == maxabs / 127)
            for j in 0..<k {
                #expect(q[i * k + j] >= -127)
                #expect(abs(Float(q[i * k + j]) * scales[i] - w[i * k + j]) <= scales[i] * 0.5001)
            }
        }
    }

    @Test func kernelChoiceIsResolvedOrRefusedByName() throws {
        #expect(try Int8Kernel.resolve(nil, environment: [:]) == .best)
        #expect(try Int8Kernel.resolve(nil, environment: [Int8Kernel.environmentVariable: "portable"]) == .portable)
        #expect(try Int8Kernel.resolve(.portable, environment: [Int8Kernel.environmentVariable: "avx2"]) == .portable)
        do {
            _ = try Int8Kernel.resolve(nil, environment: [Int8Kernel.environmentVariable: "sse9"])
            Issue.record("an unknown kernel name was accepted")
        } catch let e as EncoderError {
            #expect(e.code == .unsupportedKernel && e.message.contains("'sse9'") && e.message.contains("portable"))
        }
        for kernel in Int8Kernel.allCases where !kernel.isSupported {
            #expect(throws: EncoderError.self) { try Int8Kernel.resolve(kernel, environment: [:]) }
        }
    }
}

import Foundation
import Testing
@testable import QuiverEncoder

struct PoolingTests {
    // Three tokens of width 2.
    let tokens: [[Float]] = [[1, -2], [3, 4], [-1, 0]]

    @Test func cls() { #expect(Pooling(modes: [.cls]).pool(tokens: tokens) == [1, -2]) }

    @Test func mean() { #expect(Pooling(modes: [.mean]).pool(tokens: tokens) == [1, 2.0 / 3.0]) }

    @Test func max() { #expect(Pooling(modes: [.max]).pool(tokens: tokens) == [3, 4]) }

    @Test func meanSqrtLength() {
        let v = Pooling(modes: [.meanSqrtLength]).pool(tokens: tokens)
        #expect(abs(v[0] - 3 / Float(3).squareRoot()) < 1e-6)
        #expect(abs(v[1] - 2 / Float(3).squareRoot()) < 1e-6)
    }

    @Test func singleToken() {
        for mode in Pooling.Mode.allCases {
            #expect(Pooling(modes: [mode]).pool(tokens: [[5, -6]]) == [5, -6], "\(mode)")
        }
    }

    @Test func severalModesConcatenateInSentenceTransformersOrder() {
        let p = Pooling(modes: [.mean, .cls, .max])
        #expect(p.modes == [.cls, .max, .mean])
        #expect(p.outputDimension(hidden: 2) == 6)
        #expect(p.pool(tokens: tokens) == [1, -2, 3, 4, 1, 2.0 / 3.0])
    }

    @Test func readsPoolingConfig() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("config.json")
        try #"{"word_embedding_dimension": 2, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#
            .write(to: file, atomically: true, encoding: .utf8)
        #expect(try Pooling(configFile: file.path).modes == [.cls])
        try #"{"pooling_mode_lasttoken": true}"#.write(to: file, atomically: true, encoding: .utf8)
        #expect { try Pooling(configFile: file.path) } throws: { ($0 as? EncoderError)?.code == .unsupportedModel }
        try #"{"pooling_mode_mean_tokens": false}"#.write(to: file, atomically: true, encoding: .utf8)
        #expect { try Pooling(configFile: file.path) } throws: { ($0 as? EncoderError)?.code == .invalidModelFolder }
    }

    @Test func l2NormalizeGivesUnitLengthAndKeepsZero() {
        var v: [Float] = [3, 4]
        v.withUnsafeMutableBufferPointer { Pooling.l2Normalize($0.baseAddress!, count: 2) }
        #expect(v == [0.6, 0.8])
        var z: [Float] = [0, 0]
        z.withUnsafeMutableBufferPointer { Pooling.l2Normalize($0.baseAddress!, count: 2) }
        #expect(z == [0, 0])
    }
}

/// Vectorized kernels against their scalar twins.
struct KernelTests {
    func random(_ n: Int, _ range: ClosedRange<Float> = -4...4) -> [Float] {
        var rng = SystemRandomNumberGenerator()
        return (0..<n).map { _ in Float.random(in: range, using: &rng) }
    }

    @Test func geluMatchesScalarOnEveryLength() {
        for n in 0...40 {
            var x = random(n, -8...8)
            let expected = x.map(ScalarKernels.gelu)
            x.withUnsafeMutableBufferPointer { Kernels.gelu($0.baseAddress!, count: n) }
            for i in 0..<n { #expect(abs(x[i] - expected[i]) <= 1e-6 * Swift.max(1, abs(expected[i])), "n \(n) i \(i)") }
        }
        // Extremes: saturation and no NaN.
        var edge: [Float] = [-100, -30, -10, 0, 10, 30, 100, 1e-8, -1e-8]
        let expected = edge.map(ScalarKernels.gelu)
        edge.withUnsafeMutableBufferPointer { Kernels.gelu($0.baseAddress!, count: $0.count) }
        for i in edge.indices { #expect(abs(edge[i] - expected[i]) <= 1e-6 * Swift.max(1, abs(expected[i])), "\(i)") }
    }

    @Test func softmaxMatchesScalar() {
        for n in [1, 2, 7, 8, 9, 23, 64, 255, 256] {
            let rows = 3
            var x = random(rows * n, -20...20)
            let expected = (0..<rows).flatMap { ScalarKernels.softmax(Array(x[($0 * n)..<(($0 + 1) * n)])) }
            x.withUnsafeMutableBufferPointer { Kernels.softmaxRows($0.baseAddress!, rows: rows, n: n, ld: n) }
            for i in x.indices { #expect(abs(x[i] - expected[i]) <= 1e-6, "n \(n) i \(i)") }
        }
    }

    @Test func expIsAccurateOverTheRange() {
        var worst: Float = 0
        for x in stride(from: Float(-87), through: 88, by: 0.037) {
            let v = Kernels.exp(SIMD8(repeating: x))[0]
            worst = Swift.max(worst, abs(v / Float(Foundation.exp(Double(x))) - 1))
        }
        #expect(worst < 3e-7)
    }

    @Test func layerNormMatchesScalar() {
        for n in [1, 8, 13, 384] {
            let rows = 4
            var x = random(rows * n, -3...5)
            let gamma = random(n), beta = random(n)
            var expected = x
            ScalarKernels.layerNorm(&expected, rows: rows, n: n, gamma: gamma, beta: beta, eps: 1e-12)
            x.withUnsafeMutableBufferPointer { xp in
                Kernels.layerNorm(xp.baseAddress!, rows: rows, n: n, gamma: gamma, beta: beta, eps: 1e-12)
            }
            for i in x.indices { #expect(abs(x[i] - expected[i]) <= 1e-4, "n \(n) i \(i)") }
        }
    }
}

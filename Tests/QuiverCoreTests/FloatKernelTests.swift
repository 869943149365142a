import Foundation
import QuiverCore
import Testing

/// Every float32 kernel variant this CPU runs (portable, AVX2, AVX-512; CQuiverKernels' qk_float.h)
/// against the scalar twins, on every length with every tail, and the variant in use.
struct FloatKernelTests {
    static let variants = FloatKernel.allCases.filter(\.isSupported)

    /// Close enough for sums of n products of values in [-1, 1] taken in another order.
    static func close(_ got: Float, _ want: Float) -> Bool { abs(got - want) <= 1e-4 * max(1, abs(want)) }

    @Test(arguments: variants) func singleKernelsMatchScalarTwins(_ variant: FloatKernel) throws {
        let k = try #require(variant.kernels)
        var rng = SplitMix64(seed: 15)
        for n in 0...1000 {
            let a = (0..<max(n, 1)).map { _ in Float.random(in: -1...1, using: &rng) }
            let b = (0..<max(n, 1)).map { _ in Float.random(in: -1...1, using: &rng) }
            let s = Float.random(in: 0.5...2, using: &rng)
            let scaled = b.map { $0 * s }
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in scaled.withUnsafeBufferPointer { ps in
                let (x, y, z) = (pa.baseAddress!, pb.baseAddress!, ps.baseAddress!)
                #expect(Self.close(k.dot(x, y, n), DistanceKernels.scalarDot(x, y, n)), "\(variant) dot n=\(n)")
                #expect(Self.close(k.squaredL2(x, y, n), DistanceKernels.scalarSquaredL2(x, y, n)), "\(variant) l2 n=\(n)")
                // Bit for bit: the scaled dot forms the same products in the same order as dot on a scaled copy.
                #expect(k.dotScaled(x, y, s, n).bitPattern == k.dot(x, z, n).bitPattern, "\(variant) dotScaled n=\(n)")
            } } }
        }
    }

    @Test(arguments: variants) func batchKernelsMatchScalarTwins(_ variant: FloatKernel) throws {
        let k = try #require(variant.kernels)
        var rng = SplitMix64(seed: 4)
        for n in 0...400 {
            let vs = (0..<5).map { _ in (0..<max(n, 1)).map { _ in Float.random(in: -1...1, using: &rng) } }
            vs[0].withUnsafeBufferPointer { q in vs[1].withUnsafeBufferPointer { a in vs[2].withUnsafeBufferPointer { b in
                vs[3].withUnsafeBufferPointer { c in vs[4].withUnsafeBufferPointer { d in
                    let x = [a.baseAddress!, b.baseAddress!, c.baseAddress!, d.baseAddress!].map { UnsafePointer($0) }
                    let dots = k.dot4(q.baseAddress!, x, n), l2s = k.squaredL2x4(q.baseAddress!, x, n)
                    for i in 0..<4 {
                        #expect(Self.close(dots[i], DistanceKernels.scalarDot(q.baseAddress!, x[i], n)), "\(variant) dot4 n=\(n) lane \(i)")
                        #expect(Self.close(l2s[i], DistanceKernels.scalarSquaredL2(q.baseAddress!, x[i], n)), "\(variant) l2x4 n=\(n) lane \(i)")
                    }
                } }
            } } }
        }
    }

    @Test(arguments: variants) func pqTableMatchesScalarTwin(_ variant: FloatKernel) throws {
        let k = try #require(variant.kernels)
        var rng = SplitMix64(seed: 48)
        for (m, dsub) in [(1, 1), (3, 2), (4, 8), (48, 8), (5, 13)] {
            let q = (0..<(m * dsub)).map { _ in Float.random(in: -1...1, using: &rng) }
            let ct = (0..<(m * dsub * 256)).map { _ in Float.random(in: -1...1, using: &rng) }
            var out = [Float](repeating: .nan, count: m * 256)
            k.pqInnerProductTable(q, ct, subspaces: m, subDimension: dsub, into: &out)
            for j in 0..<m {
                for c in 0..<256 {
                    var want: Float = 0
                    for t in 0..<dsub { want += q[j * dsub + t] * ct[(j * dsub + t) * 256 + c] }
                    #expect(Self.close(out[j * 256 + c], want), "\(variant) m=\(m) dsub=\(dsub) j=\(j) c=\(c)")
                }
            }
        }
    }

    /// The active variant is the widest the CPU runs unless $QUIVER_SIMD named another it runs.
    @Test func activeVariantIsTheWidestOrTheForcedOne() {
        #expect(FloatKernel.portable.isSupported)
        #expect(FloatKernel.best.isSupported)
        let forced = FloatKernel.selectionNote == nil ? ProcessInfo.processInfo.environment[FloatKernel.environmentVariable].flatMap(FloatKernel.init(rawValue:)) : nil
        #expect(FloatKernel.active == (forced ?? FloatKernel.best))
    }
}

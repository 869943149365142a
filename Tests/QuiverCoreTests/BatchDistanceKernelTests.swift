import QuiverCore
import Testing

/// `DistanceKernels.dot4` / `squaredL2x4` (QuiverCore/Distance/BatchDistanceKernels.swift, added for the
/// HNSW search loop) against the scalar twins, on every length with every tail.
struct BatchDistanceKernelTests {
    @Test func batchKernelsMatchScalarTwins() {
        var rng = SystemRandomNumberGenerator()
        for n in 0...400 {
            let vs = (0..<5).map { _ in (0..<max(n, 1)).map { _ in Float.random(in: -1...1, using: &rng) } }
            vs[0].withUnsafeBufferPointer { q in vs[1].withUnsafeBufferPointer { a in vs[2].withUnsafeBufferPointer { b in
                vs[3].withUnsafeBufferPointer { c in vs[4].withUnsafeBufferPointer { d in
                    let ptrs = [a.baseAddress!, b.baseAddress!, c.baseAddress!, d.baseAddress!]
                    let dots = DistanceKernels.dot4(q.baseAddress!, ptrs[0], ptrs[1], ptrs[2], ptrs[3], n)
                    let l2s = DistanceKernels.squaredL2x4(q.baseAddress!, ptrs[0], ptrs[1], ptrs[2], ptrs[3], n)
                    for i in 0..<4 {
                        let d0 = DistanceKernels.scalarDot(q.baseAddress!, ptrs[i], n)
                        let l0 = DistanceKernels.scalarSquaredL2(q.baseAddress!, ptrs[i], n)
                        #expect(abs(dots[i] - d0) <= 1e-4 * max(1, abs(d0)), "dot4 n=\(n) lane \(i)")
                        #expect(abs(l2s[i] - l0) <= 1e-4 * max(1, abs(l0)), "squaredL2x4 n=\(n) lane \(i)")
                    }
                } }
            } } }
        }
    }
}

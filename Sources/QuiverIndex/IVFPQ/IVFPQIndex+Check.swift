import QuiverCore

extension IVFPQIndex {
    /// One entry whose stored code is not an encoding of its full vector.
    public struct CodeMismatch: Sendable, Equatable {
        public var id: Int64
        public var reason: String
    }

    /// Checks stored codes against the full vectors they were made from (which an IVF-PQ index does
    /// not keep): for every `step`-th live entry, in list order, whose vector `vector(id)` returns,
    /// whether its entry is what `add` makes of that vector, up to float rounding: its list's coarse
    /// centroid is a nearest one (L2; largest inner product for dot), and each code byte names a
    /// nearest PQ centroid of its subvector of the residual (rotated, with OPQ). "Nearest" allows a
    /// relative slack of 1e-4 of the compared squared norms, since `add` computes the same
    /// distances in another order (BLAS, blocks), so that a tie may fall either way. Returns how many
    /// entries were compared and the mismatches.
    public func checkCodes(every step: Int = 1, vector: (Int64) throws -> [Float]?) rethrows -> (checked: Int, mismatches: [CodeMismatch]) {
        guard let pq else { return (0, []) }
        let d = dimension, m = pq.subspaces, dsub = pq.subDimension, nl = parameters.nlist
        let k = ProductQuantizer.centroidCount
        var checked = 0
        var mismatches: [CodeMismatch] = []
        var live = 0
        let maxCoarseNorm = coarseNorms.max() ?? 0
        var residual = [Float](repeating: 0, count: d)
        var rotated = [Float](repeating: 0, count: d)
        for l in 0..<nl {
            let list = lists[l]
            for i in 0..<list.ids.count {
                let id = list.ids[i]
                if deleted.contains(id) { continue }
                live += 1
                guard (live - 1) % max(1, step) == 0, var x = try vector(id), x.count == d else { continue }
                checked += 1
                if metric.normalizes { x = x.normalized() }
                // The list: a nearest coarse centroid (norms_j - 2<x, c_j>; without norms for dot).
                let xx = x.reduce(0) { $0 + $1 * $1 }
                var best = Float.infinity
                var mine = Float.infinity
                coarse.withUnsafeBufferPointer { c in
                    x.withUnsafeBufferPointer { xp in
                        for j in 0..<nl {
                            let score = (metric == .dot ? 0 : coarseNorms[j]) - 2 * DistanceKernels.dot(xp.baseAddress!, c.baseAddress! + j * d, d)
                            best = min(best, score)
                            if j == l { mine = score }
                        }
                    }
                }
                if mine > best + 1e-4 * (xx + maxCoarseNorm) + 1e-6 {
                    mismatches.append(CodeMismatch(id: id, reason: "it is in list \(l), whose centroid is not a nearest one to its vector"))
                    continue
                }
                for j in 0..<d { residual[j] = x[j] - coarse[l * d + j] }
                if let rotation {
                    residual.withUnsafeBufferPointer { r in rotated.withUnsafeMutableBufferPointer { rotation.apply(vector: r.baseAddress!, into: $0.baseAddress!) } }
                } else {
                    rotated = residual
                }
                // Each code byte: a nearest PQ centroid of its subvector.
                pq.centroids.withUnsafeBufferPointer { cent in
                    rotated.withUnsafeBufferPointer { z in
                        for j in 0..<m {
                            let sub = z.baseAddress! + j * dsub
                            let code = Int(list.codes[i * m + j])
                            var nearest = Float.infinity
                            var own: Float = 0
                            var ownNorm: Float = 0
                            for c in 0..<k {
                                let y = cent.baseAddress! + (j * k + c) * dsub
                                var dist: Float = 0
                                for t in 0..<dsub { let e = sub[t] - y[t]; dist += e * e }
                                nearest = min(nearest, dist)
                                if c == code {
                                    own = dist
                                    ownNorm = DistanceKernels.dot(y, y, dsub)
                                }
                            }
                            let subNorm = DistanceKernels.dot(sub, sub, dsub)
                            if own > nearest + 1e-4 * (subNorm + ownNorm) + 1e-6 {
                                mismatches.append(CodeMismatch(id: id, reason: "its code byte \(j) (\(code)) is not a nearest centroid of its vector's subvector"))
                                return
                            }
                        }
                    }
                }
            }
        }
        return (checked, mismatches)
    }
}

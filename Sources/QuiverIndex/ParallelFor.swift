import Dispatch
import QuiverCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wraps a value that is not `Sendable` but that the code using it shares safely (disjoint writes to
/// an unsafe buffer, read-only pointers); each use says why it is safe.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// The number of online processors (the build and batch-search parallelism).
func onlineProcessorCount() -> Int {
    max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
}

extension VectorIndex {
    /// The batched search of a kind whose queries are independent: checks the queries' dimension
    /// and k (throwing `IndexError`), then answers row i with `one(row i)`, rows in parallel on
    /// every core. `one` must be safe to call from several threads at once.
    func searchEachRow(_ queries: Matrix, k: Int, _ one: (UnsafeBufferPointer<Float>) -> [Neighbor]) throws -> [[Neighbor]] {
        guard queries.dimension == dimension else {
            throw IndexError(.dimensionMismatch, "queries of \(queries.dimension) components in a \(dimension)-d index")
        }
        guard k >= 0 else { throw IndexError(.invalidParameter, "k must not be negative, got \(k)") }
        let n = queries.rows, d = dimension
        var out = [[Neighbor]](repeating: [], count: n)
        // Workers write disjoint elements of `out` and only read `queries`.
        out.withUnsafeMutableBufferPointer { results in
            let results = UncheckedSendable(results)
            queries.storage.withUnsafeBufferPointer { q in
                let q = UncheckedSendable(q)
                ParallelFor.run(n) { i in
                    results.value[i] = one(UnsafeBufferPointer(start: q.value.baseAddress! + i * d, count: d))
                }
            }
        }
        return out
    }
}

enum ParallelFor {
    /// Runs `body(i)` for i in 0..<n on up to `threads` workers (default: one per core), each worker
    /// taking every `threads`-th index: no shared counter, and deterministic assignment.
    static func run(_ n: Int, threads: Int = 0, _ body: (Int) -> Void) {
        let t = min(n, threads > 0 ? threads : onlineProcessorCount())
        if t <= 1 {
            for i in 0..<n { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let b = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: t) { w in
                var i = w
                while i < n {
                    b.value(i)
                    i += t
                }
            }
        }
    }
}

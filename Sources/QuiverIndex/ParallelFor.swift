import Dispatch
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

import Synchronization

/// The search contexts an index lends to its context-less search calls: `take` one from the pool
/// (or a new one), `give` it back after the search; at most 64 are kept. Safe from any thread.
final class ContextPool<Context: AnyObject>: Sendable {
    // A context is held by one search at a time; the lock guards the array.
    private let pool = Mutex<[UncheckedSendable<Context>]>([])
    private let make: @Sendable () -> Context

    init(_ make: @escaping @Sendable () -> Context) { self.make = make }

    func take() -> Context { pool.withLock { $0.popLast()?.value } ?? make() }

    /// Runs `body` with a context taken from the pool, and gives it back.
    func with<R>(_ body: (Context) throws -> R) rethrows -> R {
        let context = take()
        defer { give(context) }
        return try body(context)
    }

    func give(_ context: Context) {
        pool.withLock { contexts in
            if contexts.count < 64 { contexts.append(UncheckedSendable(context)) }
        }
    }
}

/// Replaces the scratch buffer `buffer` (its contents are dropped) with an uninitialized one of
/// `capacity` elements: how a search context grows.
@inline(__always)
func reallocate<T>(_ buffer: inout UnsafeMutablePointer<T>, capacity: Int) {
    buffer.deallocate()
    buffer = .allocate(capacity: capacity)
}

import Foundation

/// Where write time goes, summed since the database was opened (or since `resetTimings`): the
/// figures behind `Benchmarks/ImportBench`'s shares. Measured with the monotonic clock around each
/// phase; the cost is a few clock reads per write batch.
public struct WriteTimings: Sendable, Codable, Equatable {
    /// Embedding text with the collection's encoder.
    public var encodingSeconds = 0.0
    /// Validation, building and appending the log record.
    public var logSeconds = 0.0
    /// Waiting for the log's fsync (group commit).
    public var fsyncSeconds = 0.0
    /// The LMDB write transaction (documents, vectors, payload and BM25 indexes).
    public var lmdbSeconds = 0.0
    /// Adding rows to the in-memory segments, and background sealing and compaction.
    public var indexingSeconds = 0.0
    /// Write batches.
    public var batches = 0
}

/// A thread-safe accumulator of `WriteTimings`.
final class TimingsRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var value = WriteTimings()

    func add(_ body: (inout WriteTimings) -> Void) {
        lock.lock(); body(&value); lock.unlock()
    }

    var snapshot: WriteTimings {
        lock.lock(); defer { lock.unlock() }
        return value
    }

    func reset() {
        lock.lock(); value = WriteTimings(); lock.unlock()
    }
}

/// Seconds since an arbitrary origin, from the monotonic clock.
func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

extension Database {
    /// Where write time went since open or the last `resetTimings()`.
    public var timings: WriteTimings { timingsRecorder.snapshot }

    /// Starts the timings from zero.
    public func resetTimings() { timingsRecorder.reset() }
}

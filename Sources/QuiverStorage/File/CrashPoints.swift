#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Enumerated crash points, for the crash-point sweep (Tests/QuiverTests/CrashPointTests.swift).
///
/// Every durability-relevant step (each write and fsync of a log or segment file, each rename,
/// unlink and directory fsync, each LMDB commit) calls `CrashPoints.step(_:)`. In debug builds, a
/// process started with `QUIVER_CRASH_AT=n` exits at once, as `kill -9` would (`_exit`, no
/// cleanup, nothing flushed), when it reaches step n; with `QUIVER_CRASH_AT=0` it only counts, and
/// `CrashPoints.count` says how many steps a workload has. In release builds `step` is empty and
/// costs nothing.
public enum CrashPoints {
    #if DEBUG
    private static let counter = Atomic<Int>(0)
    private static let target: Int? = getenv("QUIVER_CRASH_AT").flatMap { Int(String(cString: $0)) }
    #endif

    /// The exit status of a process stopped at a crash point.
    public static let exitStatus: Int32 = 86

    /// Marks one durability-relevant step; in a crash-sweep run, the process may end here.
    @inline(__always)
    public static func step(_ name: StaticString) {
        #if DEBUG
        guard let t = target else { return }
        let n = counter.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
        if t > 0 && n == t {
            let message = "crash point \(n): \(name)\n"
            _ = message.withCString { write(2, $0, strlen($0)) }
            _exit(exitStatus)
        }
        #endif
    }

    /// Steps counted so far in this process (debug builds with `QUIVER_CRASH_AT` set; else 0).
    public static var count: Int {
        #if DEBUG
        return counter.load(ordering: .sequentiallyConsistent)
        #else
        return 0
        #endif
    }
}

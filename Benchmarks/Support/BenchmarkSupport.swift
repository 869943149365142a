import Foundation
import QuiverCore

/// What the benchmarks share: command-line options, the `.fvecs`/`.ivecs` files of the ANN
/// benchmarks, wall-clock and CPU timing, and recall against a ground truth.
public struct BenchmarkArguments {
    public let arguments: [String]

    public init(_ arguments: [String] = CommandLine.arguments) { self.arguments = arguments }

    /// The value after `--name`, if given.
    public func value(_ name: String) -> String? {
        arguments.firstIndex(of: name).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
    }

    public func int(_ name: String, _ defaultValue: Int) -> Int { value(name).flatMap { Int($0) } ?? defaultValue }

    public func string(_ name: String, _ defaultValue: String) -> String { value(name) ?? defaultValue }

    /// A comma-separated list of integers (`--nprobe 8,16,32`).
    public func ints(_ name: String, _ defaultValue: [Int]) -> [Int] {
        value(name).map { $0.split(separator: ",").compactMap { Int($0) } } ?? defaultValue
    }

    public func flag(_ name: String) -> Bool { arguments.contains(name) }
}

public enum BenchmarkFiles {
    /// The vectors of an `.fvecs` file (each row: an Int32 dimension, then that many float32), as a
    /// matrix. `hugePages`: ask for transparent huge pages for the matrix's storage before it is
    /// touched (fewer TLB misses when a benchmark's random accesses are what it measures).
    public static func fvecs(_ path: String, hugePages: Bool = false) throws -> Matrix {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        return try bytes.withUnsafeBytes { raw -> Matrix in
            guard raw.count >= 4 else { throw BenchmarkError("\(path) is too short for an .fvecs file") }
            let d = Int(raw.loadUnaligned(as: Int32.self))
            guard d > 0, raw.count % (4 + 4 * d) == 0 else { throw BenchmarkError("\(path) is not an .fvecs file of \(d)-d rows") }
            let n = raw.count / (4 + 4 * d)
            var storage = [Float]()
            storage.reserveCapacity(n * d)
            if hugePages && n * d > 1024 {
                let base = UInt(bitPattern: storage.withUnsafeBufferPointer { $0.baseAddress! })
                let start = (base + 4095) & ~4095
                _ = madvise(UnsafeMutableRawPointer(bitPattern: start), n * d * 4 - Int(start - base), MADV_HUGEPAGE)
            }
            storage.append(contentsOf: repeatElement(0, count: n * d))
            storage.withUnsafeMutableBytes { out in
                for i in 0..<n {
                    out.baseAddress!.advanced(by: i * 4 * d).copyMemory(from: raw.baseAddress! + i * (4 + 4 * d) + 4, byteCount: 4 * d)
                }
            }
            return Matrix(dimension: d, storage: storage)
        }
    }

    /// The rows of an `.ivecs` file (ground-truth neighbour ids), as Int64 ids.
    public static func ivecs64(_ path: String) throws -> [[Int64]] {
        try ivecs(path).map { $0.map(Int64.init) }
    }

    /// The rows of an `.ivecs` file (ground-truth neighbour ids).
    public static func ivecs(_ path: String) throws -> [[Int]] {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        return bytes.withUnsafeBytes { raw -> [[Int]] in
            var out: [[Int]] = []
            var o = 0
            while o + 4 <= raw.count {
                let d = Int(raw.loadUnaligned(fromByteOffset: o, as: Int32.self))
                guard d >= 0, o + 4 + 4 * d <= raw.count else { break }
                out.append((0..<d).map { Int(raw.loadUnaligned(fromByteOffset: o + 4 + 4 * $0, as: Int32.self)) })
                o += 4 + 4 * d
            }
            return out
        }
    }
}

public struct BenchmarkError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Wall-clock seconds and the process's CPU seconds (user + system) spent by `body`.
public func measure<R>(_ body: () throws -> R) rethrows -> (result: R, wall: Double, cpu: Double) {
    let cpu0 = processCPUSeconds()
    let t0 = DispatchTime.now().uptimeNanoseconds
    let r = try body()
    let wall = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    return (r, wall, processCPUSeconds() - cpu0)
}

/// Runs `search` for queries 0..<count, single-threaded, `repeats` times: the ids it returned on
/// the first pass, and queries per second by wall-clock and by the process's CPU time.
public func timedQueries(_ count: Int, repeats: Int = 1, _ search: (Int) throws -> [Int]) rethrows -> (found: [[Int]], qps: Double, cpuQPS: Double) {
    var found: [[Int]] = []
    let timed = try measure {
        for pass in 0..<repeats {
            for i in 0..<count {
                let hits = try search(i)
                if pass == 0 { found.append(hits) }
            }
        }
    }
    let searches = Double(count * repeats)
    return (found, searches / timed.wall, searches / timed.cpu)
}

/// Seconds on the monotonic clock.
public func wallSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// CPU seconds of the calling thread: robust to other processes competing for the cores, as they
/// do on a shared machine.
public func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// CPU seconds (user + system) of the process so far.
public func processCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// The share of each query's first `k` true neighbours found among its first `k` results.
public func recall(_ found: [[Int]], truth: [[Int]], k: Int) -> Double {
    var hits = 0
    for (f, t) in zip(found, truth) { hits += Set(f.prefix(k)).intersection(t.prefix(k)).count }
    return Double(hits) / Double(max(1, min(found.count, truth.count) * k))
}

/// The float32 kernel variant this run uses (`FloatKernel.active`: avx512, avx2 or portable), for a
/// benchmark's JSON. Stops the run (exit 2) when `$QUIVER_SIMD` asked for a variant that is not the one
/// running, so that no figure is labelled with a kernel it did not use.
public func activeFloatKernel() -> String {
    if let note = FloatKernel.selectionNote {
        FileHandle.standardError.write(Data("error: \(note)\n".utf8))
        exit(2)
    }
    return FloatKernel.active.rawValue
}

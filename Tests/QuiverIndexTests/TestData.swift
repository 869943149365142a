import Foundation
import QuiverCore
import QuiverTestSupport
@testable import QuiverIndex

/// Real and synthetic data for the index tests.
enum TestData {
    /// The shared evaluation data (see `SharedData`).
    static let sharedData: URL = SharedData.directory.appendingPathComponent("data")

    /// Reads an `.fvecs` file: per vector, int32 LE dimension then that many float32.
    static func fvecs(_ url: URL) throws -> Matrix {
        let data = try Data(contentsOf: url)
        return data.withUnsafeBytes { raw -> Matrix in
            let d = Int(raw.loadUnaligned(fromByteOffset: 0, as: Int32.self).littleEndian)
            let rowBytes = 4 + 4 * d
            let n = raw.count / rowBytes
            var storage = [Float](repeating: 0, count: n * d)
            for r in 0..<n {
                for j in 0..<d {
                    storage[r * d + j] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: r * rowBytes + 4 + 4 * j, as: UInt32.self).littleEndian)
                }
            }
            return Matrix(dimension: d, storage: storage)
        }
    }

    /// Reads an `.ivecs` file: per row, int32 LE count then that many int32.
    static func ivecs(_ url: URL) throws -> [[Int]] {
        let data = try Data(contentsOf: url)
        return data.withUnsafeBytes { raw in
            var rows = [[Int]]()
            var o = 0
            while o + 4 <= raw.count {
                let n = Int(raw.loadUnaligned(fromByteOffset: o, as: Int32.self).littleEndian)
                rows.append((0..<n).map { Int(raw.loadUnaligned(fromByteOffset: o + 4 + 4 * $0, as: Int32.self).littleEndian) })
                o += 4 + 4 * n
            }
            return rows
        }
    }

    struct Bigann: Sendable {
        let base: Matrix
        let queries: Matrix
        let groundTruth: [[Int]]
    }

    static let bigann: Result<Bigann, Error> = Result {
        let dir = sharedData.appendingPathComponent("bigann10k")
        return Bigann(base: try fvecs(dir.appendingPathComponent("bigann10k_base.fvecs")),
                      queries: try fvecs(dir.appendingPathComponent("bigann10k_query.fvecs")),
                      groundTruth: try ivecs(dir.appendingPathComponent("bigann10k_groundtruth.ivecs")))
    }

    /// Gaussian mixture data (seeded): `clusters` random centres, points scattered around them; the kind
    /// of local structure real embeddings have, in any dimension.
    static func clustered(n: Int, dimension d: Int, clusters: Int = 32, seed: UInt64) -> Matrix {
        var rng = SplitMix64(state: seed)
        func gaussian() -> Float {
            let u1 = rng.nextUnitInterval(), u2 = rng.nextUnitInterval()
            return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
        }
        let centres = (0..<clusters * d).map { _ in gaussian() }
        var storage = [Float](repeating: 0, count: n * d)
        for i in 0..<n {
            let c = Int(rng.next() % UInt64(clusters))
            for j in 0..<d { storage[i * d + j] = centres[c * d + j] + 0.35 * gaussian() }
        }
        return Matrix(dimension: d, storage: storage)
    }

    /// recall@k of `found` against the true top-k ids.
    static func recall(_ found: [[Neighbor]], _ truth: [[Int64]], k: Int) -> Double {
        var hit = 0
        for (f, t) in zip(found, truth) {
            let want = Set(t.prefix(k))
            hit += f.prefix(k).filter { want.contains($0.id) }.count
        }
        return Double(hit) / Double(truth.count * k)
    }
}

/// A read-only memory mapping of a file, the way the segment manager will open a segment.
final class ReadOnlyMapping: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer

    init(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw CocoaError(.fileReadNoSuchFile) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw CocoaError(.fileReadUnknown) }
        let size = Int(st.st_size)
        guard let p = mmap(nil, max(1, size), PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw CocoaError(.fileReadUnknown)
        }
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), max(1, bytes.count)) }
}

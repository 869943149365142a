import Foundation
import QuiverCore
import Testing
@testable import QuiverIndex

struct IVFPQCodecTests {
    static func sample(metric: Metric = .l2, sparseIds: Bool = true) throws -> (IVFPQIndex, Matrix) {
        let all = TestData.clustered(n: 1550, dimension: 16, seed: 81)
        let data = Matrix(dimension: 16, storage: Array(all.storage[0 ..< 1500 * 16]))
        let index = try IVFPQIndex(dimension: 16, metric: metric, parameters: IVFPQParameters(nlist: 12, subspaces: 4, nprobe: 3, rerank: 0))
        try index.train(data)
        let ids = (0..<1500).map { sparseIds ? Int64($0) * 3 - 100 : Int64($0) }
        try index.add(data, ids: ids)
        for id in stride(from: ids[0], to: ids[1499], by: 30) { index.markDeleted(id) }
        return (index, Matrix(dimension: 16, storage: Array(all.storage[(1500 * 16)...])))
    }

    static func results(_ index: IVFPQIndex, _ queries: Matrix) throws -> [[Neighbor]] {
        try index.search(queries, k: 10, allow: nil) + index.search(queries, k: 5, allow: .predicate { $0 % 2 == 0 })
    }

    /// encode -> decode (from an array and from a mapped file) -> identical results, identical
    /// re-encoding, and the loaded index keeps working (adds, tombstones).
    @Test(arguments: [(Metric.l2, true), (.cosine, false), (.dot, true)])
    func roundTrip(metric: Metric, sparseIds: Bool) throws {
        let (index, queries) = try Self.sample(metric: metric, sparseIds: sparseIds)
        let bytes = try IVFPQCodec.encode(index)
        let loaded = try IVFPQCodec.decode(bytes)
        #expect(try Self.results(loaded, queries) == Self.results(index, queries))
        #expect(try IVFPQCodec.encode(loaded) == bytes)
        #expect(loaded.liveCount == index.liveCount && loaded.nprobe == 3 && loaded.listSizes == index.listSizes)

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ivfpq-\(UUID().uuidString).qvi").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let mapping = try ReadOnlyMapping(path: path)
        let mapped = try IVFPQCodec.decode(mapping.bytes)
        #expect(try Self.results(mapped, queries) == Self.results(index, queries))

        let victim = try mapped.search(queries[row: 0], k: 1)[0].id
        #expect(mapped.markDeleted(victim))
        #expect(try mapped.search(queries[row: 0], k: 10).allSatisfy { $0.id != victim })
        try mapped.add(Matrix(dimension: 16, storage: Array(queries.storage[0 ..< 16])), ids: [9_999_999])
        #expect(mapped.contains(9_999_999))
        let q0 = queries[row: 0]
        #expect(try q0.withUnsafeBufferPointer { try mapped.search($0, k: 1, nprobe: 12, rerank: 0, allow: nil, context: IVFPQSearchContext()) }.count == 1)
    }

    @Test func emptyAndUntrained() throws {
        let untrained = try IVFPQIndex(dimension: 8, metric: .l2, parameters: IVFPQParameters(nlist: 2, subspaces: 2))
        #expect(throws: IndexError.self) { try IVFPQCodec.encode(untrained) }
        try untrained.train(TestData.clustered(n: 300, dimension: 8, seed: 3))
        let loaded = try IVFPQCodec.decode(IVFPQCodec.encode(untrained))
        #expect(loaded.count == 0 && loaded.isTrained)
        #expect(try loaded.search([Float](repeating: 1, count: 8), k: 3).isEmpty)
    }

    /// Every truncation, an extra byte, and bit flips everywhere are rejected with an error, never a
    /// crash (padding bytes aside); a flip with checksums disabled is still caught by the structure
    /// checks wherever it breaks a rule.
    @Test func damagedInputIsRejected() throws {
        let (index, _) = try Self.sample()
        let bytes = try IVFPQCodec.encode(index)
        for cut in Array(0..<300) + stride(from: 300, to: bytes.count, by: 211).map({ $0 }) {
            #expect(throws: IndexError.self) { try IVFPQCodec.decode(Array(bytes[0..<cut])) }
        }
        #expect(throws: IndexError.self) { try IVFPQCodec.decode(bytes + [0]) }
        let l = IVFPQCodec.layout(dimension: 16, nlist: 12, m: 4, count: 1500, deleted: index.deletedCount, rotation: false)!
        func isPadding(_ at: Int) -> Bool {
            (208..<252).contains(at) || (0..<6).contains { i in
                let end = l.offsets[i] + l.lengths[i]
                return i < 5 && at >= end && at < l.offsets[i + 1]
            }
        }
        var rng = SplitMix64(state: 7)
        for _ in 0..<400 {
            var damaged = bytes
            let at = Int(rng.next() % UInt64(bytes.count))
            damaged[at] ^= UInt8(1 << (rng.next() % 8))
            if case .success = Result(catching: { try IVFPQCodec.decode(damaged) }) {
                #expect(isPadding(at), "a flip at byte \(at) was accepted")
            }
        }
        // Hostile but checksummed headers: huge counts and sizes are rejected before allocating.
        for (offset, value) in [(48, UInt64.max), (48, UInt64(1) << 40), (56, UInt64(1_000_000)), (28, UInt64(0)), (32, UInt64(3))] {
            var h = bytes
            withUnsafeBytes(of: value.littleEndian) { v in
                let width = offset == 28 || offset == 32 ? 4 : 8
                for i in 0..<width { h[offset + i] = v[i] }
            }
            let crc = CRC32C.checksum(h[0..<252])
            withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { h[252 + i] = $0[i] } }
            #expect(throws: IndexError.self) { try IVFPQCodec.decode(h, verify: .structure) }
        }
        // Duplicate ids with valid checksums are a structural error.
        var dup = bytes
        let ids = l.offsets[4]
        for i in 0..<8 { dup[ids + 8 + i] = dup[ids + i] }
        #expect(throws: IndexError.self) { try IVFPQCodec.decode(dup, verify: .structure) }
        #expect(throws: IndexError.self) { try IVFPQCodec.decode(dup) }
    }
}

import Foundation
import QuiverCore
import Testing
@testable import QuiverIndex

struct HNSWCodecTests {
    static func sample(n: Int = 1500, d: Int = 24, metric: Metric = .cosine, sparseIds: Bool = true) throws -> (HNSWIndex, Matrix) {
        let all = TestData.clustered(n: n + 50, dimension: d, seed: 11)
        let data = Matrix(dimension: d, storage: Array(all.storage[0 ..< n * d]))
        let index = try HNSWIndex(dimension: d, metric: metric, parameters: HNSWParameters(m: 8, efConstruction: 64, seed: 5, buildThreads: 1))
        try index.add(data, ids: (0..<n).map { sparseIds ? Int64($0) * 3 - 100 : Int64($0) })
        for id in stride(from: Int64(-100), to: Int64(n * 3 - 100), by: 30) { index.markDeleted(id) }
        return (index, Matrix(dimension: d, storage: Array(all.storage[(n * d)...])))
    }

    static func results(_ index: HNSWIndex, _ queries: Matrix) throws -> [[Neighbor]] {
        try index.search(queries, k: 10, allow: nil) + index.search(queries, k: 5, allow: .predicate { $0 % 2 == 0 })
    }

    /// serialize -> load (copy, and in place over a mapped file) -> identical search results, and the
    /// loaded index keeps working: tombstones, adds, re-encoding.
    @Test(arguments: [true, false])
    func roundTrip(sparseIds: Bool) throws {
        let (index, queries) = try Self.sample(sparseIds: sparseIds)
        let bytes = HNSWCodec.encode(index)
        #expect(bytes.count == HNSWCodec.encodedSize(index))
        let copied = try HNSWCodec.decode(bytes)
        #expect(try Self.results(copied, queries) == Self.results(index, queries))
        #expect(HNSWCodec.encode(copied) == bytes)

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hnsw-\(UUID().uuidString).qvh").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let mapping = try ReadOnlyMapping(path: path)
        let mapped = try HNSWCodec.decode(mapping.bytes, inPlace: mapping)
        #expect(mapped.backing != nil)
        #expect(try Self.results(mapped, queries) == Self.results(index, queries))
        #expect(mapped.liveCount == index.liveCount)

        // Tombstones on the mapped index (owned memory), then adds (which copy out of the mapping).
        let victim = try mapped.search(queries[row: 0], k: 1)[0].id
        #expect(mapped.markDeleted(victim))
        #expect(try mapped.search(queries[row: 0], k: 10).allSatisfy { $0.id != victim })
        let more = TestData.clustered(n: 300, dimension: 24, seed: 13)
        let newIds = (0..<300).map { Int64(1_000_000 + $0) }
        try mapped.add(more, ids: newIds)
        #expect(mapped.backing == nil)
        #expect(mapped.count == index.count + 300)
        let hit = try mapped.search(more[row: 17], k: 1)
        #expect(hit.first?.id == 1_000_017)
    }

    @Test func emptyIndexRoundTrips() throws {
        let empty = try HNSWIndex(dimension: 4, metric: .l2)
        let loaded = try HNSWCodec.decode(HNSWCodec.encode(empty))
        #expect(loaded.count == 0)
        #expect(try loaded.search([1, 2, 3, 4], k: 3).isEmpty)
        try loaded.add(Matrix(dimension: 4, rows: [[1, 2, 3, 4]]), ids: [0])
        #expect(try loaded.search([1, 2, 3, 4], k: 3).map(\.id) == [0])
    }

    /// Every truncation and a bit flip in every region is rejected with an error, never a crash.
    @Test func damagedInputIsRejected() throws {
        let (index, _) = try Self.sample(n: 300, d: 8)
        let bytes = HNSWCodec.encode(index)
        for cut in Array(0..<300) + stride(from: 300, to: bytes.count, by: 97).map({ $0 }) {
            #expect(throws: IndexError.self) { try HNSWCodec.decode(Array(bytes[0..<cut])) }
        }
        #expect(throws: IndexError.self) { try HNSWCodec.decode(bytes + [0]) }
        var rng = SplitMix64(state: 99)
        for _ in 0..<400 {
            var damaged = bytes
            let at = Int(rng.next() % UInt64(bytes.count))
            damaged[at] ^= UInt8(1 << (rng.next() % 8))
            // Flipping a padding byte is harmless; everything else must be caught.
            let result = Result { try HNSWCodec.decode(damaged) }
            if case .success = result {
                #expect(isPadding(at, index), "a flip at byte \(at) was accepted")
            }
        }
    }

    func isPadding(_ at: Int, _ index: HNSWIndex) -> Bool {
        guard let l = HNSWCodec.layout(count: index.count, elementSize: index.elementSize, upperWords: index.upperWords) else { return false }
        if (240..<252).contains(at) || (21..<24).contains(at) || (60..<64).contains(at) { return false }
        for i in 0..<6 where at >= l.offsets[i] && at < l.offsets[i] + l.lengths[i] { return false }
        return at >= HNSWCodec.headerSize
    }

    /// Hostile but checksummed input: header fields and links rewritten with valid CRCs must still be
    /// rejected by the structural checks, without huge allocations or out-of-bounds reads.
    @Test func hostileFieldsWithValidChecksums() throws {
        let (index, _) = try Self.sample(n: 300, d: 8)
        let bytes = HNSWCodec.encode(index)
        func patched(_ edit: (inout [UInt8]) -> Void) -> [UInt8] {
            var b = bytes
            edit(&b)
            // Recompute every section CRC and the header CRC.
            let l = HNSWCodec.layout(count: index.count, elementSize: index.elementSize, upperWords: index.upperWords)!
            for i in 0..<6 {
                let crc = CRC32C.checksum(b[l.offsets[i] ..< l.offsets[i] + l.lengths[i]])
                put32(&b, 96 + 24 * i + 16, crc)
            }
            put32(&b, 252, CRC32C.checksum(b[0..<252]))
            return b
        }
        func put32(_ b: inout [UInt8], _ o: Int, _ v: UInt32) { for i in 0..<4 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
        func put64(_ b: inout [UInt8], _ o: Int, _ v: UInt64) { for i in 0..<8 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
        let l = HNSWCodec.layout(count: index.count, elementSize: index.elementSize, upperWords: index.upperWords)!
        let hostile: [(String, [UInt8])] = [
            ("count 2^40", patched { put64(&$0, 48, 1 << 40) }),
            ("count 2^64-1", patched { put64(&$0, 48, UInt64.max) }),
            ("upperWords huge", patched { put64(&$0, 64, UInt64.max / 2) }),
            ("dimension 0", patched { put32(&$0, 24, 0) }),
            ("dimension huge", patched { put32(&$0, 24, UInt32.max) }),
            ("M 0", patched { put32(&$0, 28, 0) }),
            ("M0 != 2M", patched { put32(&$0, 32, 17) }),
            ("metric 9", patched { $0[20] = 9 }),
            ("entry point beyond count", patched { put32(&$0, 56, 5000) }),
            ("maxLevel 200", patched { put32(&$0, 44, 200) }),
            ("deletedCount wrong", patched { put64(&$0, 72, 1) }),
            ("link out of range", patched { put32(&$0, l.offsets[0] + 4, 1_000_000) }),
            ("link count above M0", patched { put32(&$0, l.offsets[0], 1000) }),
            ("upper offset overrun", patched { b in
                let s = (0..<index.count).first { index.levels[$0] > 0 }!
                put32(&b, l.offsets[3] + 4 * s, UInt32(index.upperWords))
            }),
            ("level above maxLevel", patched { $0[l.offsets[2]] = 60 }),
            ("duplicate id", patched { b in for i in 0..<8 { b[l.offsets[1] + 8 + i] = b[l.offsets[1] + i] } }),
            ("section offset moved", patched { put64(&$0, 96 + 24, UInt64(l.offsets[1] + 64)) }),
            ("version 2", patched { put32(&$0, 8, 2) }),
        ]
        for (name, b) in hostile {
            #expect(throws: IndexError.self, "\(name)") { try HNSWCodec.decode(b) }
        }
        // The patching itself is sound: an unpatched copy decodes.
        _ = try HNSWCodec.decode(patched { _ in })
        do {
            _ = try HNSWCodec.decode(patched { put32(&$0, 8, 2) })
        } catch let e as IndexError {
            #expect(e.code == .unsupportedVersion)
        }
    }

    /// A graph whose links are all cut (every list emptied, checksums fixed) reaches only its entry
    /// point: search must still return the exact top-k, through the exact-scan fallback.
    @Test func unreachableNodesAreFoundByTheFallbackScan() throws {
        let n = 400, d = 8
        let all = TestData.clustered(n: n + 20, dimension: d, seed: 21)
        let data = Matrix(dimension: d, storage: Array(all.storage[0 ..< n * d]))
        let queries = Matrix(dimension: d, storage: Array(all.storage[(n * d)...]))
        let index = try HNSWIndex(dimension: d, metric: .l2, parameters: HNSWParameters(m: 8, efConstruction: 32, buildThreads: 1))
        try index.add(data, ids: (0..<Int64(n)).map { $0 })
        var b = HNSWCodec.encode(index)
        let l = HNSWCodec.layout(count: n, elementSize: index.elementSize, upperWords: index.upperWords)!
        for s in 0..<n { for i in 0..<4 { b[l.offsets[0] + s * index.elementSize + i] = 0 } }
        var w = 0
        while w < index.upperWords {
            for i in 0..<4 { b[l.offsets[4] + 4 * w + i] = 0 }
            w += index.m + 1
        }
        func put32(_ o: Int, _ v: UInt32) { for i in 0..<4 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
        for i in 0..<6 { put32(96 + 24 * i + 16, CRC32C.checksum(b[l.offsets[i] ..< l.offsets[i] + l.lengths[i]])) }
        put32(252, CRC32C.checksum(b[0..<252]))
        let cut = try HNSWCodec.decode(b)
        let flat = try FlatIndex(dimension: d, metric: .l2)
        try flat.add(data, ids: (0..<Int64(n)).map { $0 })
        let found = try cut.search(queries, k: 10, allow: nil)
        let exact = try flat.search(queries, k: 10, allow: nil)
        #expect(found.map { $0.map(\.id) } == exact.map { $0.map(\.id) })
        let filtered = try cut.search(queries, k: 10, allow: .predicate { $0 % 3 == 0 })
        #expect(filtered == (try flat.search(queries, k: 10, allow: .predicate { $0 % 3 == 0 })))
    }
}

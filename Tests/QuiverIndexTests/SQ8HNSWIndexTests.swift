import CQuiverKernels
import Foundation
import QuiverCore
import Testing
@testable import QuiverIndex

/// The sq8 kernels against their scalar twin, the quantizer's error bound, and the sq8 HNSW index
/// against the flat oracle (recall, exact re-scored distances, filters, tombstones, growth).
struct SQ8HNSWIndexTests {
    static let kernels = [QK_KERNEL_PORTABLE, QK_KERNEL_AVX2, QK_KERNEL_AVX512_VNNI].filter { qk_kernel_supported($0) != 0 }

    /// Every vectorized kernel returns the scalar twin's float bit for bit (the summation order of
    /// qk_sq8.h), for both query forms and dimensions around the 16-lane blocks; the twin is within
    /// float rounding of the same sum in double.
    @Test func kernelsMatchScalarTwin() {
        var rng = SplitMix64(seed: 17)
        for d in [1, 7, 15, 16, 17, 31, 48, 64, 80, 100, 128, 200, 384] {
            let w = (0..<d).map { _ in Float(rng.nextUnitInterval() * 2 - 1) }
            let scale = (0..<d).map { _ in Float(rng.nextUnitInterval() * 0.01) }
            let codes = (0..<(4 * d)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            for l2 in [false, true] {
                w.withUnsafeBufferPointer { wp in
                    scale.withUnsafeBufferPointer { sp in
                        var q = qk_sq8_query(w: wp.baseAddress, scale: l2 ? sp.baseAddress : nil, bias: 0.25, d: Int32(d))
                        codes.withUnsafeBufferPointer { cp in
                            for v in 0..<4 {
                                let code = cp.baseAddress! + v * d
                                let reference = qk_sq8_distance_reference(&q, code)
                                var exact = 0.0
                                for i in 0..<d {
                                    if l2 {
                                        let t = Double(w[i]) - Double(scale[i]) * Double(code[i])
                                        exact += t * t
                                    } else {
                                        exact += Double(w[i]) * Double(code[i])
                                    }
                                }
                                if !l2 { exact = 0.25 - exact }
                                #expect(abs(Double(reference) - exact) <= 1e-4 * max(1, abs(exact)), "d \(d) l2 \(l2)")
                                for k in Self.kernels {
                                    #expect(qk_sq8_distance(Int32(k.rawValue), &q, code).bitPattern == reference.bitPattern,
                                            "kernel \(k.rawValue) d \(d) l2 \(l2)")
                                }
                            }
                            // The gathered form equals one call per vector.
                            let slots: [UInt32] = [3, 0, 2, 1, 3]
                            for k in Self.kernels {
                                var out = [Float](repeating: 0, count: slots.count)
                                qk_sq8_distances(Int32(k.rawValue), &q, cp.baseAddress!, d, slots, Int32(slots.count), &out)
                                for (j, s) in slots.enumerated() {
                                    #expect(out[j].bitPattern == qk_sq8_distance_reference(&q, cp.baseAddress! + Int(s) * d).bitPattern)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// A value inside its dimension's range decodes within half a step; outside, it clips to the end.
    @Test func quantizerErrorBound() {
        let d = 8, n = 500
        let all = TestData.clustered(n: n, dimension: d, seed: 3)
        for training in [SQ8Training.minMax, .clip(0.001)] {
            let q = all.storage.withUnsafeBufferPointer { SQ8Quantizer(training: training, vectors: $0.baseAddress!, rows: n, dimension: d) }
            for r in 0..<n {
                for j in 0..<d {
                    let x = all.storage[r * d + j]
                    let lo = q.offsets[j], hi = q.offsets[j] + 255 * q.scales[j]
                    let clipped = min(max(x, lo), hi)
                    #expect(abs(q.decode(q.code(x, j), j) - clipped) <= q.scales[j] * 0.5001 + 1e-6)
                }
            }
        }
        // A constant dimension has step 0 and decodes exactly.
        let constant = [Float](repeating: 2.5, count: 3 * 2)
        let q = constant.withUnsafeBufferPointer { SQ8Quantizer(training: .minMax, vectors: $0.baseAddress!, rows: 3, dimension: 2) }
        #expect(q.scales == [0, 0] && q.decode(q.code(2.5, 0), 0) == 2.5)
    }

    static func build(_ metric: Metric, n: Int, d: Int, ids: [Int64]) throws -> (SQ8HNSWIndex, FlatIndex, Matrix) {
        let all = TestData.clustered(n: n + 100, dimension: d, seed: 11)
        let data = Matrix(dimension: d, storage: Array(all.storage[0 ..< n * d]))
        let queries = Matrix(dimension: d, storage: Array(all.storage[(n * d)...]))
        let float = try HNSWIndex(dimension: d, metric: metric, parameters: HNSWParameters(efSearch: 64))
        try float.add(data, ids: ids)
        let flat = try FlatIndex(dimension: d, metric: metric)
        try flat.add(data, ids: ids)
        return (SQ8HNSWIndex(quantizing: float), flat, queries)
    }

    /// Recall@10 against the exact oracle, and every returned distance is the exact one (re-scored).
    @Test(arguments: Metric.allCases)
    func matchesFlatOracle(metric: Metric) throws {
        let n = 3000, d = 40
        let ids = (0..<n).map { Int64($0) * 3 + 500 }
        let (sq8, flat, queries) = try Self.build(metric, n: n, d: d, ids: ids)
        let found = try sq8.search(queries, k: 10, allow: nil)
        let truth = try flat.search(queries, k: 10, allow: nil)
        let recall = TestData.recall(found, truth.map { $0.map(\.id) }, k: 10)
        print("sq8 \(metric) recall@10 = \(recall)")
        #expect(recall >= 0.95)
        for (row, list) in found.enumerated() {
            #expect(list.count == 10)
            #expect(zip(list, list.dropFirst()).allSatisfy { $0.distance <= $1.distance })
            let exact = try flat.search(queries[row: row], k: n)
            let byId = Dictionary(uniqueKeysWithValues: exact.map { ($0.id, $0.distance) })
            for nb in list { #expect(abs(nb.distance - byId[nb.id]!) <= 1e-4 * max(1, abs(nb.distance))) }
        }
        #expect(sq8.hotBytes < sq8.coldBytes + sq8.hotBytes && sq8.memoryBytes == sq8.hotBytes + sq8.coldBytes)
    }

    /// Tombstones and filters: results are live and allowed, and a selective filter is exact.
    @Test func filtersAndTombstones() throws {
        let n = 2000, d = 24
        let ids = (0..<n).map { Int64($0) }
        let (sq8, flat, queries) = try Self.build(.l2, n: n, d: d, ids: ids)
        for id in stride(from: 0, to: n, by: 3) {
            #expect(sq8.markDeleted(Int64(id)))
            _ = flat.markDeleted(Int64(id))
        }
        #expect(!sq8.markDeleted(0) && !sq8.contains(0) && sq8.contains(1))
        #expect(sq8.liveCount == flat.liveCount)
        var bits = Bitset(capacity: n)
        for id in stride(from: 1, to: n, by: 50) { bits.insert(id) }
        let few = AllowFilter.bitset(bits)
        let found = try sq8.search(queries, k: 10, allow: few)
        let truth = try flat.search(queries, k: 10, allow: few)
        #expect(found.map { $0.map(\.id) } == truth.map { $0.map(\.id) })
        let odd = AllowFilter.predicate { $0 % 2 == 1 }
        for list in try sq8.search(queries, k: 10, allow: odd) {
            #expect(list.count == 10 && list.allSatisfy { $0.id % 2 == 1 && $0.id % 3 != 0 })
        }
    }

    /// `add` grows the graph through the float index and retrains the ranges; `copy` is independent.
    @Test func addRetrainsAndCopyIsIndependent() throws {
        let n = 1500, d = 32
        let (sq8, _, queries) = try Self.build(.cosine, n: n, d: d, ids: (0..<n).map { Int64($0) })
        let before = sq8.quantizer
        let more = TestData.clustered(n: 500, dimension: d, seed: 99).storage.map { $0 * 3 + 1 }
        let copy = sq8.copy()
        try copy.add(Matrix(dimension: d, storage: more), ids: (n..<n + 500).map { Int64($0) })
        #expect(copy.count == n + 500 && sq8.count == n)
        #expect(copy.quantizer.offsets != before.offsets)
        #expect(throws: IndexError.self) { try copy.add(Matrix(dimension: d, storage: Array(more[0..<d])), ids: [0]) }
        #expect(copy.count == n + 500)
        let flat = try FlatIndex(dimension: d, metric: .cosine)
        copy.forEachStoredVector { id, _, v in try? flat.add(Matrix(dimension: d, storage: Array(v)), ids: [id]) }
        let recall = TestData.recall(try copy.search(queries, k: 10, allow: nil), try flat.search(queries, k: 10, allow: nil).map { $0.map(\.id) }, k: 10)
        #expect(recall >= 0.95)
        #expect(try sq8.search(queries, k: 10, allow: nil).allSatisfy { $0.allSatisfy { $0.id < n } })
    }

    /// The link width follows the count (16 bits below 65,536 nodes); the same graph in either width
    /// answers every search identically (ids and distances, with tombstones and filters), converts
    /// back to the float32 graph it came from byte for byte, and the 16-bit layout is smaller by
    /// exactly the halved links.
    @Test func linkWidthsAreTheSameGraph() throws {
        #expect(SQ8HNSWIndex.linkWidth(count: 65_535) == 2 && SQ8HNSWIndex.linkWidth(count: 65_536) == 4)
        let n = 2500, d = 16
        let all = TestData.clustered(n: n + 50, dimension: d, seed: 21)
        let float = try HNSWIndex(dimension: d, metric: .l2, parameters: HNSWParameters(m: 6, efSearch: 40))
        try float.add(Matrix(dimension: d, storage: Array(all.storage[0 ..< n * d])), ids: (0..<n).map { Int64($0) * 2 })
        let queries = Matrix(dimension: d, storage: Array(all.storage[(n * d)...]))
        let narrow = SQ8HNSWIndex(quantizing: float)
        let wide = SQ8HNSWIndex(quantizing: float, training: .standard, linkWidth: 4)
        #expect(narrow.linkWidth == 2 && wide.linkWidth == 4 && narrow.topLevel > 0)
        #expect(narrow.elementSize == (2 * (1 + 12) + d + 3) / 4 * 4 && wide.elementSize == 4 * (1 + 12) + d)
        #expect(wide.hotBytes - narrow.hotBytes == n * (wide.elementSize - narrow.elementSize) + 2 * narrow.storage.upperWords)
        #expect(HNSWCodec.encode(narrow.floatIndex()) == HNSWCodec.encode(float))
        #expect(HNSWCodec.encode(wide.floatIndex()) == HNSWCodec.encode(float))
        func same(_ allow: AllowFilter?) throws {
            let a = try narrow.search(queries, k: 10, allow: allow), b = try wide.search(queries, k: 10, allow: allow)
            #expect(a.map { $0.map(\.id) } == b.map { $0.map(\.id) } && a.map { $0.map(\.distance) } == b.map { $0.map(\.distance) })
            #expect(a.allSatisfy { $0.count == 10 })
        }
        try same(nil)
        for id in stride(from: 0, to: 2 * n, by: 10) {
            #expect(narrow.markDeleted(Int64(id)) && wide.markDeleted(Int64(id)))
        }
        try same(nil)
        try same(.predicate { $0 % 4 == 2 })
        // Growing a forced-wide graph chooses the width from the count again.
        try wide.add(Matrix(dimension: d, storage: Array(all.storage[0 ..< d])), ids: [1])
        #expect(wide.linkWidth == 2 && wide.count == n + 1)
    }

    @Test func refusesBadInput() throws {
        let (sq8, _, _) = try Self.build(.l2, n: 100, d: 8, ids: (0..<100).map { Int64($0) })
        #expect(throws: IndexError.self) { try sq8.search([Float](repeating: 0, count: 7), k: 1) }
        #expect(throws: IndexError.self) { try sq8.search([Float](repeating: 0, count: 8), k: -1) }
        #expect(throws: IndexError.self) { try sq8.search(Matrix(dimension: 8, storage: [Float](repeating: 0, count: 8)), k: 1, parameters: SearchParameters(efSearch: 0)) }
        #expect(try sq8.search([Float](repeating: 0, count: 8), k: 0).isEmpty)
        let empty = SQ8HNSWIndex(quantizing: try HNSWIndex(dimension: 8, metric: .l2))
        #expect(try empty.search([Float](repeating: 0, count: 8), k: 3).isEmpty)
    }
}

/// The sq8 segment codec: round trips (copy and in place over a mapped file), and damaged input refused.
struct SQ8HNSWCodecTests {
    static func results(_ index: SQ8HNSWIndex, _ queries: Matrix) throws -> [[Int64]] {
        try index.search(queries, k: 10, allow: nil).map { $0.map(\.id) }
    }

    @Test(arguments: [(SQ8Training.minMax, 2), (.clip(0.01), 2), (.minMax, 4), (.clip(0.01), 4)])
    func roundTrip(training: SQ8Training, linkWidth: Int) throws {
        let n = 800, d = 20
        let all = TestData.clustered(n: n + 20, dimension: d, seed: 5)
        let float = try HNSWIndex(dimension: d, metric: .cosine)
        try float.add(Matrix(dimension: d, storage: Array(all.storage[0 ..< n * d])), ids: (0..<n).map { Int64($0) * 5 })
        _ = float.markDeleted(10)
        let index = SQ8HNSWIndex(quantizing: float, training: training, linkWidth: linkWidth)
        let queries = Matrix(dimension: d, storage: Array(all.storage[(n * d)...]))
        let bytes = SQ8HNSWCodec.encode(index)
        #expect(bytes.count == SQ8HNSWCodec.encodedSize(index))
        #expect(bytes[8] == 2 && bytes[22] == UInt8(linkWidth))
        let copied = try SQ8HNSWCodec.decode(bytes)
        #expect(copied.linkWidth == linkWidth)
        #expect(copied.training == training && copied.deletedCount == 1 && !copied.contains(10))
        #expect(try Self.results(copied, queries) == Self.results(index, queries))
        #expect(SQ8HNSWCodec.encode(copied) == bytes)

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sq8-\(UUID().uuidString).qvh").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let mapping = try ReadOnlyMapping(path: path)
        let mapped = try SQ8HNSWCodec.decode(mapping.bytes, inPlace: mapping)
        #expect(mapped.storage.backing != nil)
        #expect(mapped.memoryBytes == mapped.hotBytes && copied.memoryBytes == copied.hotBytes + copied.coldBytes)
        #expect(try Self.results(mapped, queries) == Self.results(index, queries))
        // Grows out of the mapping.
        try mapped.add(Matrix(dimension: d, storage: Array(all.storage[0 ..< d])), ids: [1])
        #expect(mapped.count == n + 1 && mapped.storage.backing == nil)
    }

    /// A file of format version 1 (written by the build before 16-bit links: `tools/fuzz/corpus`'s
    /// `*-v1.sq8`) opens with 32-bit links, searches like the same graph written today, and is
    /// rewritten as version 2 with the width its count chooses.
    @Test func versionOneFilesOpen() throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tools/fuzz/corpus/segment-hnsw")
        for name in ["cosine-dense-v1.sq8", "l2-sparse-deleted-clip-v1.sq8"] {
            let bytes = try [UInt8](Data(contentsOf: corpus.appendingPathComponent(name)))
            #expect(bytes[8] == 1 && bytes[22] == 0)
            let old = try SQ8HNSWCodec.decode(bytes)
            #expect(old.linkWidth == 4 && old.count > 0)
            let rewritten = try SQ8HNSWCodec.decode(SQ8HNSWCodec.encode(old))
            let narrow = try SQ8HNSWCodec.decode(SQ8HNSWCodec.encode(SQ8HNSWIndex(quantizing: old.floatIndex(), training: old.training)))
            #expect(rewritten.linkWidth == 4 && narrow.linkWidth == 2)
            let d = old.dimension
            let queries = Matrix(dimension: d, storage: (0 ..< 5 * d).map { Float(($0 * 7) % 11) - 5 })
            let expected = try old.search(queries, k: 5, allow: nil)
            #expect(try rewritten.search(queries, k: 5, allow: nil) == expected && narrow.search(queries, k: 5, allow: nil) == expected)
        }
    }

    /// The link-width byte and 16-bit links are checked: a link at or beyond the count, a width the
    /// version does not allow, 16-bit links for 65,536 nodes or more, and a later version are refused.
    @Test func linkWidthChecked() throws {
        let n = 300, d = 8
        let float = try HNSWIndex(dimension: d, metric: .l2)
        try float.add(TestData.clustered(n: n, dimension: d, seed: 4), ids: (0..<n).map { Int64($0) })
        let index = SQ8HNSWIndex(quantizing: float)
        let bytes = SQ8HNSWCodec.encode(index)
        #expect(index.linkWidth == 2)
        /// `bytes` with `patch` applied and every checksum recomputed: only the structural checks can refuse it.
        func resealed(_ patch: (inout [UInt8]) -> Void) -> [UInt8] {
            var b = bytes
            patch(&b)
            let section0 = 384, end = 380
            let crc0 = b.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[section0 ..< section0 + n * index.elementSize])) }
            withUnsafeBytes(of: crc0.littleEndian) { for i in 0..<4 { b[104 + 16 + i] = $0[i] } }
            let crc = b.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<end])) }
            withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { b[end + i] = $0[i] } }
            return b
        }
        func refused(_ b: [UInt8], _ kind: IndexError.Code, at offset: Int) {
            do {
                _ = try SQ8HNSWCodec.decode(b)
                Issue.record("accepted; expected \(kind) at \(offset)")
            } catch let e as IndexError {
                #expect(e.code == kind && e.offset == offset, "\(e)")
            } catch { Issue.record("\(error)") }
        }
        #expect(try SQ8HNSWCodec.decode(resealed { _ in }).count == n)
        // Node 7's first link (its count is >= 1) set to the count, then to 0xFFFF.
        let link = 384 + 7 * index.elementSize + 2
        #expect(bytes[link - 2] > 0)
        refused(resealed { $0[link] = UInt8(n & 0xFF); $0[link + 1] = UInt8(n >> 8) }, .corrupt, at: link)
        refused(resealed { $0[link] = 0xFF; $0[link + 1] = 0xFF }, .corrupt, at: link)
        // A link count above M0 in 16 bits.
        refused(resealed { $0[link - 1] = 1 }, .corrupt, at: link - 2)
        for w: UInt8 in [0, 1, 3, 8] { refused(resealed { $0[22] = w }, .corrupt, at: 22) }
        refused(resealed { $0[23] = 1 }, .corrupt, at: 23)
        refused(resealed { $0[8] = 1 }, .corrupt, at: 22)
        refused(resealed { $0[8] = 3 }, .unsupportedVersion, at: 8)
        // 16-bit links with a count of 65,536: refused before the sizes are compared.
        refused(resealed { $0[48] = 0; $0[49] = 0; $0[50] = 1 }, .corrupt, at: 22)
    }

    /// Every single-byte change of the header, a flip in each section, and every truncation point
    /// sampled are refused with IndexError (never a crash or a silently different index), in both
    /// link widths.
    @Test(arguments: [2, 4])
    func damagedInputRefused(linkWidth: Int) throws {
        let n = 200, d = 8
        let float = try HNSWIndex(dimension: d, metric: .l2)
        try float.add(TestData.clustered(n: n, dimension: d, seed: 9), ids: (0..<n).map { Int64($0) })
        let bytes = SQ8HNSWCodec.encode(SQ8HNSWIndex(quantizing: float, training: .standard, linkWidth: linkWidth))
        for i in 0..<SQ8HNSWCodec.headerSize {
            var b = bytes
            b[i] ^= 0x5A
            #expect(throws: IndexError.self) { try SQ8HNSWCodec.decode(b) }
        }
        for i in stride(from: SQ8HNSWCodec.headerSize, to: bytes.count, by: 97) {
            var b = bytes
            b[i] ^= 0x01
            // Padding bytes are covered by no checksum; any other change is caught.
            if (try? SQ8HNSWCodec.decode(b)) != nil { #expect(SQ8HNSWCodec.encode(try SQ8HNSWCodec.decode(b)) != b) }
        }
        for cut in stride(from: 0, to: bytes.count, by: 61) {
            #expect(throws: IndexError.self) { try SQ8HNSWCodec.decode(Array(bytes[0..<cut])) }
        }
        #expect(throws: IndexError.self) { try SQ8HNSWCodec.decode(HNSWCodec.encode(float)) }
    }
}

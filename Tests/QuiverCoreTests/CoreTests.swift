import Testing
@testable import QuiverCore

struct CRC32CTests {
    @Test func checkValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    @Test func incrementalEqualsWhole() {
        var rng = SystemRandomNumberGenerator()
        let data = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let whole = CRC32C.checksum(data)
        for split in [0, 1, 7, 8, 9, 500, 999, 1000] {
            let a = data[..<split].withUnsafeBytes { CRC32C.checksum($0) }
            let b = data[split...].withUnsafeBytes { CRC32C.update(a, $0) }
            #expect(b == whole, "split at \(split)")
        }
    }
}

struct DistanceKernelTests {
    @Test func simdMatchesScalarOnEveryLength() {
        var rng = SystemRandomNumberGenerator()
        for n in 0...1000 {
            let a = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
            let b = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    let pa0 = pa.baseAddress ?? UnsafePointer(bitPattern: 8)!, pb0 = pb.baseAddress ?? UnsafePointer(bitPattern: 8)!
                    let d1 = DistanceKernels.dot(pa0, pb0, n), d0 = DistanceKernels.scalarDot(pa0, pb0, n)
                    let l1 = DistanceKernels.squaredL2(pa0, pb0, n), l0 = DistanceKernels.scalarSquaredL2(pa0, pb0, n)
                    #expect(abs(d1 - d0) <= 1e-4 * max(1, abs(d0)), "dot n=\(n)")
                    #expect(abs(l1 - l0) <= 1e-4 * max(1, abs(l0)), "l2 n=\(n)")
                }
            }
        }
    }

    @Test func metricScoresRoundTrip() {
        for m in Metric.allCases {
            for s: Float in [-0.5, 0, 0.25, 3] where !(m == .l2 && s < 0) {
                #expect(abs(m.score(fromDistance: m.distance(fromScore: s)) - s) < 1e-6)
            }
        }
        let v: [Float] = [3, 4]
        #expect(v.normalized() == [0.6, 0.8])
        #expect([Float](repeating: 0, count: 3).normalized() == [0, 0, 0])
    }
}

struct TopKTests {
    @Test func keepsTheKSmallestInOrder() {
        var rng = SystemRandomNumberGenerator()
        for k in [0, 1, 5, 100] {
            var top = TopK(k: k)
            var all: [Neighbor] = []
            for id in 0..<500 {
                let d = Float(Int.random(in: 0..<50, using: &rng))  // many ties
                top.push(id: Int64(id), distance: d)
                all.append(Neighbor(id: Int64(id), distance: d))
            }
            let expected = all.sorted { ($0.distance, $0.id) < ($1.distance, $1.id) }.prefix(k)
            #expect(top.sorted() == Array(expected))
        }
    }
}

struct BinaryCodecTests {
    @Test func roundTrip() throws {
        var w = ByteWriter()
        w.write(UInt8(7)); w.write(UInt32(0xDEAD_BEEF)); w.write(Int64(-5)); w.write(Float(1.5)); w.write(Double(-2.25))
        w.writeVarint(300); w.writeString("héllo"); w.write(floats: [1, -1, .pi])
        var r = ByteReader(w.bytes)
        #expect(try r.readUInt8() == 7)
        #expect(try r.readUInt32() == 0xDEAD_BEEF)
        #expect(try r.readInt64() == -5)
        #expect(try r.readFloat() == 1.5)
        #expect(try r.readDouble() == -2.25)
        #expect(try r.readVarint() == 300)
        #expect(try r.readString() == "héllo")
        #expect(try r.readFloats(3) == [1, -1, .pi])
        #expect(r.isAtEnd)
        #expect(throws: CodecError.self) { try r.readUInt8() }
    }

    @Test func hostileLengthsAreErrors() {
        var w = ByteWriter()
        w.writeVarint(UInt64.max)
        var r = ByteReader(w.bytes)
        #expect(throws: CodecError.self) { try r.readBlob() }
        var r2 = ByteReader([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: CodecError.self) { try r2.readVarint() }
        var r3 = ByteReader([1, 2, 3])
        #expect(throws: CodecError.self) { try r3.readFloats(Int.max / 2) }
    }
}

struct BitsetTests {
    @Test func membership() {
        var b = Bitset(capacity: 130)
        for i in [0, 63, 64, 129] { b.insert(i) }
        #expect(b.count == 4)
        #expect(b.contains(64) && !b.contains(65) && !b.contains(-1) && !b.contains(130))
        b.remove(64)
        #expect(!b.contains(64) && b.count == 3)
        var members: [Int] = []
        b.forEach { members.append($0) }
        #expect(members == [0, 63, 129])
        var c = Bitset(capacity: 130)
        c.insert(63); c.insert(100)
        var u = b; u.formUnion(c)
        var i = b; i.formIntersection(c)
        #expect(u.count == 4 && i.count == 1 && i.contains(63))
    }
}

struct BitsetRangeCountTests {
    /// `count(in:)` equals counting members one by one, for ranges across word boundaries and past the ends.
    @Test func rangeCountEqualsTheMembersInRange() {
        var rng = SplitMix64(seed: 4)
        var bits = Bitset(capacity: 300)
        for _ in 0..<120 { bits.insert(Int.random(in: 0..<300, using: &rng)) }
        for _ in 0..<500 {
            let a = Int.random(in: -10..<320, using: &rng), b = Int.random(in: -10..<320, using: &rng)
            let range = min(a, b)...max(a, b)
            #expect(bits.count(in: range) == range.filter { bits.contains($0) }.count, "\(range)")
        }
        #expect(bits.count(in: 0...299) == bits.count)
    }
}

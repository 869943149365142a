import Foundation
import Testing
import QuiverCore
import QuiverIndex
import QuiverTestSupport
@testable import Quiver

/// Hostile values end to end: each is a typed error naming what is wrong, with memory bounded by
/// the input actually present (never by a count or size a header claims). Parsers are also fuzzed
/// (Tests/Fuzz); the filter's 10^6-deep inputs are in FilterTests, the safetensors header's
/// lengths and shapes in SafetensorsTests, the WAL's torn and damaged records in WriteAheadLogTests.
struct HostileInputTests {
    func setUp() throws -> (TemporaryDirectory, Database, Collection) {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path + "/db")
        let c = try db.createCollection("c", dimension: 4)
        return (dir, db, c)
    }

    func write(_ bytes: [UInt8], _ path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Imports `bytes` as a file of `format`; returns the error (nil when it imported).
    func importError(_ c: Collection, _ dir: String, _ name: String, _ bytes: [UInt8], _ options: ImportOptions = ImportOptions()) -> Error? {
        let path = dir + "/" + name
        var options = options
        options.upsert = true
        do {
            try write(bytes, path)
            _ = try c.importFile(path, options: options)
            return nil
        } catch { return error }
    }

    func expectBadInput(_ error: Error?, line: Int? = nil, _ reason: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard case .badInput(_, let l, let r)? = error as? QuiverError else {
            Issue.record("expected badInput, got \(String(describing: error))", sourceLocation: sourceLocation)
            return
        }
        if let line { #expect(l == line, "line \(l): \(r)", sourceLocation: sourceLocation) }
        #expect(reason.isEmpty || r.contains(reason), "\(r)", sourceLocation: sourceLocation)
    }

    @Test func jsonLinesWithHostileValues() throws {
        let (dir, db, c) = try setUp()
        defer { db.close() }
        let ok = Array(#"{"id":"a","vector":[1,2,3,4]}"#.utf8) + [10]
        // Metadata nested 10^6 deep.
        let deep = Array((#"{"id":"b","vector":[1,2,3,4],"metadata":{"x":"# + String(repeating: "[", count: 1_000_000) + String(repeating: "]", count: 1_000_000) + "}}").utf8)
        expectBadInput(importError(c, dir.path, "deep.jsonl", ok + deep), line: 2, "JSON")
        // Invalid UTF-8 inside a string.
        expectBadInput(importError(c, dir.path, "utf8.jsonl", ok + Array(#"{"id":"b"#.utf8) + [0xFF, 0xFE] + Array(#"","vector":[1,2,3,4]}"#.utf8)), line: 2, "")
        // An id of 4 MiB.
        let hugeID = Array(#"{"id":""#.utf8) + [UInt8](repeating: 0x61, count: 4 << 20) + Array(#"","vector":[1,2,3,4]}"#.utf8)
        expectBadInput(importError(c, dir.path, "id.jsonl", ok + hugeID), line: 2, "the limit is 500")
        // Components that overflow float32, and a non-number.
        expectBadInput(importError(c, dir.path, "inf.jsonl", ok + Array(#"{"id":"b","vector":[1,2,1e39,4]}"#.utf8)), line: 2, "NaN or infinite")
        expectBadInput(importError(c, dir.path, "nan.jsonl", ok + Array(#"{"id":"b","vector":[1,2,NaN,4]}"#.utf8)), line: 2, "")
        // A vector of 10^6 components in a 4-d collection.
        let long = Array((#"{"id":"b","vector":["# + Array(repeating: "1", count: 1_000_000).joined(separator: ",") + "]}").utf8)
        expectBadInput(importError(c, dir.path, "long.jsonl", ok + long), line: 2, "dimension")
        #expect(try c.get("a") != nil)
        #expect(try db.verify().ok)
    }

    @Test func documentJSONNestedAMillionDeepIsAnError() {
        let deep = Data((#"{"id":"b","metadata":{"x":"# + String(repeating: "{\"a\":", count: 1_000_000) + "1" + String(repeating: "}", count: 1_000_000) + "}}").utf8)
        #expect(throws: QuiverError.self) { try Document(json: deep) }
    }

    @Test func csvWithInvalidUTF8() throws {
        let (dir, db, c) = try setUp()
        defer { db.close() }
        let csv = Array("id,vector\na,1 2 3 4\nb".utf8) + [0xC3, 0x28] + Array(",1 2 3 4\n".utf8)
        expectBadInput(importError(c, dir.path, "bad.csv", csv), line: 3, "")
    }

    @Test func vectorFilesWithImpossibleHeaders() throws {
        let (dir, db, c) = try setUp()
        defer { db.close() }
        var options = ImportOptions()
        options.idPrefix = "v"
        // fvecs/bvecs: a dimension of 2^31 - 1 in the first vector's header.
        expectBadInput(importError(c, dir.path, "big.fvecs", [0xFF, 0xFF, 0xFF, 0x7F] + [UInt8](repeating: 0, count: 16), options), "claims dimension 2147483647")
        expectBadInput(importError(c, dir.path, "neg.bvecs", [0xFF, 0xFF, 0xFF, 0xFF] + [UInt8](repeating: 0, count: 16), options), "claims dimension -1")
        // npy: a header length of 4 GiB, and a shape of 2^62 rows with 8 bytes of data.
        let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
        expectBadInput(importError(c, dir.path, "len.npy", magic + [2, 0, 0xFF, 0xFF, 0xFF, 0xFF], options), "not plausible")
        var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }".utf8)
        while (10 + header.count + 1) % 64 != 0 { header.append(0x20) }
        header.append(10)
        let npy = magic + [1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)] + header + [UInt8](repeating: 0, count: 8)
        expectBadInput(importError(c, dir.path, "rows.npy", npy, options), "")
        let wide = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 99999999999999999999999), }\n".utf8)
        expectBadInput(importError(c, dir.path, "wide.npy", magic + [1, 0, UInt8(wide.count), 0] + wide, options), "shape")
        // An ids file with invalid UTF-8.
        let fvecs: [UInt8] = [4, 0, 0, 0] + [UInt8]([0, 0, 0x80, 0x3F]) + [0, 0, 0x80, 0x3F] + [0, 0, 0x80, 0x3F] + [0, 0, 0x80, 0x3F]
        try write([0x61, 0xFF, 10], dir.path + "/ids.txt")
        var withIDs = ImportOptions()
        withIDs.idsFile = dir.path + "/ids.txt"
        expectBadInput(importError(c, dir.path, "one.fvecs", fvecs, withIDs), "")
        #expect(try c.count() == 0)
    }

    @Test func hugeIDsInReadsAndDeletes() throws {
        let (_, db, c) = try setUp()
        defer { db.close() }
        let huge = String(repeating: "x", count: 4 << 20)
        // Not found, or a typed error; never an LMDB key-size error or a crash.
        do { #expect(try c.get(huge) == nil) } catch { #expect(error is QuiverError, "\(error)") }
        do { #expect(try c.delete(ids: [huge]) == 0) } catch { #expect(error is QuiverError, "\(error)") }
        #expect(throws: QuiverError.self) { try c.upsert(Document(id: huge, vector: [1, 2, 3, 4])) }
        let badUTF8 = String(decoding: [0x61, 0xFF, 0x62], as: UTF8.self)  // decoded with U+FFFD: a valid id
        try c.upsert(Document(id: badUTF8, vector: [1, 2, 3, 4]))
        #expect(try c.get(badUTF8)?.id == badUTF8)
    }

    @Test func segmentFileClaimingHugeCounts() throws {
        let index = try HNSWIndex(dimension: 4, metric: .l2)
        try index.add(Matrix(dimension: 4, storage: (0..<40).map { Float($0) }), ids: Array(0..<10))
        let good = HNSWCodec.encode(index)
        for value: UInt64 in [1 << 40, .max, 1 << 62] {
            var bad = good
            withUnsafeBytes(of: value.littleEndian) { for i in 0..<8 { bad[48 + i] = $0[i] } }
            #expect(throws: (any Error).self) { try HNSWCodec.decode(bad) }
        }
    }
}

import Foundation
import Testing
import QuiverCore
@testable import Quiver

/// Issue 13 (item 4): metadata from everyday Swift values, and typed accessors.
struct MetadataConvenienceTests {
    @Test func documentsTakeEverydayValues() throws {
        let year = 2020
        let tags = ["a", "b"]
        let score: Float = 0.5
        let note: String? = nil
        let d = Document(id: "x", metadata: ["year": year, "tags": tags, "score": score, "open": true, "note": note, "kind": "paper"])
        #expect(d.metadata == ["year": .int(2020), "tags": .stringList(["a", "b"]), "score": .double(0.5), "open": .bool(true),
                               "note": .null, "kind": .string("paper")])
        // Literals alone still take the plain overload.
        let e = Document(id: "y", metadata: ["year": 1, "tags": ["t"], "z": .double(2)])
        #expect(e.metadata["year"] == .int(1) && e.metadata["z"] == .double(2))
        #expect(MetadataValue(year) == .int(2020) && MetadataValue(tags) == .stringList(tags))
    }

    @Test func typedAccessors() {
        let m: Metadata = ["year": 2020, "title": "t", "score": 0.25, "ok": false, "tags": ["a"], "none": nil]
        #expect(m["year"]?.intValue == 2020 && m["year"]?.int64Value == 2020 && m["year"]?.doubleValue == 2020)
        #expect(m["title"]?.stringValue == "t" && m["title"]?.intValue == nil)
        #expect(m["score"]?.doubleValue == 0.25 && m["score"]?.intValue == nil)
        #expect(m["ok"]?.boolValue == false && m["tags"]?.stringListValue == ["a"])
        #expect(m["none"]?.isNull == true && m["title"]?.isNull == false)
    }

    @Test func everydayValuesRoundTripThroughTheDatabase() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quiver-meta-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = try Database(path: dir)
        let c = try db.createCollection("c", dimension: 2)
        let year = 1999
        try c.upsert(Document(id: "a", metadata: ["year": year, "tags": ["x", "y"]], vector: [1, 0]))
        let back = try #require(try c.get("a"))
        #expect(back.metadata["year"]?.intValue == year && back.metadata["tags"]?.stringListValue == ["x", "y"])
    }

    @Test func jsonRoundTripsEveryType() throws {
        let d = Document(id: "a", text: "t\n\"q\"", metadata: ["f": .double(2), "i": 2, "s": "x", "b": true, "l": ["p", "q"], "n": nil, "e": .double(1e300)],
                         vector: [0.5, -1, 3.25])
        #expect(try Document(json: d.json()) == d)
    }

    /// Numbers are read from their text with correct rounding: Foundation's JSONSerialization
    /// on Linux read 30.142857142857142 as 30.142857142857146 (one ulp off).
    @Test func numbersAreReadExactly() throws {
        let known = try Document(json: Data(#"{"id":"a","metadata":{"r":30.142857142857142}}"#.utf8))
        #expect(known.metadata["r"] == .double(30.142857142857142))
        var rng = SplitMix64(seed: 7)
        var docs: [Document] = []
        for i in 0..<2_000 {
            let bits = rng.next() & ~(0x7FF << 52) | (UInt64.random(in: 900...1_150, using: &rng) << 52)
            let d = Double(bitPattern: bits)
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()) & 0x3FFF_FFFF)
            docs.append(Document(id: "d\(i)", metadata: ["x": .double(d), "i": .int(Int64(bitPattern: rng.next()))], vector: [f, -f]))
        }
        for doc in docs {
            let back = try Document(json: Data(#"{"id":"\#(doc.id)","metadata":{"x":\#(doc.metadata["x"]!.doubleValue!),"i":\#(doc.metadata["i"]!.intValue!)},"vector":[\#(doc.vector![0]),\#(doc.vector![1])]}"#.utf8))
            #expect(back == doc, "\(doc.metadata) \(doc.vector!)")
        }
        // The array form `quiver put` reads, the same way, with the document and its line in errors.
        let array = Data(("[\n" + docs.prefix(50).map { String(decoding: $0.json(), as: UTF8.self) }.joined(separator: ",\n") + "\n]").utf8)
        #expect(try Document.documents(jsonArray: array) == Array(docs.prefix(50)))
        #expect(throws: QuiverError.invalidArgument("document 2 (line 3): missing field 'id'")) {
            try Document.documents(jsonArray: Data("[\n{\"id\":\"a\"},\n{\"text\":\"x\"}]".utf8))
        }
        // A key given twice is refused (JSONSerialization kept one of the values without a word);
        // an integer past 64 bits becomes the nearest double, as before.
        #expect(throws: QuiverError.invalidArgument("not valid JSON: the key \"id\" appears twice in this object (byte 12)")) {
            try Document(json: Data(#"{"id":"a", "id":"b"}"#.utf8))
        }
        #expect(try Document(json: Data(#"{"id":"a","metadata":{"u":18446744073709551615}}"#.utf8)).metadata["u"] == .double(18446744073709551615))
    }
}

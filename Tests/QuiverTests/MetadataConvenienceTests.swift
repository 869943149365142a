import Foundation
import Testing
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
}

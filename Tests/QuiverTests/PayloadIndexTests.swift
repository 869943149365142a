import Foundation
import Testing
import QuiverCore
import QuiverTestSupport
@testable import Quiver

struct PayloadIndexTests {
    /// With payload indexes on every field, the filtered allowed set (index candidates re-checked
    /// against documents) equals the brute-force evaluation, for random documents and filters,
    /// through updates and deletes after the indexes were built.
    /// Index types take the CLI's one vocabulary of type names (`ImportOptions.ColumnType`'s), but a
    /// list is not an index type.
    @Test func typeNamesAreTheColumnTypeVocabulary() {
        let expected: [String: PayloadIndexType] = ["keyword": .keyword, "STRING": .keyword, "integer": .integer, "int": .integer,
                                                    "float": .float, "Double": .float, "bool": .bool, "boolean": .bool]
        for (name, type) in expected { #expect(PayloadIndexType(named: name) == type, "\(name)") }
        for name in ["list", "text", ""] { #expect(PayloadIndexType(named: name) == nil, "\(name)") }
    }

    @Test func indexedFilteringEqualsBruteForce() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("p", dimension: 2)
        var rng = SplitMix64(seed: 606)
        var docs: [String: Document] = [:]
        for i in 0..<300 {
            docs["d\(i)"] = Document(id: "d\(i)", metadata: RandomFilters.document(&rng), vector: [Float(i), 1])
        }
        try c.insert(Array(docs.values))
        // Indexes of each type, some on fields holding mixed types (entries of other types are left
        // out of the index and found by the re-check only where the filter allows it).
        try c.createPayloadIndex("a", type: .integer)
        try c.createPayloadIndex("b", type: .keyword)
        try c.createPayloadIndex("c", type: .float)
        try c.createPayloadIndex("tags", type: .keyword)
        try c.createPayloadIndex("a", type: .integer)  // again: a no-op
        #expect(throws: QuiverError.self) { try c.createPayloadIndex("a", type: .keyword) }
        for round in 0..<3 {
            if round > 0 {
                for i in 0..<40 {
                    let id = "d\(Int.random(in: 0..<300, using: &rng))"
                    if i % 3 == 0 { try c.delete(id: id); docs[id] = nil } else {
                        let d = Document(id: id, metadata: RandomFilters.document(&rng), vector: [Float(i), 2])
                        try c.upsert(d)
                        docs[id] = d
                    }
                }
            }
            var bounded = 0
            for _ in 0..<300 {
                let filter = RandomFilters.filter(depth: 3, &rng)
                let expected = docs.values.filter { filter.matches($0.metadata) }.count
                let (hits, plan) = try c.explain(vector: [0, 1], k: 1_000, options: SearchOptions(exact: true, filter: filter))
                #expect(plan.allowed == expected, "\(filter)")
                #expect(hits.count == expected, "\(filter)")
                #expect(plan.estimate >= plan.allowed)
                if !plan.indexesUsed.isEmpty { bounded += 1 }
            }
            #expect(bounded > 50, "too few filters were bounded by the indexes for the test to mean much")
        }
        #expect(try db.verify().ok)
        // Reopening keeps the indexes.
        db.close()
        let again = try Database(path: dir.path)
        let plan = try again.collection("p").explain(vector: [0, 1], k: 5, options: SearchOptions(filter: try Filter(text: "a = 1"))).plan
        #expect(plan.indexesUsed == ["a"] && plan.estimate < docs.count)
    }

    @Test func selectiveFilterReadsOnlyCandidates() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("p", dimension: 2)
        try c.insert((0..<2_000).map { Document(id: "d\($0)", metadata: ["group": .string("g\($0 % 100)"), "n": .int(Int64($0))], vector: [Float($0), 1]) })
        try c.createPayloadIndex("group", type: .keyword)
        try c.createPayloadIndex("n", type: .integer)
        let (hits, plan) = try c.explain(vector: [5, 1], k: 10, options: SearchOptions(filter: try Filter(text: "group = \"g7\" and n < 1000")))
        #expect(plan.estimate == 10 && plan.allowed == 10 && plan.indexesUsed == ["group", "n"])
        #expect(hits.count == 10 && hits.allSatisfy { $0.metadata["group"] == "g7" })
        let range = try c.explain(vector: [5, 1], k: 10, options: SearchOptions(filter: try Filter(text: "n >= 100 and n <= 119.5"))).plan
        #expect(range.estimate == 20 && range.allowed == 20)
        // Strict bounds are exact too.
        let strict = try c.explain(vector: [5, 1], k: 10, options: SearchOptions(filter: try Filter(text: "n > 100 and n < 120"))).plan
        #expect(strict.estimate == 19 && strict.allowed == 19)
        // Integers beyond 2^53 round in the index: candidates are then re-checked, and answers stay exact.
        try c.upsert([Document(id: "big1", metadata: ["n": .int(1 << 60)], vector: [1, 1]),
                      Document(id: "big2", metadata: ["n": .int((1 << 60) + 1)], vector: [1, 1]),
                      Document(id: "huge", metadata: ["n": .double(1.5e308)], vector: [1, 1])])
        let big = try c.explain(vector: [1, 1], k: 10, options: SearchOptions(filter: try Filter(text: "n = \((1 << 60) + 1)"))).plan
        #expect(big.allowed == 1 && big.estimate == 2)
        #expect(try c.explain(vector: [1, 1], k: 10, options: SearchOptions(filter: try Filter(text: "n > 1e308"))).plan.allowed == 1)
        // Delete by filter.
        #expect(try c.ids(matching: try Filter(text: "group = \"g3\"")).count == 20)
        #expect(try c.delete(matching: try Filter(text: "group = \"g3\"")) == 20)
        #expect(try c.ids(matching: try Filter(text: "group = \"g3\"")).isEmpty)
        // verify notices an index entry that disagrees with its document.
        #expect(try db.verify().ok)
        try db.env.write { txn in
            try txn.put(db.tables.payload, PayloadKeys.fieldPrefix(c.info.number, "n", kind: 2) + PayloadKeys.number(5) + PayloadKeys.row(77), [])
        }
        #expect(try db.verify().problems.contains { $0.contains("row 77 does not match") })
    }
}

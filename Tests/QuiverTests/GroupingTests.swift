import Foundation
import Testing
import QuiverCore
import QuiverTestSupport
@testable import Quiver

/// Grouping against a plain dictionary over the exact ranked list of every (allowed) document.
struct GroupingTests {
    /// The documented answer: walk the whole exact ranking; a document joins the group of each of
    /// its values (a string, an integer, a boolean, each distinct string of a list; nothing for a
    /// missing field, null or a float), opening a group while fewer than k are open, each group
    /// keeping its first `size` documents.
    static func reference(_ ranked: [SearchResult], field: String, k: Int, size: Int) -> [(MetadataValue, [String])] {
        var order: [MetadataValue] = []
        var members: [MetadataValue: [String]] = [:]
        for hit in ranked {
            var values: [MetadataValue] = []
            switch hit.metadata[field] {
            case .string(let s)?: values = [.string(s)]
            case .int(let i)?: values = [.int(i)]
            case .bool(let b)?: values = [.bool(b)]
            case .stringList(let l)?: for s in l where !values.contains(.string(s)) { values.append(.string(s)) }
            default: break
            }
            for v in values {
                if members[v] == nil {
                    guard order.count < k else { continue }
                    order.append(v)
                    members[v] = []
                }
                if members[v]!.count < size { members[v]!.append(hit.id) }
            }
        }
        return order.map { ($0, members[$0]!) }
    }

    /// 500 documents: `cat` a string of 9 values, missing on every 7th, null on every 11th, a float
    /// on every 13th; `n` an integer of 4 values; `flag` a boolean; `tags` a list of 0 to 3 strings.
    static func collection(_ db: Database) throws -> Collection {
        let c = try db.createCollection("g", dimension: 8)
        var rng = SplitMix64(seed: 21)
        try c.insert((0..<500).map { i in
            var m: Metadata = ["n": .int(Int64(i % 4)), "flag": .bool(i % 3 == 0)]
            if i % 13 == 0 { m["cat"] = .double(Double(i)) } else if i % 11 == 0 { m["cat"] = .null } else if i % 7 != 0 { m["cat"] = .string("c\(i % 9)") }
            m["tags"] = .stringList((0..<(i % 4)).map { "t\((i + $0 * 5) % 6)" })
            return Document(id: "d\(i)", metadata: m, vector: (0..<8).map { _ in Float.random(in: -1...1, using: &rng) })
        })
        return c
    }

    @Test func groupsEqualTheReference() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try Self.collection(db)
        var rng = SplitMix64(seed: 4)
        let filters: [Filter?] = [nil, try Filter(text: "n != 2"), try Filter(text: #"flag = true and cat != "c3""#)]
        for q in 0..<3 {
            let query = (0..<8).map { _ in Float.random(in: -1...1, using: &rng) }
            for filter in filters {
                let ranked = try c.search(vector: query, k: 500, options: SearchOptions(exact: true, filter: filter))
                for (field, k, size) in [("cat", 3, 2), ("cat", 20, 3), ("n", 5, 4), ("flag", 2, 10), ("tags", 4, 3), ("cat", 1, 1)] {
                    let expected = Self.reference(ranked, field: field, k: k, size: size)
                    for exact in [true, false] {
                        var options = SearchOptions(groupBy: field, groupSize: size, filter: filter)
                        options.exact = exact
                        let got = try c.searchGroups(vector: query, k: k, options: options)
                        #expect(got.map(\.value) == expected.map(\.0), "\(field) k \(k) size \(size) \(String(describing: filter))")
                        #expect(got.map { $0.hits.map(\.id) } == expected.map(\.1), "\(field) k \(k) size \(size)")
                        // The hits are the plain search's, scores included.
                        let scores = Dictionary(uniqueKeysWithValues: ranked.map { ($0.id, $0.score) })
                        #expect(got.allSatisfy { $0.hits.allSatisfy { scores[$0.id] == $0.score } })
                    }
                }
            }
        }
    }

    /// Documents without a groupable value are skipped, even when they are the nearest; the search
    /// goes deeper (24, 96, 384, then all 600 candidates) until the groups are full.
    @Test func missingFieldsAreSkippedAndTheSearchGoesDeeper() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("m", dimension: 2, metric: .l2)
        // 600 documents on a line from the query; only those beyond 400 have `kind`.
        try c.insert((0..<600).map { i in
            Document(id: "d\(i)", metadata: i >= 400 ? ["kind": .string("k\(i % 3)")] : (i % 2 == 0 ? ["kind": .null] : [:]), vector: [Float(i), 0])
        })
        let (groups, plan) = try c.explainGroups(vector: [0, 0], k: 3, options: SearchOptions(groupBy: "kind", groupSize: 2))
        #expect(groups.map(\.value) == [.string("k1"), .string("k2"), .string("k0")])
        #expect(groups.map { $0.hits.map(\.id) } == [["d400", "d403"], ["d401", "d404"], ["d402", "d405"]])
        #expect(plan.grouping?.contains("4 round(s)") == true && plan.grouping?.contains("400 candidate(s) without") == true, "\(plan.grouping ?? "")")
        // Fewer values than k: the candidates run out, and every value is a group.
        let all = try c.explainGroups(vector: [0, 0], k: 5, options: SearchOptions(groupBy: "kind", groupSize: 1))
        #expect(all.groups.count == 3 && all.plan.grouping?.contains("the candidates ran out") == true)
        // A filter that leaves no document with the field: no groups.
        let none = try c.searchGroups(vector: [0, 0], k: 3, options: SearchOptions(groupBy: "kind", filter: try Filter(text: "not exists(kind)")))
        #expect(none.isEmpty)
    }

    @Test func badOptionsAreRefused() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try Self.collection(db)
        let q = [Float](repeating: 0.1, count: 8)
        func refused(_ options: SearchOptions, k: Int = 3, _ message: String) {
            #expect { try c.searchGroups(vector: q, k: k, options: options) } throws: { "\($0)".contains(message) }
        }
        refused(SearchOptions(groupBy: "caat"), "no document of 'g' has the field 'caat'")
        refused(SearchOptions(groupBy: ""), "empty")
        refused(SearchOptions(groupBy: "cat", groupSize: 0), "groupSize must be between 1")
        refused(SearchOptions(groupBy: "cat", groupSize: 100), k: 101, "k × groupSize")
        refused(SearchOptions(), "needs SearchOptions.groupBy")
        var both = SearchOptions(groupBy: "cat")
        both.diversity = 0.5
        refused(both, "do not combine")
        var unknown = SearchOptions(groupBy: "caat")
        unknown.allowUnknownFields = true
        #expect(try c.searchGroups(vector: q, k: 3, options: unknown).isEmpty)
        // A field holding only floats cannot group.
        try c.upsert(Document(id: "f", metadata: ["score": .double(0.5)], vector: q))
        refused(SearchOptions(groupBy: "score"), "holds a string, integer, boolean or list value")
    }

    /// Text queries (dense and hybrid) group the same way, over the example papers by venue.
    @Test func textGroupsEqualTheReference() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try DiversityTests.papersCollection(db)
        for mode in [SearchMode.dense, .hybrid, .lexical] {
            let ranked = try c.search(text: "vitamin D and bone density", k: 30, mode: mode)
            let got = try c.searchGroups(text: "vitamin D and bone density", k: 3, mode: mode, options: SearchOptions(groupBy: "venue", groupSize: 2))
            let expected = Self.reference(ranked, field: "venue", k: 3, size: 2)
            #expect(got.map { $0.hits.map(\.id) } == expected.map(\.1), "\(mode)")
        }
    }
}

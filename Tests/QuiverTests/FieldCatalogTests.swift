import Foundation
import Testing
import QuiverTestSupport
@testable import Quiver

/// Issue 13 (item 5): filters that know the data. The field catalog is kept by every write and
/// delete, checked by verify, rebuilt by repair; a filter on an unknown field or with a type the
/// field never holds is an error listing the fields, unless allowed.
struct FieldCatalogTests {
    func make(_ dir: TemporaryDirectory) throws -> (Database, Collection) {
        let db = try Database(path: dir.path + "/db")
        let c = try db.createCollection("papers", dimension: 2)
        var docs: [Document] = []
        for i in 0..<20 {
            let year = 2000 + i, venue = i % 2 == 0 ? "Lancet" : "BMJ", tags = i % 5 == 0 ? ["a", "b"] : ["c"]
            let score = Double(i) / 4, open = i % 3 == 0
            docs.append(Document(id: "p\(i)", metadata: ["year": year, "venue": venue, "tags": tags, "score": score, "open": open], vector: [1, Float(i)]))
        }
        try c.upsert(docs)
        return (db, c)
    }

    @Test func theCatalogFollowsWritesAndDeletes() throws {
        let dir = TemporaryDirectory()
        let (db, c) = try make(dir)
        var fields = try c.fields()
        #expect(fields.map(\.field) == ["open", "score", "tags", "venue", "year"])
        #expect(fields.first { $0.field == "year" }?.integers == 20)
        // Replace one document's year with a string and delete another.
        try c.upsert(Document(id: "p1", metadata: ["year": "unknown"], vector: [1, 1]))
        try c.delete(id: "p2")
        fields = try c.fields()
        let year = try #require(fields.first { $0.field == "year" })
        #expect(year.documents == 19 && year.integers == 18 && year.strings == 1)
        #expect(fields.first { $0.field == "venue" }?.documents == 18)
        #expect(try db.verify().ok)
        db.close()
        // Reopened, and read-only.
        let ro = try Database(path: dir.path + "/db", options: DatabaseOptions(readOnly: true))
        #expect(try ro.collection("papers").fields() == fields)
    }

    @Test func typosAndTypeMismatchesAreErrorsWithTheFields() throws {
        let dir = TemporaryDirectory()
        let (_, c) = try make(dir)
        do {
            _ = try c.search(vector: [1, 0], k: 3, options: SearchOptions(filter: try Filter(text: "yaer >= 2015")))
            Issue.record("a filter on an unknown field was accepted")
        } catch let e as QuiverError {
            #expect(e.description.contains("'yaer'") && e.description.contains("did you mean 'year'?") && e.description.contains("'venue'"))
        }
        do {
            _ = try c.ids(matching: try Filter(text: #"year = "2020""#))
            Issue.record("a string compared with an integer field was accepted")
        } catch let e as QuiverError {
            #expect(e.description.contains("'year'") && e.description.contains("integer"))
        }
        // Lists meet strings; integers meet floats; null meets anything.
        #expect(try c.ids(matching: try Filter(text: #"tags = "a""#)).count == 4)
        #expect(try c.ids(matching: try Filter(text: "score >= 4")).count == 4)
        #expect(try c.ids(matching: try Filter(text: "year = 2003.0")) == ["p3"])
        #expect(try c.ids(matching: try Filter(text: "venue = null")).isEmpty)
        // The opt-out.
        var options = SearchOptions(filter: try Filter(text: "draft = true"))
        options.allowUnknownFields = true
        #expect(try c.search(vector: [1, 0], k: 3, options: options).isEmpty)
        #expect(try c.ids(matching: try Filter(text: #"year = "2020""#), allowUnknownFields: true).isEmpty)
        // explain reports the fields' figures.
        let (_, plan) = try c.explain(vector: [1, 0], k: 3, options: SearchOptions(filter: try Filter(text: "year >= 2015 and venue = \"BMJ\"")))
        #expect(plan.fields.map(\.field) == ["year", "venue"] && plan.fields[0].integers == 20)
    }

    @Test func verifyFindsAndRepairRebuildsADamagedCatalog() throws {
        let dir = TemporaryDirectory()
        let (db, c) = try make(dir)
        try db.env.write { txn in
            var stats = try #require(try FieldCatalog.stats(1, "venue", txn: txn, tables: db.tables))
            stats.documents += 3
            try FieldCatalog.write(stats, FieldCatalog.key(1, "venue"), txn: txn, tables: db.tables)
            _ = try txn.delete(db.tables.fields, FieldCatalog.key(1, "open"))
        }
        let found = try db.verify()
        #expect(found.problems.filter { $0.contains("field catalog") }.count == 2)
        let report = try db.repair()
        #expect(report.rebuiltFieldCatalogs == ["papers"])
        #expect(try db.verify().ok)
        #expect(try c.fields().first { $0.field == "venue" }?.documents == 20)
    }

    @Test func aDatabaseWithoutACatalogGetsOneAtItsWritableOpen() throws {
        let dir = TemporaryDirectory()
        do {
            let (db, _) = try make(dir)
            // As a database written before the catalog existed: no entries, no completeness marker.
            try db.env.write { txn in try FieldCatalog.drop(1, txn: txn, tables: db.tables) }
            db.close()
        }
        do {
            let ro = try Database(path: dir.path + "/db", options: DatabaseOptions(readOnly: true))
            // Without a catalog the check is skipped (and fields() counts the documents).
            #expect(try ro.collection("papers").ids(matching: try Filter(text: "yaer = 1")).isEmpty)
            #expect(try ro.collection("papers").fields().count == 5)
            ro.close()
        }
        let db = try Database(path: dir.path + "/db")
        #expect(throws: QuiverError.self) { try db.collection("papers").ids(matching: try Filter(text: "yaer = 1")) }
        #expect(try db.verify().ok)
    }

    @Test func theCLIListsFieldsAndSuggests() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/db")
        try cli.run(["init"])
        try cli.run(["create", "c", "--dimension", "2"])
        try cli.run(["put", "c"], stdin: #"{"id":"a","vector":[1,0],"metadata":{"year":2020}}"#)
        let typo = try cli.run(["search", "c", "--vector", "[1,0]", "--filter", "yaer >= 2015"])
        #expect(typo.status == 1 && typo.stderr.contains("did you mean 'year'?"))
        #expect(try cli.run(["search", "c", "--vector", "[1,0]", "--filter", "yaer >= 2015", "--allow-unknown-fields"]).status == 0)
        #expect(try cli.run(["collections", "--fields"]).stdout.contains("year: 1 document(s) (integer)"))
        #expect(try cli.run(["search", "c", "--vector", "[1,0]", "--filter", "year >= 2015", "--explain"]).stdout.contains("field year: 1 document(s) (integer)"))
    }
}

import Foundation
import Testing
import QuiverTestSupport
import QuiverEncoder
@testable import Quiver

/// The export for Milvus without a server (layout, file splitting, refusals), and with
/// QUIVER_MILVUS=1 the whole path against the real PyPI Milvus 2.3.5 server through tools/milvus-load.
struct MilvusExportTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func theExportSplitsRowsUnderTheLimitAndDescribesTheSchema() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path + "/db")
        let c = try db.createCollection("c-1", dimension: 3, metric: .l2)
        var docs: [Document] = []
        for i in 0..<50 {
            var m: Metadata = ["year": .int(Int64(2000 + i % 7)), "tags": .stringList(i % 3 == 0 ? [] : ["t\(i % 4)"])]
            if i % 2 == 0 { m["venue"] = .string("v\(i % 5)") }
            if i % 5 == 0 { m["note"] = .null }
            docs.append(Document(id: "d\(i)", text: i == 3 ? nil : "text \(i)", metadata: m, vector: [Float(i), 0.5, -1]))
        }
        try c.upsert(docs)
        try c.createPayloadIndex("year", type: .integer)
        try c.createPayloadIndex("tags", type: .keyword)
        try c.createPayloadIndex("venue", type: .keyword)
        let reports = Locked<[Int]>([])
        let out = dir.path + "/milvus"
        let summary = try c.exportMilvus(to: out, options: MilvusExportOptions(maxFileBytes: 2048) { written, _ in reports.withLock { $0.append(written) } })
        #expect(summary.documents == 50)
        #expect(summary.files.count > 1)
        #expect(reports.withLock { $0.last } == 50)

        var ids: [String] = []
        for file in summary.files {
            let data = try Data(contentsOf: URL(fileURLWithPath: out + "/" + file))
            #expect(data.count <= 2048)
            let rows = try #require((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["rows"] as? [[String: Any]])
            for row in rows {
                ids.append(row["id"] as! String)
                #expect(row["year"] is Int && row["tags"] is [String])
                let meta = try #require(row["metadata"] as? [String: Any])
                #expect(meta["year"] == nil && meta["tags"] == nil)
                let nulls = try #require(row["null_fields"] as? [String])
                #expect(nulls == (meta["note"] is NSNull ? ["note"] : []))
            }
        }
        #expect(ids == docs.map(\.id).sorted())

        let schema = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/schema.json"))) as? [String: Any])
        #expect(schema["collection_name"] as? String == "c_1")
        let fields = try #require((schema["schema"] as? [String: Any])?["fields"] as? [[String: Any]])
        #expect(fields.map { $0["name"] as! String } == ["id", "vector", "text", "tags", "year", "metadata", "null_fields"])
        #expect(fields[1]["type"] as? Int == 101 && (fields[1]["params"] as? [String: Int])?["dim"] == 3)
        let indexes = try #require(schema["indexes"] as? [[String: Any]])
        #expect(indexes.first?["index_type"] as? String == "HNSW" && indexes.first?["metric_type"] as? String == "L2")
        let conversions = summary.conversions.joined(separator: "\n")
        #expect(conversions.contains("Payload index on 'venue'") && conversions.contains("lack it"))
        #expect(conversions.contains("1 document(s) have no text"))
        #expect(conversions.contains("squared Euclidean"))
        #expect(conversions.contains("'c-1' is not a Milvus name"))
        #expect(summary.mapping.fields["year"]?.type == .int64 && summary.mapping.fields["venue"]?.column == nil)
        // The filter command reads the mapping back from schema.json.
        let decoded = try JSONDecoder().decode(MilvusMappingHolder.self, from: Data(contentsOf: URL(fileURLWithPath: out + "/schema.json")))
        #expect(decoded.quiver.mapping == summary.mapping)
    }

    struct MilvusMappingHolder: Decodable {
        struct Part: Decodable { let mapping: MilvusMapping }
        let quiver: Part
    }

    @Test func theExportRefusesWhatMilvusCannotHold() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path + "/db")
        let c = try db.createCollection("c", dimension: 2)
        try c.upsert(Document(id: "a", metadata: ["x": 1], vector: [1, 0]))
        try FileManager.default.createDirectory(atPath: dir.path + "/exists", withIntermediateDirectories: false)
        #expect(throws: QuiverError.self) { try c.exportMilvus(to: dir.path + "/exists") }
        #expect(throws: QuiverError.self) { try c.exportMilvus(to: dir.path + "/small", options: MilvusExportOptions(maxFileBytes: 10)) }
        try c.upsert(Document(id: "long", text: String(repeating: "x", count: 70_000), vector: [0, 1]))
        do {
            try c.exportMilvus(to: dir.path + "/long")
            Issue.record("a text over 65,535 bytes was exported")
        } catch let e as QuiverError {
            #expect("\(e)".contains("'long'") && "\(e)".contains("65535"))
        }
    }
}

/// A value behind a lock, for progress callbacks.
final class Locked<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ value: T) { self.value = value }
    func withLock<R>(_ body: (inout T) -> R) -> R {
        lock.lock(); defer { lock.unlock() }
        return body(&value)
    }
}

/// The command line: `quiver filter --to milvus` and `quiver export --format milvus`, and the query of
/// docs/scale-out.md's side-by-side example.
struct MilvusCLITests {
    @Test func filterAndExportCommands() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/db")
        #expect(try cli.run(["init"]).status == 0)
        #expect(try cli.run(["create", "papers", "--dimension", "2"]).status == 0)
        let docs = """
        {"id": "a", "text": "graphs", "metadata": {"year": 2021, "tags": ["ml"]}, "vector": [1, 0]}
        {"id": "b", "text": "cells", "metadata": {"year": 2019, "tags": []}, "vector": [0, 1]}
        """
        #expect(try cli.run(["put", "papers"], stdin: docs).status == 0)
        #expect(try cli.run(["index", "papers", "year", "--type", "integer"]).status == 0)
        #expect(try cli.run(["index", "papers", "tags", "--type", "keyword"]).status == 0)

        // docs/scale-out.md's expression, from the collection and from the export's schema.json.
        let shown = #"(year >= 2020) and (array_contains(tags, "ml"))"#
        let fromCollection = try cli.run(["filter", "--to", "milvus", "--collection", "papers", #"year >= 2020 and tags = "ml""#])
        #expect(fromCollection.status == 0 && fromCollection.stdout == shown + "\n")
        let export = try cli.run(["export", "papers", dir.path + "/out", "--format", "milvus"])
        #expect(export.status == 0 && export.stdout.contains("Exported 2 document(s)") && export.stdout.contains("tools/milvus-load"))
        let fromSchema = try cli.run(["filter", "--to", "milvus", "--schema", dir.path + "/out", "--json", #"{"year": {"$gte": 2020}, "tags": "ml"}"#])
        #expect(fromSchema.status == 0 && fromSchema.stdout.contains(#""expression" : "(year >= 2020) and (array_contains(tags, \"ml\"))""#))
        let again = try cli.run(["export", "papers", dir.path + "/out", "--format", "milvus"])
        #expect(again.status == 1 && again.stderr.contains("exists"))

        // Without a mapping every field is a JSON key of any kind; refusals and usage errors.
        #expect(try cli.run(["filter", "--to", "milvus", "year = 3"]).stdout == #"metadata["year"] == 3"# + "\n")
        let refused = try cli.run(["filter", "--to", "milvus", "--collection", "papers", #"tags > "a""#])
        #expect(refused.status == 1 && refused.stderr.contains("cannot translate the condition on 'tags'"))
        #expect(try cli.run(["filter", "year = 3"]).status == 2)
        #expect(try cli.run(["filter", "--to", "qdrant", "year = 3"]).status == 2)
        #expect(try cli.run(["filter", "--to", "milvus", "year = "]).status == 2)
        #expect(try cli.run(["export", "papers", dir.path + "/x", "--format", "milvus", "--max-file-bytes", "10"]).status == 2)
        #expect(try cli.run(["export", "papers", dir.path + "/x.jsonl", "--max-file-bytes", "1M"]).status == 2)
    }

    /// The Swift side of docs/scale-out.md's example compiles and runs as shown.
    @Test func theSwiftSideOfTheExampleRuns() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path + "/db")
        let c = try db.createCollection("papers", encoder: EncoderRegistry.defaultEncoderName)
        try c.upsert([Document(id: "a", text: "graph neural networks for molecules", metadata: ["year": 2021, "tags": ["ml"]]),
                      Document(id: "b", text: "graph theory", metadata: ["year": 2019, "tags": ["math"]])])
        let papers = try db.collection("papers")
        var options = SearchOptions()
        options.filter = try Filter(text: #"year >= 2020 and tags = "ml""#)
        let hits = try papers.search(text: "graph neural networks", k: 10, options: options)
        #expect(hits.map(\.id) == ["a"])
    }
}

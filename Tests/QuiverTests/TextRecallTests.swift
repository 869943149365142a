import Foundation
import Testing
import QuiverTestSupport
import QuiverEncoder
import QuiverIndex
@testable import Quiver

/// HNSW recall on 384-d embeddings of real text: the 5,183 SciFact titles embedded by the built-in
/// encoder, the 300 SciFact claims as queries, recall@10 against the exact flat index with the
/// default parameters (M 16, efConstruction 200, efSearch 64).
struct TextRecallTests {
    static let data = SharedData.data("scifact")

    static func texts(_ file: String, field: String) throws -> [String] {
        let lines = try String(contentsOf: data.appendingPathComponent(file), encoding: .utf8).split(separator: "\n")
        return try lines.map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return (object?[field] as? String) ?? ""
        }
    }

    @Test func hnswRecallOnSciFactTitleEmbeddings() throws {
        let encoder = try EncoderRegistry.shared.encoder(named: EncoderRegistry.defaultEncoderName)
        let titles = try Self.texts("corpus.jsonl", field: "title")
        let claims = try Self.texts("queries.jsonl", field: "text")
        #expect(titles.count == 5_183 && claims.count >= 300)
        let base = try encoder.encode(documents: titles)
        let queries = try encoder.encode(queries: claims)
        let ids = (0..<base.rows).map { Int64($0) }
        let flat = try FlatIndex(dimension: 384, metric: .cosine)
        try flat.add(base, ids: ids)
        let hnsw = try HNSWIndex(dimension: 384, metric: .cosine)
        try hnsw.add(base, ids: ids)
        let exact = try flat.search(queries, k: 10, allow: nil)
        let approximate = try hnsw.search(queries, k: 10, allow: nil)
        var found = 0
        for (e, a) in zip(exact, approximate) { found += Set(e.map(\.id)).intersection(a.map(\.id)).count }
        let recall = Double(found) / Double(10 * queries.rows)
        print("HNSW recall@10 on SciFact title embeddings (defaults): \(recall)")
        #expect(recall >= 0.95)
    }
}

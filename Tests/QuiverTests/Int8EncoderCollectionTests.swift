import Foundation
import Testing
import QuiverTestSupport
@testable import Quiver
import QuiverEncoder

/// Collections on the int8 encoder (`all-MiniLM-L6-v2:int8`): chosen by name through the library and
/// the CLI, and told apart from float32 by the catalog, so that a collection built with one precision
/// refuses the other.
struct Int8EncoderCollectionTests {
    func database(_ dir: TemporaryDirectory, registry: EncoderRegistry = .shared) throws -> Database {
        var options = DatabaseOptions()
        options.encoders = registry
        return try Database(path: dir.path, options: options)
    }

    @Test func int8CollectionEmbedsAndSearches() throws {
        let dir = TemporaryDirectory()
        let db = try database(dir)
        let c = try db.createCollection("notes", encoder: EncoderRegistry.defaultInt8EncoderName)
        #expect(c.info.dimension == 384)
        #expect(c.info.encoder?.identifier == "all-MiniLM-L6-v2:int8")
        #expect(c.info.encoder?.weightsChecksum == BuiltInModel.weightsSHA256 + EncoderPrecision.int8ChecksumSuffix)
        let texts = ["The cat sat on the mat.", "Stock markets fell sharply on Monday.", "Photosynthesis turns light into chemical energy."]
        try c.insert(texts.enumerated().map { Document(id: "n\($0.offset)", text: $0.element) })
        #expect(try c.search(text: "how plants make energy from sunlight", k: 1).first?.id == "n2")
        #expect(try c.search(text: "shares dropped", k: 1).first?.id == "n1")
    }

    /// The swap is simulated by registering each precision's encoder under the other's name: the catalog's
    /// identity (identifier and weights checksum) refuses it, for writes and for queries.
    @Test func aCollectionBuiltWithOnePrecisionRefusesTheOther() throws {
        let float32 = try EncoderRegistry.shared.encoder(named: EncoderRegistry.defaultEncoderName)
        let int8 = try EncoderRegistry.shared.encoder(named: EncoderRegistry.defaultInt8EncoderName)
        for (name, impostor) in [(EncoderRegistry.defaultEncoderName, int8), (EncoderRegistry.defaultInt8EncoderName, float32)] {
            let dir = TemporaryDirectory()
            do {
                let db = try database(dir)
                try db.createCollection("t", encoder: name).upsert(Document(id: "a", text: "a short note"))
                db.close()
            }
            let swapped = EncoderRegistry()
            swapped.register(name, encoder: impostor)
            let db = try database(dir, registry: swapped)
            let c = try db.collection("t")
            do {
                _ = try c.search(text: "note", k: 1)
                Issue.record("a collection built with \(name) searched with \(impostor.identifier)")
            } catch let QuiverError.encoder(message) {
                #expect(message.contains("built with encoder '\(name)'") && message.contains(impostor.identifier), "\(message)")
            }
            #expect(throws: QuiverError.self) { try c.upsert(Document(id: "b", text: "another")) }
        }
    }

    @Test func theCLIChoosesInt8ByName() throws {
        let dir = TemporaryDirectory()
        let cli = CLI(db: dir.path + "/db")
        #expect(try cli.run(["init"]).status == 0)
        let created = try cli.run(["create", "papers", "--encoder", "all-MiniLM-L6-v2:int8"])
        #expect(created.status == 0, "\(created.stderr)")
        let listed = try cli.run(["collections"])
        #expect(listed.stdout.contains("all-MiniLM-L6-v2:int8"), "\(listed.stdout)")
        let embedded = try cli.run(["embed", "int8 vectors", "--encoder", "all-MiniLM-L6-v2:int8"])
        #expect(embedded.status == 0 && embedded.stdout.contains("384-d, all-MiniLM-L6-v2:int8"), "\(embedded.stdout)\(embedded.stderr)")
        let forced = try cli.run(["embed", "x", "--encoder", "all-MiniLM-L6-v2:int8"], environment: [Int8Kernel.environmentVariable: "sse9"])
        #expect(forced.status != 0 && forced.stderr.contains("sse9"), "\(forced.stderr)")
    }
}

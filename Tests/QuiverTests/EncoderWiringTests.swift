import Foundation
import Testing
import QuiverTestSupport
@testable import Quiver
import QuiverEncoder

/// A deterministic toy encoder: letter counts, so tests can predict its vectors. The query tower
/// differs from the document tower by a prefix, like e5/bge models.
struct LetterCountEncoder: TextEncoder {
    var identifier = "letters-v1"
    var weightsChecksum = "abc"
    var dimension: Int { 26 }

    func vector(_ text: String) -> [Float] {
        var v = [Float](repeating: 0, count: 26)
        for s in text.lowercased().unicodeScalars where s >= "a" && s <= "z" { v[Int(s.value - 97)] += 1 }
        return v
    }
    func encode(documents: [String]) throws -> Matrix { Matrix(dimension: 26, rows: documents.map(vector)) }
    func encode(queries: [String]) throws -> Matrix { Matrix(dimension: 26, rows: queries.map { vector("q " + $0) }) }
}

struct EncoderWiringTests {
    func database(_ dir: TemporaryDirectory, registry: EncoderRegistry) throws -> Database {
        var options = DatabaseOptions()
        options.encoders = registry
        return try Database(path: dir.path, options: options)
    }

    @Test func textIsEncodedOnWriteAndOnQuery() throws {
        let dir = TemporaryDirectory()
        let registry = EncoderRegistry()
        registry.register("letters", encoder: LetterCountEncoder())
        let db = try database(dir, registry: registry)
        let c = try db.createCollection("t", encoder: "letters")
        #expect(c.info.dimension == 26 && c.info.encoder == EncoderBinding(name: "letters", identifier: "letters-v1", dimension: 26, weightsChecksum: "abc"))
        try c.upsert([Document(id: "a", text: "aaaa"), Document(id: "b", text: "bbbb"), Document(id: "v", text: "given", vector: [Float](repeating: 1, count: 26))])
        #expect(try c.get("a")?.vector == LetterCountEncoder().vector("aaaa"))
        #expect(try c.get("v")?.vector == [Float](repeating: 1, count: 26))  // a given vector wins
        #expect(try c.search(text: "bb", k: 1).first?.id == "b")
        #expect(try c.embed("q") == LetterCountEncoder().vector("q q"))
        #expect(throws: QuiverError.missingVectorAndText(collection: "t", id: "x", index: 0)) { try c.upsert(Document(id: "x")) }
        // `"text": null` is no text: the message says what is missing, not that there is no encoder.
        do {
            try c.upsert(Document(json: Data(#"{"id":"n","text":null}"#.utf8)))
            Issue.record("a document with a null text and no vector was accepted")
        } catch let e as QuiverError {
            #expect(e == .missingVectorAndText(collection: "t", id: "n", index: 0))
            #expect(e.description.contains("neither a vector nor a text") && !e.description.contains("no text encoder"), "\(e.description)")
        }
        #expect(throws: QuiverError.self) { try db.createCollection("u", dimension: 5, encoder: "letters") }
        #expect(throws: QuiverError.self) { try db.createCollection("u", encoder: "no-such-encoder") }
    }

    @Test func aDifferentModelIsAClearError() throws {
        let dir = TemporaryDirectory()
        do {
            let registry = EncoderRegistry()
            registry.register("letters", encoder: LetterCountEncoder())
            let db = try database(dir, registry: registry)
            try db.createCollection("t", encoder: "letters").upsert(Document(id: "a", text: "abc"))
            db.close()
        }
        let registry = EncoderRegistry()
        registry.register("letters", encoder: LetterCountEncoder(weightsChecksum: "retrained"))
        let db = try database(dir, registry: registry)
        let c = try db.collection("t")
        #expect(try c.get("a") != nil)  // reading needs no encoder
        do {
            _ = try c.search(text: "abc", k: 1)
            Issue.record("searched with different weights")
        } catch let QuiverError.encoder(message) {
            #expect(message.contains("built with encoder 'letters'") && message.contains("retrained"))
        }
        #expect(throws: QuiverError.self) { try c.upsert(Document(id: "b", text: "b")) }
        // A missing encoder is also an error, not garbage.
        let empty = try database(TemporaryDirectory(), registry: EncoderRegistry(modelStore: ModelStore(directory: "/nonexistent")))
        #expect(throws: QuiverError.self) { try empty.createCollection("x", encoder: "all-MiniLM-L6-v2") }
    }

    /// `DatabaseOptions(modelsDirectory:)` is where the model is read from, and nowhere else: the
    /// installed model, linked into a directory of the test's own, is found there; an empty directory
    /// fails (although the default directory has the model) with a message naming that directory.
    @Test func modelsDirectoryOptionIsWhereTheModelIsRead() throws {
        let installed = ModelStore().folderPath(BuiltInModel.name)
        try #require(FileManager.default.fileExists(atPath: installed + "/model.safetensors"), "the model is not installed (tools/install-model)")
        let shipped = TemporaryDirectory()
        try FileManager.default.createSymbolicLink(atPath: shipped.path + "/" + BuiltInModel.name, withDestinationPath: installed)
        let options = DatabaseOptions(modelsDirectory: shipped.path)
        #expect(options.modelsDirectory == shipped.path && options.encoders !== EncoderRegistry.shared)
        let dbDir = TemporaryDirectory()
        let db = try Database(path: dbDir.path, options: options)
        let c = try db.createCollection("t", encoder: BuiltInModel.name)
        #expect(c.info.encoder?.weightsChecksum == BuiltInModel.weightsSHA256)
        try c.upsert(Document(id: "a", text: "a shipped model"))
        #expect(try c.search(text: "model", k: 1).first?.id == "a")

        let empty = TemporaryDirectory()
        var options2 = DatabaseOptions()
        options2.modelsDirectory = empty.path
        let dbDir2 = TemporaryDirectory()
        let db2 = try Database(path: dbDir2.path, options: options2)
        do {
            _ = try db2.createCollection("t", encoder: BuiltInModel.name)
            Issue.record("found a model outside the given models directory")
        } catch let QuiverError.encoder(message) {
            #expect(message.contains("no folder \(empty.path)/all-MiniLM-L6-v2 in the models directory the app gave"), "\(message)")
        }
    }

    /// With the real model: text written without a vector gets exactly the document tower's vector,
    /// and a query finds the paraphrase.
    @Test func builtInEncoderEndToEnd() throws {
        let dir = TemporaryDirectory()
        let db = try Database(path: dir.path)
        let c = try db.createCollection("notes", encoder: "all-MiniLM-L6-v2")
        let texts = ["The cat sat on the mat.", "Stock markets fell sharply on Monday.", "Photosynthesis turns light into chemical energy."]
        try c.insert(texts.enumerated().map { Document(id: "n\($0.offset)", text: $0.element) })
        let direct = try EncoderRegistry.shared.encoder(named: "all-MiniLM-L6-v2").encode(documents: texts)
        for i in 0..<texts.count { #expect(try c.get("n\(i)")?.vector == direct[row: i]) }
        #expect(try c.search(text: "how plants make energy from sunlight", k: 1).first?.id == "n2")
        #expect(try c.search(text: "shares dropped", k: 1).first?.id == "n1")
    }
}

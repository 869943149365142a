import Foundation
import QuiverCore
import Testing
@testable import QuiverEncoder

/// A stand-in encoder a host app might register.
struct ConstantEncoder: TextEncoder {
    let identifier: String
    let dimension: Int
    let value: Float
    var weightsChecksum: String { "constant-\(value)" }
    func encode(documents: [String]) throws -> Matrix {
        Matrix(dimension: dimension, storage: [Float](repeating: value, count: documents.count * dimension))
    }
    func encode(queries: [String]) throws -> Matrix {
        Matrix(dimension: dimension, storage: [Float](repeating: -value, count: queries.count * dimension))
    }
}

struct ModelStoreTests {
    @Test func resolvesEnvironmentThenHome() {
        #expect(ModelStore.defaultDirectory(environment: ["QUIVER_MODELS": "/m", "HOME": "/h"]) == "/m")
        #expect(ModelStore.defaultDirectory(environment: ["QUIVER_MODELS": "", "HOME": "/h"]) == "/h/.local/share/quiver/models")
        #expect(ModelStore.defaultDirectory(environment: ["HOME": "/h"]) == "/h/.local/share/quiver/models")
        #expect(ModelStore(directory: "/x", environment: ["QUIVER_MODELS": "/m"]).directory == "/x")
    }

    @Test func missingDefaultModelSaysToRunInstallModel() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let registry = EncoderRegistry(modelStore: ModelStore(directory: dir.path))
        #expect { try registry.encoder(named: "all-MiniLM-L6-v2") } throws: { error in
            guard let e = error as? EncoderError else { return false }
            return e.code == .modelNotInstalled && e.message.contains("tools/install-model") && e.message.contains(dir.path)
        }
    }
}

struct EncoderRegistryTests {
    @Test func builtInIsRegisteredAndFoundByName() throws {
        let registry = EncoderRegistry()
        #expect(registry.registeredNames.contains("all-MiniLM-L6-v2"))
        _ = try TestSupport.miniLM.get()  // fails with the install hint when the model is absent
        let encoder = try registry.encoder(named: "all-MiniLM-L6-v2")
        #expect(encoder.identifier == "all-MiniLM-L6-v2")
        #expect(encoder.dimension == 384)
        #expect(encoder.weightsChecksum == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db")
        // Cached: the second lookup returns the same instance.
        let again = try registry.encoder(named: "all-MiniLM-L6-v2")
        #expect((encoder as? SentenceTransformerEncoder) === (again as? SentenceTransformerEncoder))
    }

    @Test func hostAppRegistersItsOwnEncoder() throws {
        let registry = EncoderRegistry(modelStore: ModelStore(directory: "/nonexistent"))
        registry.register("constant", encoder: ConstantEncoder(identifier: "constant", dimension: 3, value: 1))
        let e = try registry.encoder(named: "constant")
        #expect(try e.encode(documents: ["a", "b"]).storage == [1, 1, 1, 1, 1, 1])
        registry.register("constant") { _ in ConstantEncoder(identifier: "constant", dimension: 3, value: 2) }
        #expect(try registry.encoder(named: "constant").encode(documents: ["a"]).storage == [2, 2, 2])
    }

    @Test func unknownNameIsAClearError() {
        let registry = EncoderRegistry(modelStore: ModelStore(directory: "/nonexistent"))
        #expect { try registry.encoder(named: "no-such-model") } throws: {
            ($0 as? EncoderError)?.code == .unknownEncoder && "\($0)".contains("no-such-model")
        }
    }

    @Test func installedFolderIsFoundByName() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try TinyModelTests.writeFolder(dir.appendingPathComponent("tiny"), half: true, pooling: #"{"pooling_mode_mean_tokens": true}"#, normalize: true)
        let registry = EncoderRegistry(modelStore: ModelStore(directory: dir.path))
        let e = try registry.encoder(named: "tiny")
        #expect(e.dimension == TinyModelTests.h && e.producesNormalizedVectors)
    }

    @Test func dualTowerUsesOneModelPerTower() throws {
        let dual = try DualTowerEncoder(query: ConstantEncoder(identifier: "q", dimension: 2, value: 1),
                                        document: ConstantEncoder(identifier: "d", dimension: 2, value: 5))
        #expect(try dual.encode(queries: ["x"]).storage == [-1, -1])
        #expect(try dual.encode(documents: ["x"]).storage == [5, 5])
        #expect(dual.identifier == "query=q;document=d")
        #expect(throws: EncoderError.self) {
            try DualTowerEncoder(query: ConstantEncoder(identifier: "q", dimension: 2, value: 1),
                                 document: ConstantEncoder(identifier: "d", dimension: 3, value: 1))
        }
    }
}

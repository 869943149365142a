import Foundation
import QuiverCore
import Testing
@testable import QuiverEncoder

/// The int8 encoder against the float32 one on the 61 golden-fixture texts, and its identity.
struct Int8EncoderTests {
    static let int8: Result<SentenceTransformerEncoder, EncoderError> = {
        do {
            return .success(try EncoderRegistry().encoder(named: EncoderRegistry.defaultInt8EncoderName) as! SentenceTransformerEncoder)
        } catch let error as EncoderError {
            return .failure(error)
        } catch {
            return .failure(EncoderError(.io, "\(error)"))
        }
    }()

    /// Acceptance: cosine to the float32 embedding >= 0.99 for every fixture text, mean >= 0.995.
    @Test func fixtureEmbeddingsStayCloseToFloat32() throws {
        let references = try TestSupport.references.get()
        let texts = references.map(\.text)
        let float32 = try TestSupport.miniLM.get().encode(documents: texts)
        let int8 = try Self.int8.get().encode(documents: texts)
        #expect(int8.rows == texts.count && int8.dimension == 384)
        var sum = 0.0, worst = 1.0
        for i in 0..<texts.count {
            let cos = TestSupport.cosine(int8[row: i], float32[row: i])
            sum += cos
            worst = min(worst, cos)
            #expect(cos >= 0.99, "cosine \(cos) for \(texts[i].debugDescription.prefix(80))")
            // And to sentence-transformers' own vectors.
            #expect(TestSupport.cosine(int8[row: i], references[i].embedding) >= 0.99)
        }
        let mean = sum / Double(texts.count)
        print("int8 vs float32 on the fixtures: mean cosine \(mean), worst \(worst)")
        #expect(mean >= 0.995)
    }

    /// The kernels compute the same int32 products and the same dequantized floats, so the whole
    /// encoder gives the same vectors, bit for bit, whichever kernel runs.
    @Test func everyKernelGivesTheSameVectors() throws {
        let texts = try TestSupport.references.get().map(\.text).prefix(20).map { $0 }
        let folder = try TestSupport.miniLM.get().folder.path
        var vectors: [Int8Kernel: [Float]] = [:]
        for kernel in Int8Kernel.allCases where kernel.isSupported {
            var options = SentenceTransformerEncoder.Options()
            options.precision = .int8
            options.int8Kernel = kernel
            let encoder = try SentenceTransformerEncoder(folder: folder, options: options)
            #expect(encoder.int8Kernel == kernel)
            vectors[kernel] = try encoder.encode(documents: texts).storage
        }
        let portable = try #require(vectors[.portable])
        for (kernel, v) in vectors { #expect(v.map(\.bitPattern) == portable.map(\.bitPattern), "\(kernel.rawValue)") }
    }

    @Test func identityTellsInt8FromFloat32() throws {
        let int8 = try Self.int8.get(), float32 = try TestSupport.miniLM.get()
        #expect(int8.identifier == "all-MiniLM-L6-v2:int8")
        #expect(int8.weightsChecksum == BuiltInModel.weightsSHA256 + EncoderPrecision.int8ChecksumSuffix)
        #expect(float32.weightsChecksum == BuiltInModel.weightsSHA256)
        #expect(int8.dimension == float32.dimension && int8.producesNormalizedVectors)
        #expect(int8.int8Kernel == Int8Kernel.best && float32.int8Kernel == nil)
        // A folder name with :int8 (not registered) is the int8 version of that installed folder.
        let store = ModelStore()
        let linked = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: linked) }
        try FileManager.default.createSymbolicLink(atPath: linked.path + "/mini", withDestinationPath: store.folderPath(BuiltInModel.name))
        let byFolder = try EncoderRegistry(modelsDirectory: linked.path).encoder(named: "mini:int8")
        #expect(byFolder.identifier == "mini:int8" && byFolder.weightsChecksum == int8.weightsChecksum)
        #expect(throws: EncoderError.self) { try EncoderRegistry(modelsDirectory: linked.path).encoder(named: "absent:int8") }
    }

    /// Acceptance: only int8 weights stay resident for the Linear layers (and the word embeddings):
    /// at most a third of float32's parameter bytes.
    @Test func parametersTakeAThirdOfFloat32() throws {
        let int8 = try Self.int8.get().parameterBytes, float32 = try TestSupport.miniLM.get().parameterBytes
        print("parameter bytes: int8 \(int8), float32 \(float32), ratio \(Double(int8) / Double(float32))")
        #expect(int8 * 3 <= float32)
    }
}

import Foundation
import QuiverCore
import Testing
@testable import QuiverEncoder

/// The acceptance oracle: sentence-transformers' own token ids and embeddings for 61 texts
/// (empty, whitespace, accents composed and decomposed, CJK, other scripts, emoji, control and
/// zero-width characters, punctuation, URLs, and texts far past 256 tokens).
struct GoldenTests {
    @Test func fixtureIsComplete() throws {
        let references = try TestSupport.references.get()
        #expect(references.count == 61)
        #expect(references.allSatisfy { $0.embedding.count == 384 })
    }

    @Test func tokenIDsMatchHuggingFaceForEveryText() throws {
        let references = try TestSupport.references.get()
        let encoder = try TestSupport.miniLM.get()
        let ids = encoder.tokenize(references.map(\.text))
        for (reference, got) in zip(references, ids) {
            #expect(got == reference.inputIDs, "token ids of \(reference.text.debugDescription.prefix(80))")
        }
    }

    @Test func embeddingsMatchSentenceTransformersForEveryText() throws {
        let references = try TestSupport.references.get()
        let encoder = try TestSupport.miniLM.get()
        let vectors = try encoder.encode(documents: references.map(\.text))
        #expect(vectors.rows == references.count)
        #expect(vectors.dimension == 384)
        var worst = 1.0
        for (i, reference) in references.enumerated() {
            let cos = TestSupport.cosine(vectors[row: i], reference.embedding)
            worst = min(worst, cos)
            #expect(cos >= 0.9999, "cosine \(cos) for \(reference.text.debugDescription.prefix(80))")
        }
        print("golden: worst cosine \(worst)")
    }

    @Test func resultDoesNotDependOnBatchingOrThreads() throws {
        let references = try TestSupport.references.get()
        let folder = try TestSupport.miniLM.get().folder.path
        var options = SentenceTransformerEncoder.Options()
        options.threads = 1
        options.batchSize = 1
        let single = try SentenceTransformerEncoder(folder: folder, options: options)
        let texts = Array(references.map(\.text).prefix(12))
        let one = try single.encode(documents: texts)
        let many = try TestSupport.miniLM.get().encode(documents: texts)
        for i in 0..<texts.count {
            #expect(TestSupport.cosine(one[row: i], many[row: i]) > 0.99999, "text \(i)")
        }
    }

    @Test func vectorsAreUnitLength() throws {
        let encoder = try TestSupport.miniLM.get()
        #expect(encoder.producesNormalizedVectors)
        let m = try encoder.encode(queries: ["a query", "", "another, longer query about vector databases"])
        for i in 0..<m.rows {
            let norm = m[row: i].reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
            #expect(abs(norm - 1) < 1e-5)
        }
    }

    @Test func emptyInputGivesEmptyMatrix() throws {
        let m = try TestSupport.miniLM.get().encode(documents: [])
        #expect(m.rows == 0 && m.dimension == 384)
    }

    @Test func weightsChecksumIsTheSha256OfTheSafetensorsFile() throws {
        let encoder = try TestSupport.miniLM.get()
        #expect(encoder.weightsChecksum == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db")
    }
}

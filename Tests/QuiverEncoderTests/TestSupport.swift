import Foundation
import Testing
import QuiverTestSupport
@testable import QuiverEncoder

/// Paths and shared objects of the encoder tests.
enum TestSupport {
    /// The repository root, from this file's path (Tests/QuiverEncoderTests/TestSupport.swift).
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `fixtures/<name>` in the shared folder (see `SharedData`).
    static func fixture(_ name: String) -> URL { SharedData.fixture(name) }

    /// One reference record of `minilm_reference.jsonl`.
    struct Reference: Sendable {
        let text: String
        let inputIDs: [Int32]
        let embedding: [Float]
    }

    /// The 61 reference records, or an error naming the missing file.
    static let references: Result<[Reference], EncoderError> = {
        let url = fixture("minilm_reference.jsonl")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            return .failure(EncoderError(.io, "fixture file missing", path: url.path))
        }
        var out: [Reference] = []
        for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any],
                  let text = object["text"] as? String,
                  let ids = object["input_ids"] as? [NSNumber],
                  let embedding = object["embedding"] as? [NSNumber] else {
                return .failure(EncoderError(.io, "malformed fixture line", path: url.path))
            }
            out.append(Reference(text: text, inputIDs: ids.map { $0.int32Value }, embedding: embedding.map { $0.floatValue }))
        }
        return .success(out)
    }()

    /// The installed all-MiniLM-L6-v2, found by the default model store resolution (the CI installs it
    /// first with tools/install-model); loading failures carry the message to run that script.
    static let miniLM: Result<SentenceTransformerEncoder, EncoderError> = {
        do {
            let folder = try ModelStore().folder(named: EncoderRegistry.defaultEncoderName)
            return .success(try SentenceTransformerEncoder(folder: folder, identifier: EncoderRegistry.defaultEncoderName))
        } catch let error as EncoderError {
            return .failure(error)
        } catch {
            return .failure(EncoderError(.io, "\(error)"))
        }
    }()

    /// A fresh temporary directory.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("quiver-encoder-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Cosine similarity in double.
    static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) { dot += Double(x) * Double(y); na += Double(x) * Double(x); nb += Double(y) * Double(y) }
        return dot / (na.squareRoot() * nb.squareRoot())
    }
}

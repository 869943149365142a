import Foundation
import QuiverCore
import Testing
@testable import QuiverEncoder

/// A tiny random BERT written as a sentence-transformers folder, run by the encoder and by a plain
/// scalar reference forward pass (padded batch with an attention mask, as PyTorch does it).
struct TinyModelTests {
    static let h = 8, heads = 2, inter = 16, layers = 2, positions = 16
    static let vocab = WordPieceTokenizerTests.pieces

    struct Tensor { let name: String; let shape: [Int]; let values: [Float] }

    /// Random parameters, rounded to float16 so the F16 and F32 files hold the same numbers.
    static func parameters(seed: UInt64) -> [Tensor] {
        var state = seed
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Float16(Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 2000))
        }
        func t(_ name: String, _ shape: [Int], offset: Float = 0) -> Tensor {
            Tensor(name: name, shape: shape, values: (0..<shape.reduce(1, *)).map { _ in Float(Float16(next() + offset)) })
        }
        var out = [t("embeddings.word_embeddings.weight", [vocab.count, h]),
                   t("embeddings.position_embeddings.weight", [positions, h]),
                   t("embeddings.token_type_embeddings.weight", [2, h]),
                   t("embeddings.LayerNorm.weight", [h], offset: 1), t("embeddings.LayerNorm.bias", [h])]
        for l in 0..<layers {
            let p = "encoder.layer.\(l)."
            for m in ["query", "key", "value"] {
                out += [t(p + "attention.self.\(m).weight", [h, h]), t(p + "attention.self.\(m).bias", [h])]
            }
            out += [t(p + "attention.output.dense.weight", [h, h]), t(p + "attention.output.dense.bias", [h]),
                    t(p + "attention.output.LayerNorm.weight", [h], offset: 1), t(p + "attention.output.LayerNorm.bias", [h]),
                    t(p + "intermediate.dense.weight", [inter, h]), t(p + "intermediate.dense.bias", [inter]),
                    t(p + "output.dense.weight", [h, inter]), t(p + "output.dense.bias", [h]),
                    t(p + "output.LayerNorm.weight", [h], offset: 1), t(p + "output.LayerNorm.bias", [h])]
        }
        return out
    }

    static func writeSafetensors(_ tensors: [Tensor], half: Bool, to url: URL) throws {
        var header: [String] = [], data: [UInt8] = []
        for t in tensors {
            let begin = data.count
            if half {
                data += SafetensorsTests.halfBytes(t.values.map { Float16($0) })
            } else {
                data += SafetensorsTests.floatBytes(t.values)
            }
            header.append(#""\#(t.name)":{"dtype":"\#(half ? "F16" : "F32")","shape":\#(t.shape),"data_offsets":[\#(begin),\#(data.count)]}"#)
        }
        let dir = url.deletingLastPathComponent()
        let path = try SafetensorsTests.write(header: "{" + header.joined(separator: ",") + "}", data: data, in: dir, name: url.lastPathComponent)
        #expect(path == url.path)
    }

    /// Writes the folder; `pooling` is the 1_Pooling/config.json body.
    static func writeFolder(_ dir: URL, half: Bool, pooling: String, normalize: Bool, extra: [String: String] = [:]) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: dir.appendingPathComponent("1_Pooling"), withIntermediateDirectories: true)
        try #"{"model_type":"bert","hidden_act":"gelu","hidden_size":\#(h),"num_hidden_layers":\#(layers),"num_attention_heads":\#(heads),"intermediate_size":\#(inter),"max_position_embeddings":\#(positions),"type_vocab_size":2,"vocab_size":\#(vocab.count),"layer_norm_eps":1e-12}"#
            .write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        try (vocab.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        var modules = [#"{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"}"#,
                       #"{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}"#]
        if normalize { modules.append(#"{"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}"#) }
        try ("[" + modules.joined(separator: ",") + "]").write(to: dir.appendingPathComponent("modules.json"), atomically: true, encoding: .utf8)
        try pooling.write(to: dir.appendingPathComponent("1_Pooling/config.json"), atomically: true, encoding: .utf8)
        try #"{"max_seq_length": 12, "do_lower_case": false}"#.write(to: dir.appendingPathComponent("sentence_bert_config.json"), atomically: true, encoding: .utf8)
        for (name, body) in extra { try body.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        try writeSafetensors(parameters(seed: 7), half: half, to: dir.appendingPathComponent("model.safetensors"))
    }

    /// The reference: BERT over a padded batch with an additive attention mask, in double, then CLS pooling.
    /// Plain loops throughout: it should read like the textbook, not like the encoder.
    static func reference(_ batch: [[Int32]]) -> [[Float]] {
        var p: [String: [Double]] = [:]
        for t in parameters(seed: 7) { p[t.name] = t.values.map { Double($0) } }
        let width = batch.map(\.count).max() ?? 0
        func linear(_ x: [[Double]], _ w: String, _ b: String) -> [[Double]] {
            let wv = p[w]!, bv = p[b]!
            let outputs = bv.count, inputs = x[0].count
            var y: [[Double]] = []
            for row in x {
                var out = bv
                for o in 0..<outputs {
                    for i in 0..<inputs { out[o] += row[i] * wv[o * inputs + i] }
                }
                y.append(out)
            }
            return y
        }
        func norm(_ x: [[Double]], _ g: String, _ b: String) -> [[Double]] {
            let gamma = p[g]!, beta = p[b]!
            var y: [[Double]] = []
            for row in x {
                let n = Double(row.count)
                var mean = 0.0
                for v in row { mean += v / n }
                var variance = 0.0
                for v in row { variance += (v - mean) * (v - mean) / n }
                let inv = 1 / (variance + 1e-12).squareRoot()
                var out: [Double] = []
                for j in row.indices { out.append((row[j] - mean) * inv * gamma[j] + beta[j]) }
                y.append(out)
            }
            return y
        }
        func add(_ a: [[Double]], _ b: [[Double]]) -> [[Double]] {
            var y = a
            for i in y.indices { for j in y[i].indices { y[i][j] += b[i][j] } }
            return y
        }
        var result: [[Float]] = []
        for ids in batch {
            let padded = ids + [Int32](repeating: 0, count: width - ids.count)
            let word = p["embeddings.word_embeddings.weight"]!, position = p["embeddings.position_embeddings.weight"]!
            let type = p["embeddings.token_type_embeddings.weight"]!
            var x: [[Double]] = []
            for (pos, id) in padded.enumerated() {
                var row: [Double] = []
                for j in 0..<h { row.append(word[Int(id) * h + j] + position[pos * h + j] + type[j]) }
                x.append(row)
            }
            x = norm(x, "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias")
            for l in 0..<layers {
                let pre = "encoder.layer.\(l)."
                let q = linear(x, pre + "attention.self.query.weight", pre + "attention.self.query.bias")
                let k = linear(x, pre + "attention.self.key.weight", pre + "attention.self.key.bias")
                let v = linear(x, pre + "attention.self.value.weight", pre + "attention.self.value.bias")
                let d = h / heads
                var context = [[Double]](repeating: [Double](repeating: 0, count: h), count: width)
                for head in 0..<heads {
                    for i in 0..<width {
                        var scores: [Double] = []
                        for j in 0..<width {
                            var dot = 0.0
                            for c in (head * d)..<((head + 1) * d) { dot += q[i][c] * k[j][c] }
                            // The padding mask: padded keys get -1e9 before the softmax.
                            scores.append(dot / Double(d).squareRoot() + (j < ids.count ? 0 : -1e9))
                        }
                        let m = scores.max()!
                        var weights = scores.map { Foundation.exp($0 - m) }
                        let total = weights.reduce(0, +)
                        for j in weights.indices { weights[j] /= total }
                        for c in (head * d)..<((head + 1) * d) {
                            for j in 0..<width { context[i][c] += weights[j] * v[j][c] }
                        }
                    }
                }
                let attention = linear(context, pre + "attention.output.dense.weight", pre + "attention.output.dense.bias")
                x = norm(add(x, attention), pre + "attention.output.LayerNorm.weight", pre + "attention.output.LayerNorm.bias")
                var hidden = linear(x, pre + "intermediate.dense.weight", pre + "intermediate.dense.bias")
                for i in hidden.indices {
                    for j in hidden[i].indices {
                        let z = hidden[i][j]
                        hidden[i][j] = 0.5 * z * (1 + Foundation.erf(z / 2.0.squareRoot()))
                    }
                }
                let out = linear(hidden, pre + "output.dense.weight", pre + "output.dense.bias")
                x = norm(add(x, out), pre + "output.LayerNorm.weight", pre + "output.LayerNorm.bias")
            }
            result.append(x[0].map { Float($0) })
        }
        return result
    }

    static let texts = ["hello world", "un affable cafe , naive", "", "a b 中 文 hello hello world world hello world hello world !"]

    @Test func forwardPassMatchesScalarReferenceWithCLSPooling() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.writeFolder(dir, half: false, pooling: #"{"pooling_mode_cls_token": true}"#, normalize: false)
        let encoder = try SentenceTransformerEncoder(folder: dir.path)
        #expect(encoder.dimension == Self.h)
        #expect(encoder.maxSequenceLength == 12)
        #expect(!encoder.producesNormalizedVectors)
        let ids = encoder.tokenize(Self.texts)
        #expect(ids.last?.count == 12)  // truncated by sentence_bert_config.json
        let got = encoder.embed(tokenIDs: ids)
        let expected = Self.reference(ids)
        for i in 0..<Self.texts.count {
            for j in 0..<Self.h {
                #expect(abs(got[row: i][j] - expected[i][j]) < 1e-4, "text \(i) component \(j)")
            }
        }
    }

    @Test func f16WeightsGiveTheSameVectorsAsF32() throws {
        let a = try TestSupport.temporaryDirectory(), b = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let pooling = #"{"pooling_mode_mean_tokens": true}"#
        try Self.writeFolder(a, half: false, pooling: pooling, normalize: true)
        try Self.writeFolder(b, half: true, pooling: pooling, normalize: true)
        let f32 = try SentenceTransformerEncoder(folder: a.path), f16 = try SentenceTransformerEncoder(folder: b.path)
        #expect(f32.weightsChecksum != f16.weightsChecksum)
        #expect(try f32.encode(documents: Self.texts) == f16.encode(documents: Self.texts))
    }

    @Test func promptsBecomeQueryAndDocumentPrefixes() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.writeFolder(dir, half: false, pooling: #"{"pooling_mode_mean_tokens": true}"#, normalize: true,
                             extra: ["config_sentence_transformers.json": #"{"prompts": {"query": "hello ", "document": "world "}}"#])
        let encoder = try SentenceTransformerEncoder(folder: dir.path)
        #expect(encoder.queryPrefix == "hello " && encoder.documentPrefix == "world ")
        let q = try encoder.encode(queries: ["cafe"]), d = try encoder.encode(documents: ["cafe"])
        #expect(q == encoder.embed(["hello cafe"]))
        #expect(d == encoder.embed(["world cafe"]))
        #expect(q != d)
        var options = SentenceTransformerEncoder.Options()
        options.queryPrefix = ""
        #expect(try SentenceTransformerEncoder(folder: dir.path, options: options).encode(queries: ["cafe"]) == encoder.embed(["cafe"]))
    }

    @Test func unsupportedArchitectureIsRefused() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.writeFolder(dir, half: false, pooling: #"{"pooling_mode_mean_tokens": true}"#, normalize: false)
        try #"{"model_type":"bert","hidden_act":"relu","hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16,"vocab_size":27}"#
            .write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        #expect { try SentenceTransformerEncoder(folder: dir.path) } throws: {
            ($0 as? EncoderError)?.code == .unsupportedModel && "\($0)".contains("relu")
        }
    }

    @Test func missingTensorIsNamed() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.writeFolder(dir, half: false, pooling: #"{"pooling_mode_mean_tokens": true}"#, normalize: false)
        try Self.writeSafetensors(Array(Self.parameters(seed: 7).dropLast()), half: false, to: dir.appendingPathComponent("model.safetensors"))
        #expect { try SentenceTransformerEncoder(folder: dir.path) } throws: {
            ($0 as? EncoderError)?.code == .missingTensor && "\($0)".contains("encoder.layer.1.output.LayerNorm.bias")
        }
    }
}

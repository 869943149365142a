import Foundation

/// The architecture numbers of a BERT checkpoint, from its Hugging Face `config.json`.
public struct BertConfig: Sendable, Equatable {
    /// Width of every token vector (384 for MiniLM-L6).
    public var hiddenSize: Int
    /// Number of transformer layers.
    public var layerCount: Int
    /// Number of attention heads; `hiddenSize` must be a multiple of it.
    public var headCount: Int
    /// Width of the feed-forward layer.
    public var intermediateSize: Int
    /// Rows of the position embedding table: the longest sequence the model accepts.
    public var maxPositions: Int
    /// Rows of the token type table.
    public var typeVocabularySize: Int
    /// Rows of the word embedding table.
    public var vocabularySize: Int
    /// LayerNorm's epsilon.
    public var layerNormEps: Float

    /// Width of one attention head.
    public var headSize: Int { hiddenSize / headCount }

    /// A configuration from explicit numbers.
    public init(hiddenSize: Int, layerCount: Int, headCount: Int, intermediateSize: Int,
                maxPositions: Int, typeVocabularySize: Int, vocabularySize: Int, layerNormEps: Float) {
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.intermediateSize = intermediateSize
        self.maxPositions = maxPositions
        self.typeVocabularySize = typeVocabularySize
        self.vocabularySize = vocabularySize
        self.layerNormEps = layerNormEps
    }

    /// Reads `config.json`; refuses what the forward pass does not implement (another activation,
    /// relative position embeddings) instead of computing something else.
    public init(contentsOf path: String) throws {
        func bad(_ message: String) -> EncoderError { EncoderError(.invalidModelFolder, message, path: path) }
        guard let data = FileManager.default.contents(atPath: path) else { throw bad("cannot read config.json") }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw bad("config.json is not a JSON object")
        }
        func int(_ key: String, default value: Int? = nil) throws -> Int {
            if let n = json[key] as? NSNumber, let i = Int(exactly: n.doubleValue), i > 0 { return i }
            if json[key] == nil, let value { return value }
            throw bad("config.json lacks a positive integer '\(key)'")
        }
        if let type = json["model_type"] as? String, type != "bert" {
            throw EncoderError(.unsupportedModel, "model_type '\(type)' is not BERT", path: path)
        }
        if let act = json["hidden_act"] as? String, act != "gelu" {
            throw EncoderError(.unsupportedModel, "hidden_act '\(act)' is not implemented (only the erf GELU 'gelu')", path: path)
        }
        if let pos = json["position_embedding_type"] as? String, pos != "absolute" {
            throw EncoderError(.unsupportedModel, "position_embedding_type '\(pos)' is not implemented (only 'absolute')", path: path)
        }
        self.init(
            hiddenSize: try int("hidden_size"),
            layerCount: try int("num_hidden_layers"),
            headCount: try int("num_attention_heads"),
            intermediateSize: try int("intermediate_size"),
            maxPositions: try int("max_position_embeddings", default: 512),
            typeVocabularySize: try int("type_vocab_size", default: 2),
            vocabularySize: try int("vocab_size"),
            layerNormEps: (json["layer_norm_eps"] as? NSNumber)?.floatValue ?? 1e-12)
        guard hiddenSize % headCount == 0 else {
            throw bad("hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(headCount)")
        }
    }
}

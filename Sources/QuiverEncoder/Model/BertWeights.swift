/// The parameters of one transformer layer, in PyTorch's `Linear` layout: a weight is (out, in),
/// row-major, and applying it is `x · Wᵀ + b`.
struct BertLayerWeights: Sendable {
    /// Query, key and value projections stacked into one (3H, H) matrix, so that one sgemm computes all
    /// three; rows [0, H) are the query, [H, 2H) the key, [2H, 3H) the value.
    var qkvWeight: [Float]
    var qkvBias: [Float]          // (3H)
    var attentionOutWeight: [Float]  // (H, H)
    var attentionOutBias: [Float]    // (H)
    var attentionNormGamma: [Float]  // (H)
    var attentionNormBeta: [Float]   // (H)
    var intermediateWeight: [Float]  // (I, H)
    var intermediateBias: [Float]    // (I)
    var outputWeight: [Float]        // (H, I)
    var outputBias: [Float]          // (H)
    var outputNormGamma: [Float]     // (H)
    var outputNormBeta: [Float]      // (H)
}

/// All parameters of a BERT encoder, copied out of the safetensors mapping as float32.
struct BertWeights: Sendable {
    var wordEmbeddings: [Float]         // (V, H)
    /// Position embeddings with token type 0 already added: single-sentence inputs always use type 0,
    /// so the sum is precomputed once instead of once per token.
    var positionAndTypeEmbeddings: [Float]  // (P, H)
    var embeddingNormGamma: [Float]     // (H)
    var embeddingNormBeta: [Float]      // (H)
    var layers: [BertLayerWeights]

    /// Reads and shape-checks every tensor. Names may carry a `bert.` prefix (BertForX checkpoints).
    init(file: SafetensorsFile, config c: BertConfig) throws {
        let prefix = file.tensors["bert.embeddings.word_embeddings.weight"] != nil ? "bert." : ""
        func t(_ name: String, _ shape: [Int]) throws -> [Float] { try file.floats(prefix + name, shape: shape) }
        let h = c.hiddenSize, i = c.intermediateSize
        wordEmbeddings = try t("embeddings.word_embeddings.weight", [c.vocabularySize, h])
        var positions = try t("embeddings.position_embeddings.weight", [c.maxPositions, h])
        let types = try t("embeddings.token_type_embeddings.weight", [c.typeVocabularySize, h])
        for p in 0..<c.maxPositions { for j in 0..<h { positions[p * h + j] += types[j] } }
        positionAndTypeEmbeddings = positions
        embeddingNormGamma = try t("embeddings.LayerNorm.weight", [h])
        embeddingNormBeta = try t("embeddings.LayerNorm.bias", [h])
        layers = try (0..<c.layerCount).map { l in
            let p = "encoder.layer.\(l)."
            return BertLayerWeights(
                qkvWeight: try t(p + "attention.self.query.weight", [h, h])
                    + t(p + "attention.self.key.weight", [h, h])
                    + t(p + "attention.self.value.weight", [h, h]),
                qkvBias: try t(p + "attention.self.query.bias", [h])
                    + t(p + "attention.self.key.bias", [h])
                    + t(p + "attention.self.value.bias", [h]),
                attentionOutWeight: try t(p + "attention.output.dense.weight", [h, h]),
                attentionOutBias: try t(p + "attention.output.dense.bias", [h]),
                attentionNormGamma: try t(p + "attention.output.LayerNorm.weight", [h]),
                attentionNormBeta: try t(p + "attention.output.LayerNorm.bias", [h]),
                intermediateWeight: try t(p + "intermediate.dense.weight", [i, h]),
                intermediateBias: try t(p + "intermediate.dense.bias", [i]),
                outputWeight: try t(p + "output.dense.weight", [h, i]),
                outputBias: try t(p + "output.dense.bias", [h]),
                outputNormGamma: try t(p + "output.LayerNorm.weight", [h]),
                outputNormBeta: try t(p + "output.LayerNorm.bias", [h]))
        }
    }
}

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

extension BertLayerWeights {
    /// The layer's weight buffers, valid only inside `withPointers`' body.
    struct Pointers {
        let qkvWeight, qkvBias: UnsafePointer<Float>
        let attentionOutWeight, attentionOutBias, attentionNormGamma, attentionNormBeta: UnsafePointer<Float>
        let intermediateWeight, intermediateBias: UnsafePointer<Float>
        let outputWeight, outputBias, outputNormGamma, outputNormBeta: UnsafePointer<Float>
    }

    /// Lends every weight buffer of the layer at once (the arrays' own storage, not copies).
    func withPointers<R>(_ body: (Pointers) -> R) -> R {
        lendingBuffers([qkvWeight, qkvBias, attentionOutWeight, attentionOutBias, attentionNormGamma, attentionNormBeta,
                        intermediateWeight, intermediateBias, outputWeight, outputBias, outputNormGamma, outputNormBeta]) { p in
            body(Pointers(qkvWeight: p[0], qkvBias: p[1], attentionOutWeight: p[2], attentionOutBias: p[3],
                          attentionNormGamma: p[4], attentionNormBeta: p[5], intermediateWeight: p[6], intermediateBias: p[7],
                          outputWeight: p[8], outputBias: p[9], outputNormGamma: p[10], outputNormBeta: p[11]))
        }
    }
}

/// Lends the storage of every array of `arrays` at once, in order, for the duration of `body`:
/// each array's `withUnsafeBufferPointer` in turn, nested by recursion instead of by hand. An empty
/// array lends a pointer that must not be read.
func lendingBuffers<R>(_ arrays: [[Float]], _ body: ([UnsafePointer<Float>]) -> R) -> R {
    var pointers: [UnsafePointer<Float>] = []
    pointers.reserveCapacity(arrays.count)
    func lend(_ i: Int) -> R {
        if i == arrays.count { return body(pointers) }
        return arrays[i].withUnsafeBufferPointer { buffer in
            pointers.append(buffer.baseAddress ?? UnsafePointer(bitPattern: MemoryLayout<Float>.alignment)!)
            return lend(i + 1)
        }
    }
    return lend(0)
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

import CQuiverKernels

/// A forward pass over packed batches: the float32 `BertModel` or the int8 `Int8BertModel`.
protocol BertForward: Sendable {
    var config: BertConfig { get }
    /// The last hidden states (T, H) of the batch, in `workspace.hidden` until the workspace's next use.
    func forward(_ batch: PackedBatch, workspace: BertWorkspace) -> UnsafeMutablePointer<Float>
    /// Bytes of parameters held in memory.
    var parameterBytes: Int { get }
}

extension BertModel: BertForward {
    var parameterBytes: Int { weights.parameterCount * MemoryLayout<Float>.size }
}

extension BertWeights {
    /// Parameters held, all float32.
    var parameterCount: Int {
        let layer = layers.first.map { l in
            [l.qkvWeight, l.qkvBias, l.attentionOutWeight, l.attentionOutBias, l.attentionNormGamma, l.attentionNormBeta,
             l.intermediateWeight, l.intermediateBias, l.outputWeight, l.outputBias, l.outputNormGamma, l.outputNormBeta]
                .reduce(0) { $0 + $1.count }
        } ?? 0
        return wordEmbeddings.count + positionAndTypeEmbeddings.count + embeddingNormGamma.count
            + embeddingNormBeta.count + layer * layers.count
    }
}

/// The word embedding table in int8, one symmetric scale per row (per token id): 4x smaller than
/// float32, and a row is turned back into float32 when it is looked up, so the sum with the position
/// embeddings and the LayerNorm that follows run in float32.
struct Int8EmbeddingTable: Sendable {
    let values: [Int8]   // (V, H)
    let scales: [Float]  // (V)
    let width: Int

    // table: (V, H)
    init(quantizing table: [Float], width h: Int) {
        let rows = table.count / h
        var scales = [Float](repeating: 0, count: rows)
        let values = [Int8](unsafeUninitializedCapacity: table.count) { q, count in
            table.withUnsafeBufferPointer { t in
                for r in 0..<rows { scales[r] = qk_quantize_row_reference(t.baseAddress! + r * h, Int32(h), q.baseAddress! + r * h) }
            }
            count = table.count
        }
        self.values = values
        self.scales = scales
        width = h
    }

    var byteCount: Int { values.count + scales.count * MemoryLayout<Float>.size }
}

/// The parameters of one transformer layer with int8 Linear weights (biases and LayerNorms float32).
struct Int8LayerWeights: Sendable {
    let qkv: Int8Matrix                // (3H, H)
    let qkvBias: [Float]               // (3H)
    let attentionOut: Int8Matrix       // (H, H)
    let attentionOutBias: [Float]      // (H)
    let attentionNormGamma: [Float]    // (H)
    let attentionNormBeta: [Float]     // (H)
    let intermediate: Int8Matrix       // (I, H)
    let intermediateBias: [Float]      // (I)
    let output: Int8Matrix             // (H, I)
    let outputBias: [Float]            // (H)
    let outputNormGamma: [Float]       // (H)
    let outputNormBeta: [Float]        // (H)

    /// Quantizes a float32 layer's four Linear weights; the float32 matrices are not kept.
    init(_ f: BertLayerWeights, config c: BertConfig) {
        let h = c.hiddenSize, i = c.intermediateSize
        func quantize(_ w: [Float], _ rows: Int, _ columns: Int) -> Int8Matrix {
            w.withUnsafeBufferPointer { Int8Matrix(quantizing: $0.baseAddress!, rows: rows, columns: columns) }
        }
        qkv = quantize(f.qkvWeight, 3 * h, h)
        attentionOut = quantize(f.attentionOutWeight, h, h)
        intermediate = quantize(f.intermediateWeight, i, h)
        output = quantize(f.outputWeight, h, i)
        qkvBias = f.qkvBias; attentionOutBias = f.attentionOutBias
        attentionNormGamma = f.attentionNormGamma; attentionNormBeta = f.attentionNormBeta
        intermediateBias = f.intermediateBias; outputBias = f.outputBias
        outputNormGamma = f.outputNormGamma; outputNormBeta = f.outputNormBeta
    }

    var byteCount: Int {
        qkv.byteCount + attentionOut.byteCount + intermediate.byteCount + output.byteCount
            + [qkvBias, attentionOutBias, attentionNormGamma, attentionNormBeta, intermediateBias, outputBias,
               outputNormGamma, outputNormBeta].reduce(0) { $0 + $1.count * MemoryLayout<Float>.size }
    }
}

/// The BERT encoder stack with int8 Linear layers: symmetric per-output-channel int8 weights,
/// activations quantized per token at run time, int32 accumulation (CQuiverKernels), and float32
/// for the embeddings, LayerNorm, attention's softmax and products, GELU and pooling.
///
/// Only int8 weights stay resident for the Linear layers and the word embeddings (about 23 MB for
/// MiniLM-L6 against 91 MB in float32): the float32 weights are read, quantized and dropped at load.
///
/// Thread safety: immutable; several threads may run `forward` at once, each with its own workspace.
struct Int8BertModel: BertForward {
    let config: BertConfig
    let kernel: Int8Kernel
    let wordEmbeddings: Int8EmbeddingTable
    let positionAndTypeEmbeddings: [Float]  // (P, H)
    let embeddingNormGamma: [Float]         // (H)
    let embeddingNormBeta: [Float]          // (H)
    let layers: [Int8LayerWeights]

    /// Quantizes float32 weights (which the caller then drops).
    init(config: BertConfig, weights: BertWeights, kernel: Int8Kernel) {
        self.config = config
        self.kernel = kernel
        wordEmbeddings = Int8EmbeddingTable(quantizing: weights.wordEmbeddings, width: config.hiddenSize)
        positionAndTypeEmbeddings = weights.positionAndTypeEmbeddings
        embeddingNormGamma = weights.embeddingNormGamma
        embeddingNormBeta = weights.embeddingNormBeta
        layers = weights.layers.map { Int8LayerWeights($0, config: config) }
    }

    var parameterBytes: Int {
        wordEmbeddings.byteCount + layers.reduce(0) { $0 + $1.byteCount }
            + (positionAndTypeEmbeddings.count + embeddingNormGamma.count + embeddingNormBeta.count) * MemoryLayout<Float>.size
    }

    func forward(_ batch: PackedBatch, workspace ws: BertWorkspace) -> UnsafeMutablePointer<Float> {
        let t = batch.tokenCount
        ws.reserve(tokens: t, longest: batch.longest)
        batch.ids.withUnsafeBufferPointer { ids in
            batch.offsets.withUnsafeBufferPointer { offsets in
                embed(ids: ids, offsets: offsets, into: ws.hidden)
                for layer in layers {
                    transformerLayer(layer, x: ws.hidden, tokens: t, offsets: offsets, workspace: ws)
                }
            }
        }
        return ws.hidden
    }

    /// Word (dequantized int8 row) + position + token type (0) embeddings, then LayerNorm.
    // ids: (T), x: (T, H)
    func embed(ids: UnsafeBufferPointer<Int32>, offsets: UnsafeBufferPointer<Int>, into x: UnsafeMutablePointer<Float>) {
        let h = config.hiddenSize
        wordEmbeddings.values.withUnsafeBufferPointer { word in
            positionAndTypeEmbeddings.withUnsafeBufferPointer { position in
                for s in 0..<(offsets.count - 1) {
                    for tok in offsets[s]..<offsets[s + 1] {
                        let id = Int(ids[tok])
                        let w = word.baseAddress! + id * h, scale = wordEmbeddings.scales[id]
                        let p = position.baseAddress! + (tok - offsets[s]) * h
                        let row = x + tok * h
                        for j in 0..<h { row[j] = Float(w[j]) * scale + p[j] }
                    }
                }
            }
        }
        embeddingNormGamma.withUnsafeBufferPointer { g in
            embeddingNormBeta.withUnsafeBufferPointer { b in
                Kernels.layerNorm(x, rows: ids.count, n: h, gamma: g.baseAddress!, beta: b.baseAddress!, eps: config.layerNormEps)
            }
        }
    }

    /// One transformer layer, in place on x, as `BertModel.transformerLayer` with int8 Linears:
    /// x = LN(x + Attention(x) Woᵀ + bo); x = LN(x + GELU(x W1ᵀ + b1) W2ᵀ + b2).
    // x: (T, H)
    func transformerLayer(_ w: Int8LayerWeights, x: UnsafeMutablePointer<Float>, tokens t: Int,
                          offsets: UnsafeBufferPointer<Int>, workspace ws: BertWorkspace) {
        let h = config.hiddenSize, i = config.intermediateSize, eps = config.layerNormEps
        // Self-attention block.
        w.qkv.linear(x, tokens: t, bias: w.qkvBias, into: ws.qkv, accumulate: false, kernel: kernel)
        config.attention(qkv: ws.qkv, offsets: offsets, into: ws.context, scores: ws.scores)
        w.attentionOut.linear(ws.context, tokens: t, bias: w.attentionOutBias, into: x, accumulate: true, kernel: kernel)
        Self.layerNorm(x, tokens: t, width: h, gamma: w.attentionNormGamma, beta: w.attentionNormBeta, eps: eps)
        // Feed-forward block.
        w.intermediate.linear(x, tokens: t, bias: w.intermediateBias, into: ws.intermediate, accumulate: false, kernel: kernel)
        Kernels.gelu(ws.intermediate, count: t * i)
        w.output.linear(ws.intermediate, tokens: t, bias: w.outputBias, into: x, accumulate: true, kernel: kernel)
        Self.layerNorm(x, tokens: t, width: h, gamma: w.outputNormGamma, beta: w.outputNormBeta, eps: eps)
    }

    // x: (T, H), gamma: (H), beta: (H)
    static func layerNorm(_ x: UnsafeMutablePointer<Float>, tokens t: Int, width h: Int, gamma: [Float], beta: [Float], eps: Float) {
        gamma.withUnsafeBufferPointer { g in
            beta.withUnsafeBufferPointer { b in
                Kernels.layerNorm(x, rows: t, n: h, gamma: g.baseAddress!, beta: b.baseAddress!, eps: eps)
            }
        }
    }
}

/// Gives freed heap pages back to the kernel after a load that dropped large float32 arrays, so the
/// resident size reflects what the model keeps.
func releaseFreedMemory() {
    qk_release_freed_memory()
}

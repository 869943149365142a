import CQuiverKernels
import QuiverCore

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

    // table: (V, H)
    init(quantizing table: [Float], width h: Int) {
        let rows = table.count / h
        var scales = [Float](repeating: 0, count: rows)
        values = [Int8](unsafeUninitializedCapacity: table.count) { q, count in
            table.withUnsafeBufferPointer { t in
                for r in 0..<rows { scales[r] = qk_quantize_row_reference(t.baseAddress! + r * h, Int32(h), q.baseAddress! + r * h) }
            }
            count = table.count
        }
        self.scales = scales
    }

    var byteCount: Int { values.count + scales.count * MemoryLayout<Float>.size }
}

/// The four Linear layers of a transformer layer, in the order the forward pass applies them.
enum LinearSlot: Int, CaseIterable {
    case qkv, attentionOut, intermediate, output
}

/// The parameters of one transformer layer with int8 Linear weights (biases and LayerNorms float32).
struct Int8LayerWeights: Sendable {
    let linears: [Int8Matrix]          // by LinearSlot: (3H, H), (H, H), (I, H), (H, I)
    let biases: [[Float]]              // by LinearSlot: (3H), (H), (I), (H)
    let attentionNormGamma: [Float]    // (H)
    let attentionNormBeta: [Float]     // (H)
    let outputNormGamma: [Float]       // (H)
    let outputNormBeta: [Float]        // (H)

    /// Quantizes a float32 layer's four Linear weights, each smoothed with its input channels' largest
    /// magnitudes `inputMax` (by LinearSlot); the float32 matrices are not kept.
    init(_ f: BertLayerWeights, inputMax: [[Float]], config c: BertConfig) {
        let h = c.hiddenSize, i = c.intermediateSize
        let shapes = [(f.qkvWeight, 3 * h, h), (f.attentionOutWeight, h, h), (f.intermediateWeight, i, h), (f.outputWeight, h, i)]
        linears = shapes.enumerated().map { slot, shape in
            let (w, rows, columns) = shape
            let s = Self.smoothing(weight: w, rows: rows, columns: columns, inputMax: inputMax[slot])
            return w.withUnsafeBufferPointer { Int8Matrix(quantizing: $0.baseAddress!, rows: rows, columns: columns, smoothing: s) }
        }
        biases = [f.qkvBias, f.attentionOutBias, f.intermediateBias, f.outputBias]
        attentionNormGamma = f.attentionNormGamma; attentionNormBeta = f.attentionNormBeta
        outputNormGamma = f.outputNormGamma; outputNormBeta = f.outputNormBeta
    }

    /// SmoothQuant's per-input-channel factors with α = 1/2: s_j = sqrt(a_j / w_j), a_j the largest
    /// |x_j| seen in calibration, w_j = max_i |W_ij|. BERT's hidden states carry a few channels whose
    /// values (on [CLS] and [SEP] above all) are tens of times the rest: unsmoothed, one of them sets
    /// the token's activation scale and the other channels keep only a few levels.
    // weight: (OC, C), inputMax: (C)
    static func smoothing(weight: [Float], rows: Int, columns: Int, inputMax: [Float]) -> [Float] {
        var w = [Float](repeating: 0, count: columns)
        for r in 0..<rows { for j in 0..<columns { w[j] = max(w[j], abs(weight[r * columns + j])) } }
        return (0..<columns).map { j in
            guard inputMax[j] > 0, w[j] > 0 else { return 1 }
            return min(max((inputMax[j] / w[j]).squareRoot(), 1e-3), 1e3)
        }
    }

    var byteCount: Int {
        linears.reduce(0) { $0 + $1.byteCount }
            + (biases + [attentionNormGamma, attentionNormBeta, outputNormGamma, outputNormBeta])
            .reduce(0) { $0 + $1.count * MemoryLayout<Float>.size }
    }
}

/// The BERT encoder stack with int8 Linear layers: symmetric per-output-channel int8 weights,
/// activations quantized per token at run time, int32 accumulation (CQuiverKernels), and float32
/// for the embeddings, LayerNorm, attention's softmax and products, GELU and pooling.
///
/// Load: the float32 model runs once over a fixed calibration batch (pseudo-random token sequences of
/// 1 to 126 word pieces between `[CLS]` and `[SEP]`, deterministic) to find each Linear input
/// channel's largest magnitude, which sets its smoothing (`Int8LayerWeights.smoothing`); then the
/// weights are quantized and the float32 copies dropped. Only int8 weights stay resident for the
/// Linear layers and the word embeddings (about 23 MB for MiniLM-L6 against 90 MB in float32).
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

    /// Calibrates on the float32 weights and quantizes them (the caller then drops them).
    init(config: BertConfig, weights: BertWeights, kernel: Int8Kernel, clsID: Int32, sepID: Int32) {
        self.config = config
        self.kernel = kernel
        wordEmbeddings = Int8EmbeddingTable(quantizing: weights.wordEmbeddings, width: config.hiddenSize)
        positionAndTypeEmbeddings = weights.positionAndTypeEmbeddings
        embeddingNormGamma = weights.embeddingNormGamma
        embeddingNormBeta = weights.embeddingNormBeta
        let inputMax = Self.calibrate(BertModel(config: config, weights: weights), clsID: clsID, sepID: sepID)
        layers = zip(weights.layers, inputMax).map { Int8LayerWeights($0, inputMax: $1, config: config) }
    }

    var parameterBytes: Int {
        wordEmbeddings.byteCount + layers.reduce(0) { $0 + $1.byteCount }
            + (positionAndTypeEmbeddings.count + embeddingNormGamma.count + embeddingNormBeta.count) * MemoryLayout<Float>.size
    }

    /// The largest |x_j| of each Linear layer's input channels, [layer][LinearSlot][channel], over the
    /// float32 model's forward pass of the calibration batch.
    static func calibrate(_ model: BertModel, clsID: Int32, sepID: Int32) -> [[[Float]]] {
        let c = model.config
        var rng = SplitMix64(seed: 0x5157_4952)
        var batch = PackedBatch()
        for length in [0, 1, 2, 6, 14, 30, 62, 126] where length + 2 <= c.maxPositions {
            // Word pieces from the upper part of the vocabulary (BERT vocabularies keep special and
            // unused tokens in the first thousand ids).
            let low = Int32(min(1000, c.vocabularySize - 1))
            let words = (0..<length).map { _ in low + Int32(rng.next() % UInt64(Int32(c.vocabularySize) - low)) }
            batch.append([clsID] + words + [sepID])
        }
        let ws = BertWorkspace(config: c)
        let t = batch.tokenCount
        ws.reserve(tokens: t, longest: batch.longest)
        var inputMax: [[[Float]]] = []
        batch.ids.withUnsafeBufferPointer { ids in
            batch.offsets.withUnsafeBufferPointer { offsets in
                model.embed(ids: ids, offsets: offsets, into: ws.hidden)
                for f in model.weights.layers {
                    var seen = [[Float]](repeating: [], count: LinearSlot.allCases.count)
                    layer(f.attentionNormGamma, f.attentionNormBeta, f.outputNormGamma, f.outputNormBeta, config: c,
                          x: ws.hidden, tokens: t, offsets: offsets, workspace: ws) { slot, x, columns, y, accumulate in
                        var m = [Float](repeating: 0, count: columns)
                        for r in 0..<t { for j in 0..<columns { m[j] = max(m[j], abs(x[r * columns + j])) } }
                        seen[slot.rawValue] = m
                        let (w, b) = [(f.qkvWeight, f.qkvBias), (f.attentionOutWeight, f.attentionOutBias),
                                      (f.intermediateWeight, f.intermediateBias), (f.outputWeight, f.outputBias)][slot.rawValue]
                        if accumulate { Kernels.addRows(b, rows: t, n: b.count, to: y) } else { Kernels.broadcastRows(b, rows: t, n: b.count, into: y) }
                        Kernels.sgemm(m: t, n: b.count, k: columns, a: x, lda: columns, b: w, ldb: columns, transposeB: true, beta: 1, c: y, ldc: b.count)
                    }
                    inputMax.append(seen)
                }
            }
        }
        return inputMax
    }

    func forward(_ batch: PackedBatch, workspace ws: BertWorkspace) -> UnsafeMutablePointer<Float> {
        let t = batch.tokenCount
        return batch.run(in: ws) { ids, offsets in
            embed(ids: ids, offsets: offsets, into: ws.hidden)
            for w in layers {
                Self.layer(w.attentionNormGamma, w.attentionNormBeta, w.outputNormGamma, w.outputNormBeta, config: config,
                           x: ws.hidden, tokens: t, offsets: offsets, workspace: ws) { slot, x, _, y, accumulate in
                    w.linears[slot.rawValue].linear(x, tokens: t, bias: w.biases[slot.rawValue], into: y, accumulate: accumulate, kernel: kernel)
                }
            }
        }
    }

    /// Word (dequantized int8 row) + position + token type (0) embeddings, then LayerNorm.
    // ids: (T), x: (T, H)
    func embed(ids: UnsafeBufferPointer<Int32>, offsets: UnsafeBufferPointer<Int>, into x: UnsafeMutablePointer<Float>) {
        let h = config.hiddenSize
        wordEmbeddings.values.withUnsafeBufferPointer { word in
            positionAndTypeEmbeddings.withUnsafeBufferPointer { position in
                var sequence = 0
                for tok in 0..<ids.count {
                    while tok >= offsets[sequence + 1] { sequence += 1 }
                    let id = Int(ids[tok]), scale = wordEmbeddings.scales[id]
                    let w = word.baseAddress! + id * h, p = position.baseAddress! + (tok - offsets[sequence]) * h
                    let row = x + tok * h
                    for j in 0..<h { row[j] = Float(w[j]) * scale + p[j] }
                }
            }
        }
        Self.layerNorm(x, tokens: ids.count, width: h, gamma: embeddingNormGamma, beta: embeddingNormBeta, eps: config.layerNormEps)
    }

    /// Applies a Linear layer: y = x Wᵀ + b, or y += that when accumulating into the residual stream.
    // x: (T, C), y: (T, OC)
    typealias Linear = (_ slot: LinearSlot, _ x: UnsafeMutablePointer<Float>, _ columns: Int,
                        _ y: UnsafeMutablePointer<Float>, _ accumulate: Bool) -> Void

    /// One transformer layer, in place on x, as `BertModel.transformerLayer`, its Linears given:
    /// x = LN(x + Attention(x) Woᵀ + bo); x = LN(x + GELU(x W1ᵀ + b1) W2ᵀ + b2).
    // x: (T, H)
    static func layer(_ g1: [Float], _ b1: [Float], _ g2: [Float], _ b2: [Float], config: BertConfig,
                      x: UnsafeMutablePointer<Float>, tokens t: Int, offsets: UnsafeBufferPointer<Int>,
                      workspace ws: BertWorkspace, linear: Linear) {
        let h = config.hiddenSize, i = config.intermediateSize, eps = config.layerNormEps
        // Self-attention block.
        linear(.qkv, x, h, ws.qkv, false)
        config.attention(qkv: ws.qkv, offsets: offsets, into: ws.context, scores: ws.scores)
        linear(.attentionOut, ws.context, h, x, true)
        layerNorm(x, tokens: t, width: h, gamma: g1, beta: b1, eps: eps)
        // Feed-forward block.
        linear(.intermediate, x, h, ws.intermediate, false)
        Kernels.gelu(ws.intermediate, count: t * i)
        linear(.output, ws.intermediate, i, x, true)
        layerNorm(x, tokens: t, width: h, gamma: g2, beta: b2, eps: eps)
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

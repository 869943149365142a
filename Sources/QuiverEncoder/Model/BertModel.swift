/// Token sequences packed back to back: the forward pass works on all tokens of a batch at once.
///
/// Packing instead of padding: every layer except attention treats tokens independently, so padded
/// rows would only cost work; attention runs per sequence over exactly its own tokens, which is what
/// the padding mask achieves in a padded batch (masked keys get weight zero). The result for a text
/// does not depend on the other texts of its batch.
struct PackedBatch {
    /// Token ids of all sequences, concatenated.
    var ids: [Int32] = []
    /// Sequence `s` is `ids[offsets[s] ..< offsets[s + 1]]`; `offsets.count == sequenceCount + 1`.
    var offsets: [Int] = [0]

    var sequenceCount: Int { offsets.count - 1 }
    var tokenCount: Int { ids.count }
    var longest: Int { zip(offsets, offsets.dropFirst()).map { $1 - $0 }.max() ?? 0 }

    mutating func append(_ sequence: [Int32]) {
        ids.append(contentsOf: sequence)
        offsets.append(ids.count)
    }
}

/// Buffers of one forward pass, reused from batch to batch (they only grow, to the largest batch seen).
/// Owned by one thread at a time.
final class BertWorkspace {
    private(set) var tokenCapacity = 0
    private(set) var scoreCapacity = 0
    private(set) var hidden: UnsafeMutablePointer<Float>        // (T, H)
    private(set) var qkv: UnsafeMutablePointer<Float>           // (T, 3H)
    private(set) var context: UnsafeMutablePointer<Float>       // (T, H)
    private(set) var intermediate: UnsafeMutablePointer<Float>  // (T, I)
    private(set) var scores: UnsafeMutablePointer<Float>        // (L, L)
    let hiddenSize: Int
    let intermediateSize: Int

    init(config: BertConfig) {
        hiddenSize = config.hiddenSize
        intermediateSize = config.intermediateSize
        hidden = .allocate(capacity: 1); qkv = .allocate(capacity: 1); context = .allocate(capacity: 1)
        intermediate = .allocate(capacity: 1); scores = .allocate(capacity: 1)
    }

    deinit {
        hidden.deallocate(); qkv.deallocate(); context.deallocate(); intermediate.deallocate(); scores.deallocate()
    }

    /// Bytes held, for the memory accounting of the benchmark.
    var byteCount: Int { (tokenCapacity * (5 * hiddenSize + intermediateSize) + scoreCapacity) * 4 }

    func reserve(tokens: Int, longest: Int) {
        if tokens > tokenCapacity {
            hidden.deallocate(); qkv.deallocate(); context.deallocate(); intermediate.deallocate()
            hidden = .allocate(capacity: tokens * hiddenSize)
            qkv = .allocate(capacity: tokens * 3 * hiddenSize)
            context = .allocate(capacity: tokens * hiddenSize)
            intermediate = .allocate(capacity: tokens * intermediateSize)
            tokenCapacity = tokens
        }
        if longest * longest > scoreCapacity {
            scores.deallocate()
            scores = .allocate(capacity: longest * longest)
            scoreCapacity = longest * longest
        }
    }
}

/// The BERT encoder stack: embeddings, then `layerCount` transformer layers (post-LayerNorm, as in
/// the original BERT). Matrix products run on `cblas_sgemm`; the rest on the kernels of `Kernels`.
///
/// Thread safety: immutable; several threads may run `forward` at once, each with its own workspace.
struct BertModel: Sendable {
    let config: BertConfig
    let weights: BertWeights

    /// Runs the encoder over a packed batch; returns the last hidden states, (T, H), which live in
    /// `workspace.hidden` until the workspace's next use.
    func forward(_ batch: PackedBatch, workspace ws: BertWorkspace) -> UnsafeMutablePointer<Float> {
        let t = batch.tokenCount
        ws.reserve(tokens: t, longest: batch.longest)
        batch.ids.withUnsafeBufferPointer { ids in
            batch.offsets.withUnsafeBufferPointer { offsets in
                embed(ids: ids, offsets: offsets, into: ws.hidden)
                for layer in weights.layers {
                    transformerLayer(layer, x: ws.hidden, tokens: t, offsets: offsets, workspace: ws)
                }
            }
        }
        return ws.hidden
    }

    /// Word + position + token type (0) embeddings, then LayerNorm.
    // ids: (T), x: (T, H), wordEmbeddings: (V, H), positionAndTypeEmbeddings: (P, H)
    func embed(ids: UnsafeBufferPointer<Int32>, offsets: UnsafeBufferPointer<Int>, into x: UnsafeMutablePointer<Float>) {
        let h = config.hiddenSize
        weights.wordEmbeddings.withUnsafeBufferPointer { word in
            weights.positionAndTypeEmbeddings.withUnsafeBufferPointer { position in
                for s in 0..<(offsets.count - 1) {
                    for tok in offsets[s]..<offsets[s + 1] {
                        let w = word.baseAddress! + Int(ids[tok]) * h
                        let p = position.baseAddress! + (tok - offsets[s]) * h
                        let row = x + tok * h
                        for j in 0..<h { row[j] = w[j] + p[j] }
                    }
                }
            }
        }
        weights.embeddingNormGamma.withUnsafeBufferPointer { g in
            weights.embeddingNormBeta.withUnsafeBufferPointer { b in
                Kernels.layerNorm(x, rows: ids.count, n: h, gamma: g.baseAddress!, beta: b.baseAddress!, eps: config.layerNormEps)
            }
        }
    }

    /// One transformer layer, in place on x:
    /// x = LN(x + Attention(x) Woᵀ + bo); x = LN(x + GELU(x W1ᵀ + b1) W2ᵀ + b2).
    // x: (T, H)
    func transformerLayer(_ w: BertLayerWeights, x: UnsafeMutablePointer<Float>, tokens t: Int,
                          offsets: UnsafeBufferPointer<Int>, workspace ws: BertWorkspace) {
        let h = config.hiddenSize, i = config.intermediateSize, eps = config.layerNormEps
        w.qkvWeight.withUnsafeBufferPointer { wqkv in
        w.qkvBias.withUnsafeBufferPointer { bqkv in
        w.attentionOutWeight.withUnsafeBufferPointer { wo in
        w.attentionOutBias.withUnsafeBufferPointer { bo in
        w.attentionNormGamma.withUnsafeBufferPointer { g1 in
        w.attentionNormBeta.withUnsafeBufferPointer { b1n in
        w.intermediateWeight.withUnsafeBufferPointer { w1 in
        w.intermediateBias.withUnsafeBufferPointer { b1 in
        w.outputWeight.withUnsafeBufferPointer { w2 in
        w.outputBias.withUnsafeBufferPointer { b2 in
        w.outputNormGamma.withUnsafeBufferPointer { g2 in
        w.outputNormBeta.withUnsafeBufferPointer { b2n in
            // Self-attention block.
            linear(x, rows: t, inputs: h, weight: wqkv.baseAddress!, bias: bqkv.baseAddress!, outputs: 3 * h, into: ws.qkv)
            attention(qkv: ws.qkv, offsets: offsets, into: ws.context, scores: ws.scores)
            residualLinear(ws.context, rows: t, inputs: h, weight: wo.baseAddress!, bias: bo.baseAddress!, outputs: h, into: x)
            Kernels.layerNorm(x, rows: t, n: h, gamma: g1.baseAddress!, beta: b1n.baseAddress!, eps: eps)
            // Feed-forward block.
            linear(x, rows: t, inputs: h, weight: w1.baseAddress!, bias: b1.baseAddress!, outputs: i, into: ws.intermediate)
            Kernels.gelu(ws.intermediate, count: t * i)
            residualLinear(ws.intermediate, rows: t, inputs: i, weight: w2.baseAddress!, bias: b2.baseAddress!, outputs: h, into: x)
            Kernels.layerNorm(x, rows: t, n: h, gamma: g2.baseAddress!, beta: b2n.baseAddress!, eps: eps)
        }}}}}}}}}}}}
    }

    /// y = x Wᵀ + b (a PyTorch Linear). The bias is written first so sgemm adds onto it (beta 1).
    // x: (T, C), w: (OC, C), b: (OC), y: (T, OC)
    func linear(_ x: UnsafePointer<Float>, rows t: Int, inputs c: Int, weight: UnsafePointer<Float>,
                bias: UnsafePointer<Float>, outputs oc: Int, into y: UnsafeMutablePointer<Float>) {
        Kernels.broadcastRows(bias, rows: t, n: oc, into: y)
        Kernels.sgemm(m: t, n: oc, k: c, a: x, lda: c, b: weight, ldb: c, transposeB: true, beta: 1, c: y, ldc: oc)
    }

    /// y += x Wᵀ + b: a Linear whose output is added to the residual stream in place.
    // x: (T, C), w: (OC, C), b: (OC), y: (T, OC)
    func residualLinear(_ x: UnsafePointer<Float>, rows t: Int, inputs c: Int, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>, outputs oc: Int, into y: UnsafeMutablePointer<Float>) {
        Kernels.addRows(bias, rows: t, n: oc, to: y)
        Kernels.sgemm(m: t, n: oc, k: c, a: x, lda: c, b: weight, ldb: c, transposeB: true, beta: 1, c: y, ldc: oc)
    }

    /// Multi-head scaled dot-product attention (`BertConfig.attention`, shared with `Int8BertModel`).
    func attention(qkv: UnsafePointer<Float>, offsets: UnsafeBufferPointer<Int>,
                   into context: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>) {
        config.attention(qkv: qkv, offsets: offsets, into: context, scores: scores)
    }
}

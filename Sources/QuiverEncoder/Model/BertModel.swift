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

    /// Readies `ws` for this batch and lends the token ids and sequence offsets to `body`, which
    /// runs a model over them into `ws.hidden`; returns `ws.hidden`, the last hidden states (T, H).
    func run(in ws: BertWorkspace,
             _ body: (_ ids: UnsafeBufferPointer<Int32>, _ offsets: UnsafeBufferPointer<Int>) -> Void) -> UnsafeMutablePointer<Float> {
        ws.reserve(tokens: tokenCount, longest: longest)
        ids.withUnsafeBufferPointer { ids in offsets.withUnsafeBufferPointer { offsets in body(ids, offsets) } }
        return ws.hidden
    }

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
        return batch.run(in: ws) { ids, offsets in
            embed(ids: ids, offsets: offsets, into: ws.hidden)
            for layer in weights.layers {
                transformerLayer(layer, x: ws.hidden, tokens: t, offsets: offsets, workspace: ws)
            }
        }
    }

    /// Word + position + token type (0) embeddings, then LayerNorm.
    // ids: (T), x: (T, H), wordEmbeddings: (V, H), positionAndTypeEmbeddings: (P, H)
    func embed(ids: UnsafeBufferPointer<Int32>, offsets: UnsafeBufferPointer<Int>, into x: UnsafeMutablePointer<Float>) {
        let h = config.hiddenSize
        lendingBuffers([weights.wordEmbeddings, weights.positionAndTypeEmbeddings, weights.embeddingNormGamma, weights.embeddingNormBeta]) { b in
            let (word, position, gamma, beta) = (b[0], b[1], b[2], b[3])
            for s in 0..<(offsets.count - 1) {
                for tok in offsets[s]..<offsets[s + 1] {
                    let w = word + Int(ids[tok]) * h
                    let p = position + (tok - offsets[s]) * h
                    let row = x + tok * h
                    for j in 0..<h { row[j] = w[j] + p[j] }
                }
            }
            Kernels.layerNorm(x, rows: ids.count, n: h, gamma: gamma, beta: beta, eps: config.layerNormEps)
        }
    }

    /// One transformer layer, in place on x:
    /// x = LN(x + Attention(x) Woᵀ + bo); x = LN(x + GELU(x W1ᵀ + b1) W2ᵀ + b2).
    // x: (T, H)
    func transformerLayer(_ w: BertLayerWeights, x: UnsafeMutablePointer<Float>, tokens t: Int,
                          offsets: UnsafeBufferPointer<Int>, workspace ws: BertWorkspace) {
        let h = config.hiddenSize, i = config.intermediateSize, eps = config.layerNormEps
        w.withPointers { p in
            // Self-attention block.
            linear(x, rows: t, inputs: h, weight: p.qkvWeight, bias: p.qkvBias, outputs: 3 * h, into: ws.qkv)
            attention(qkv: ws.qkv, offsets: offsets, into: ws.context, scores: ws.scores)
            residualLinear(ws.context, rows: t, inputs: h, weight: p.attentionOutWeight, bias: p.attentionOutBias, outputs: h, into: x)
            Kernels.layerNorm(x, rows: t, n: h, gamma: p.attentionNormGamma, beta: p.attentionNormBeta, eps: eps)
            // Feed-forward block.
            linear(x, rows: t, inputs: h, weight: p.intermediateWeight, bias: p.intermediateBias, outputs: i, into: ws.intermediate)
            Kernels.gelu(ws.intermediate, count: t * i)
            residualLinear(ws.intermediate, rows: t, inputs: i, weight: p.outputWeight, bias: p.outputBias, outputs: h, into: x)
            Kernels.layerNorm(x, rows: t, n: h, gamma: p.outputNormGamma, beta: p.outputNormBeta, eps: eps)
        }
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

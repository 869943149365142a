extension BertConfig {
    /// Multi-head scaled dot-product attention, per sequence and per head:
    /// context_h = softmax(Q_h K_hᵀ / sqrt(D)) V_h, heads written side by side.
    /// Each sequence attends over its own tokens only (the packed form of the padding mask).
    // qkv: (T, 3H) = [Q | K | V], head h at columns h*D ..< (h+1)*D of each; context: (T, H); scores: (L, L)
    func attention(qkv: UnsafePointer<Float>, offsets: UnsafeBufferPointer<Int>,
                   into context: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>) {
        let h = hiddenSize, d = headSize, ld = 3 * h
        let scale = 1 / Float(d).squareRoot()
        for s in 0..<(offsets.count - 1) {
            let o = offsets[s], l = offsets[s + 1] - offsets[s]
            for head in 0..<headCount {
                let q = qkv + o * ld + head * d
                let k = q + h, v = q + 2 * h
                // scores: (L, L) = Q_h (L, D) · K_hᵀ, scaled
                Kernels.sgemm(m: l, n: l, k: d, alpha: scale, a: q, lda: ld, b: k, ldb: ld, transposeB: true,
                              beta: 0, c: scores, ldc: l)
                Kernels.softmaxRows(scores, rows: l, n: l, ld: l)
                // context_h: (L, D) = P (L, L) · V_h (L, D)
                Kernels.sgemm(m: l, n: d, k: l, a: scores, lda: l, b: v, ldb: ld, transposeB: false,
                              beta: 0, c: context + o * h + head * d, ldc: h)
            }
        }
    }
}

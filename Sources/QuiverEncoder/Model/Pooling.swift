import Foundation

/// How token vectors become one text vector (sentence-transformers' `Pooling` module).
/// Several modes concatenate, in sentence-transformers' order: CLS, max, mean, mean/sqrt(length).
public struct Pooling: Sendable, Equatable {
    /// One pooling operation over a sequence's token vectors.
    public enum Mode: String, Sendable, Equatable, CaseIterable {
        /// The first token's vector (`[CLS]`).
        case cls
        /// The component-wise maximum over tokens.
        case max
        /// The mean over tokens.
        case mean
        /// The sum over tokens divided by sqrt(token count).
        case meanSqrtLength
    }

    /// The modes whose results are concatenated.
    public let modes: [Mode]

    /// Pooling with the given modes (at least one), reordered to sentence-transformers' order.
    public init(modes: [Mode]) {
        precondition(!modes.isEmpty, "pooling needs at least one mode")
        self.modes = Mode.allCases.filter(modes.contains)
    }

    /// Reads `1_Pooling/config.json` (`pooling_mode_cls_token`, `pooling_mode_mean_tokens`, ...).
    public init(configFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path),
              let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw EncoderError(.invalidModelFolder, "cannot read the pooling configuration", path: path)
        }
        func flag(_ key: String) -> Bool { (json[key] as? NSNumber)?.boolValue ?? false }
        for unsupported in ["pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"] where flag(unsupported) {
            throw EncoderError(.unsupportedModel, "\(unsupported) is not implemented", path: path)
        }
        var modes: [Mode] = []
        if flag("pooling_mode_cls_token") { modes.append(.cls) }
        if flag("pooling_mode_max_tokens") { modes.append(.max) }
        if flag("pooling_mode_mean_tokens") { modes.append(.mean) }
        if flag("pooling_mode_mean_sqrt_len_tokens") { modes.append(.meanSqrtLength) }
        guard !modes.isEmpty else {
            throw EncoderError(.invalidModelFolder, "the pooling configuration enables no mode", path: path)
        }
        self.init(modes: modes)
    }

    /// Width of the pooled vector for token vectors of width `hidden`.
    public func outputDimension(hidden: Int) -> Int { modes.count * hidden }

    /// Pools one sequence. Every token counts: the packed forward pass has no padding rows.
    // tokens: (L, H), out: (modes.count * H)
    func pool(_ tokens: UnsafePointer<Float>, length l: Int, width h: Int, into out: UnsafeMutablePointer<Float>) {
        for (m, mode) in modes.enumerated() {
            let o = out + m * h
            switch mode {
            case .cls:
                o.update(from: tokens, count: h)
            case .max:
                o.update(from: tokens, count: h)
                for t in 1..<Swift.max(l, 1) { for j in 0..<h { o[j] = Swift.max(o[j], tokens[t * h + j]) } }
            case .mean, .meanSqrtLength:
                o.update(repeating: 0, count: h)
                for t in 0..<l { for j in 0..<h { o[j] += tokens[t * h + j] } }
                let divisor = mode == .mean ? Float(l) : Float(l).squareRoot()
                for j in 0..<h { o[j] /= divisor }
            }
        }
    }

    /// Pools token vectors given as arrays (each of the same width); for tests and small inputs.
    public func pool(tokens: [[Float]]) -> [Float] {
        precondition(!tokens.isEmpty, "a sequence has at least one token")
        let h = tokens[0].count
        let flat = tokens.flatMap { $0 }
        var out = [Float](repeating: 0, count: outputDimension(hidden: h))
        flat.withUnsafeBufferPointer { t in
            out.withUnsafeMutableBufferPointer { o in pool(t.baseAddress!, length: tokens.count, width: h, into: o.baseAddress!) }
        }
        return out
    }

    /// Scales `v` to unit L2 norm, as torch's `F.normalize` (the norm is floored at 1e-12).
    // v: (n)
    static func l2Normalize(_ v: UnsafeMutablePointer<Float>, count n: Int) {
        var ss: Float = 0
        for j in 0..<n { ss += v[j] * v[j] }
        let inv = 1 / Swift.max(ss.squareRoot(), 1e-12)
        for j in 0..<n { v[j] *= inv }
    }
}

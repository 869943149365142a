import COpenBLAS
import Dispatch
import Foundation
import QuiverCore

/// One training query: its vector from the query tower, and either labels (positive documents,
/// optionally given negatives) or a teacher's distribution over candidate documents.
public struct TrainingExample: Sendable {
    public var query: [Float]
    /// Indexes of relevant documents (supervised); for distillation, the teacher's best ten
    /// (what validation compares the dense ranking with).
    public var positives: [Int32]
    /// Indexes of documents given as not relevant: always among the negatives.
    public var negatives: [Int32]
    /// Distillation: candidate documents and the teacher's probabilities over them (summing to 1).
    public var teacher: [(document: Int32, probability: Float)]?

    public init(query: [Float], positives: [Int32], negatives: [Int32] = [], teacher: [(document: Int32, probability: Float)]? = nil) {
        self.query = query
        self.positives = positives
        self.negatives = negatives
        self.teacher = teacher
    }
}

/// How an adapter is trained. The defaults are the ones `TuneBench --sweep` chose on SciFact: the
/// setting with the best dense nDCG@10 on the test claims about documents no training claim is
/// about (the generalization figure), among learning rates 5e-5 to 1e-3, temperatures 0.01 to 0.05
/// and decays 0 to 50; faster settings fit the training claims' documents better and generalize worse.
public struct TrainerConfiguration: Sendable, Equatable {
    public var kind: QueryAdapter.Kind = .linear
    /// Passes over the training examples at most (early stopping usually ends sooner).
    public var epochs = 30
    public var batchSize = 64
    /// Adam's step size.
    public var learningRate: Float = 1e-4
    /// Softmax temperature of the student's scores (cosine / temperature).
    public var temperature: Float = 0.02
    /// Decoupled weight decay toward the identity (zero weights), per step: w -= lr * decay * w.
    public var weightDecay: Float = 1
    /// Hard negatives mined per query from the whole collection with the current adapter.
    public var hardNegatives = 16
    /// Mine again every this many epochs.
    public var remineEvery = 3
    /// Stop after this many epochs without a better validation nDCG@10.
    public var patience = 5
    public var seed: UInt64 = 1
    /// Threads (each runs single-threaded sgemm on its share of the batch or of the queries).
    public var workers = 2

    public init() {}
}

/// One epoch's figures, for progress.
public struct EpochReport: Sendable, Codable, Equatable {
    public var epoch: Int
    public var loss: Double
    public var validationNDCG: Double
    public var seconds: Double
}

/// What training produced: the best adapter on the validation examples, and its figures.
public struct TrainingOutcome: Sendable {
    public var adapter: QueryAdapter
    public var validationBefore: Double
    public var validationAfter: Double
    public var bestEpoch: Int
    public var epochs: [EpochReport]
    public var seconds: Double
}

/// Contrastive (InfoNCE over in-batch and mined hard negatives) or distillation (KL divergence from
/// a teacher's distribution) training of a `QueryAdapter`, with AdamW, weight decay toward the
/// identity and early stopping on validation nDCG@10.
///
/// Per batch (B queries, C the union of the batch's candidate documents, d the dimension):
///   U (B, d) = Q + Q W;  Z = U / |U|;  S (B, C) = Z D_C^T / temperature
///   loss_i = logsumexp(S_i over its candidates) - log(sum of e^S over its positives)   (InfoNCE)
///          = KL(teacher_i || softmax(S_i over its teacher's candidates))              (distillation)
///   dS_i = softmax(S_i) - target_i;  G_Z = dS D_C / temperature;  G_U = (G_Z - (G_Z . z) z) / |u|
///   G_W = Q^T G_U (full rank);  G_B = (Q A)^T G_U, G_A = Q^T (G_U B^T) (low rank)
/// In supervised training every other query's positives and hard negatives in the batch are this
/// query's negatives too (in-batch negatives), its own positives excluded.
public struct AdapterTrainer: Sendable {
    public let documents: ExactRanking
    public let configuration: TrainerConfiguration

    /// `documents`: the collection's vectors (n, d), unit norm.
    public init(documents: Matrix, configuration: TrainerConfiguration) {
        self.documents = ExactRanking(documents: documents, workers: configuration.workers)
        self.configuration = configuration
    }

    var dimension: Int { documents.documents.dimension }

    /// Trains on `training`, choosing the epoch by nDCG@10 on `validation`. `progress` is called after
    /// every epoch; returning false stops training (the best adapter so far is returned).
    public func train(_ training: [TrainingExample], validation: [TrainingExample], start: QueryAdapter? = nil,
                      progress: (EpochReport) -> Bool = { _ in true }) -> TrainingOutcome {
        let clock = ContinuousClock.now
        let c = configuration
        let d = dimension
        var adapter = start ?? QueryAdapter.identity(c.kind, dimension: d, seed: c.seed)
        let before = validate(adapter, validation)
        var best = (adapter: adapter, score: before, epoch: 0)
        var m = [Float](repeating: 0, count: adapter.weights.count), v = m
        var step = 0
        var rng = SplitMix64(seed: c.seed)
        var mined: [[Int32]] = Array(repeating: [], count: training.count)
        var reports: [EpochReport] = []
        let queries = training.flatMap(\.query)
        for epoch in 1...max(1, c.epochs) {
            let epochStart = ContinuousClock.now
            if c.hardNegatives > 0 && (epoch - 1) % max(1, c.remineEvery) == 0 {
                mined = mine(adapter, training, queries)
            }
            var order = Array(0..<training.count)
            order.shuffle(using: &rng)
            var lossSum = 0.0
            var batches = 0
            var s = 0
            while s < order.count {
                let batch = Array(order[s..<min(s + c.batchSize, order.count)])
                s += c.batchSize
                let (loss, gradient) = self.gradient(adapter, batch.map { training[$0] }, mined: batch.map { mined[$0] })
                lossSum += loss
                batches += 1
                step += 1
                adamW(&adapter.weights, gradient, &m, &v, step: step)
            }
            let score = validate(adapter, validation)
            if score > best.score { best = (adapter, score, epoch) }
            let report = EpochReport(epoch: epoch, loss: lossSum / Double(max(batches, 1)), validationNDCG: score,
                                     seconds: seconds(since: epochStart))
            reports.append(report)
            if !progress(report) || epoch - best.epoch >= c.patience { break }
        }
        return TrainingOutcome(adapter: best.adapter, validationBefore: before, validationAfter: best.score, bestEpoch: best.epoch,
                               epochs: reports, seconds: seconds(since: clock))
    }

    /// Mean nDCG@10 of the dense ranking through `adapter` over the whole collection, judged by each
    /// example's positives (0 without examples).
    public func validate(_ adapter: QueryAdapter, _ examples: [TrainingExample]) -> Double {
        guard !examples.isEmpty else { return 0 }
        let ranked = rank(adapter, examples.flatMap(\.query), rows: examples.count, k: 10)
        return zip(ranked, examples).reduce(0.0) { $0 + ndcg10($1.0, relevant: Set($1.1.positives)) } / Double(examples.count)
    }

    /// The best `k` documents for each query row through `adapter`.
    public func rank(_ adapter: QueryAdapter, _ queries: [Float], rows n: Int, k: Int,
                     exclude: (@Sendable (Int, Int32) -> Bool)? = nil) -> [[Int32]] {
        rankScored(adapter, queries, rows: n, k: k, exclude: exclude).map { $0.map(\.document) }
    }

    /// `rank` with each document's cosine similarity (nil adapter: the queries as they are).
    public func rankScored(_ adapter: QueryAdapter?, _ queries: [Float], rows n: Int, k: Int,
                           exclude: (@Sendable (Int, Int32) -> Bool)? = nil) -> [[(document: Int32, score: Float)]] {
        var adapted = queries
        if let adapter {
            queries.withUnsafeBufferPointer { q in adapted.withUnsafeMutableBufferPointer { adapter.apply(q.baseAddress!, rows: n, into: $0.baseAddress!) } }
        }
        adapted.withUnsafeMutableBufferPointer { a in for i in 0..<n { DistanceKernels.normalize(a.baseAddress! + i * dimension, dimension) } }
        return documents.scored(adapted, rows: n, k: k, exclude: exclude)
    }

    /// Hard negatives of every example with the current adapter: its best-ranked documents that are
    /// not among its positives (for distillation: not among the teacher's candidates, so that the
    /// student learns to keep the documents the teacher left out below those it ranked).
    func mine(_ adapter: QueryAdapter, _ training: [TrainingExample], _ queries: [Float]) -> [[Int32]] {
        let positives = training.map { e in Set(e.teacher.map { $0.map(\.document) } ?? e.positives) }
        return rank(adapter, queries, rows: training.count, k: configuration.hardNegatives, exclude: { positives[$0].contains($1) })
    }

    /// The mean loss of a batch and its gradient with respect to the adapter's weights (the batch's
    /// rows split between the workers, each with its own sgemm calls and gradient, summed).
    func gradient(_ adapter: QueryAdapter, _ batch: [TrainingExample], mined: [[Int32]]) -> (Double, [Float]) {
        let d = dimension
        // The batch's candidate documents: one column each.
        var column: [Int32: Int] = [:]
        var candidates: [Int32] = []
        func add(_ doc: Int32) { if column[doc] == nil { column[doc] = candidates.count; candidates.append(doc) } }
        for (i, e) in batch.enumerated() {
            if let t = e.teacher { t.forEach { add($0.document) } } else {
                e.positives.forEach(add)
                e.negatives.forEach(add)
            }
            mined[i].forEach(add)
        }
        let nc = candidates.count
        var dc = [Float](repeating: 0, count: nc * d)
        documents.documents.storage.withUnsafeBufferPointer { all in
            dc.withUnsafeMutableBufferPointer { out in
                for (j, doc) in candidates.enumerated() { (out.baseAddress! + j * d).update(from: all.baseAddress! + Int(doc) * d, count: d) }
            }
        }
        let workers = min(configuration.workers, batch.count)
        let parts = ResultSlots<(Double, [Float])>(count: workers)
        let per = (batch.count + workers - 1) / workers
        let candidateRows = dc, columns = column
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let range = min(w * per, batch.count)..<min((w + 1) * per, batch.count)
            parts.set(w, partialGradient(adapter, Array(batch[range]), mined: Array(mined[range]), candidates: candidateRows, columns: columns,
                                         total: batch.count))
        }
        var loss = 0.0
        var g = [Float](repeating: 0, count: adapter.weights.count)
        for (l, part) in parts.values {
            loss += l
            for i in 0..<g.count { g[i] += part[i] }
        }
        return (loss / Double(batch.count), g)
    }

    /// The summed loss of `rows` and their gradient, scaled by 1 / `total` (the batch's size).
    private func partialGradient(_ adapter: QueryAdapter, _ rows: [TrainingExample], mined: [[Int32]], candidates dc: [Float], columns: [Int32: Int],
                                 total: Int) -> (Double, [Float]) {
        let d = dimension, b = rows.count, nc = columns.count
        var g = [Float](repeating: 0, count: adapter.weights.count)
        guard b > 0 else { return (0, g) }
        let tau = configuration.temperature
        var q = [Float](), u = [Float](repeating: 0, count: b * d), h = [Float](repeating: 0, count: b * adapter.rank)
        q.reserveCapacity(b * d)
        for e in rows { q.append(contentsOf: e.query) }
        var norms = [Float](repeating: 0, count: b)
        var s = [Float](repeating: 0, count: b * nc)
        var gz = [Float](repeating: 0, count: b * d)
        var loss = 0.0
        q.withUnsafeBufferPointer { qp in
        u.withUnsafeMutableBufferPointer { up in
        h.withUnsafeMutableBufferPointer { hp in
        s.withUnsafeMutableBufferPointer { sp in
        gz.withUnsafeMutableBufferPointer { gzp in
        dc.withUnsafeBufferPointer { dcp in
            let Q = qp.baseAddress!, U = up.baseAddress!, H = hp.baseAddress!, S = sp.baseAddress!, GZ = gzp.baseAddress!, DC = dcp.baseAddress!
            adapter.residual(Q, rows: b, into: U, hidden: H)
            for i in 0..<b {
                let ui = U + i * d
                norms[i] = max(DistanceKernels.dot(ui, ui, d).squareRoot(), 1e-12)
                let inv = 1 / norms[i]
                for j in 0..<d { ui[j] *= inv }  // U now holds Z
            }
            // S (b, nc) = Z (b, d) D_C^T (d, nc) / tau
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(b), Int32(nc), Int32(d), 1 / tau, U, Int32(d), DC, Int32(d), 0, S, Int32(nc))
            var active = [Bool](repeating: false, count: nc), target = [Float](repeating: 0, count: nc)
            for (i, e) in rows.enumerated() {
                let row = S + i * nc
                for j in 0..<nc { active[j] = e.teacher == nil; target[j] = 0 }
                if let t = e.teacher {
                    // The teacher's candidates, and the mined documents it left out (target 0).
                    for (doc, p) in t { let j = columns[doc]!; active[j] = true; target[j] = p }
                    for doc in mined[i] { active[columns[doc]!] = true }
                }
                var top = -Float.infinity
                for j in 0..<nc where active[j] { top = max(top, row[j]) }
                var z = 0.0
                for j in 0..<nc where active[j] { z += Double(expf(row[j] - top)) }
                let logZ = Double(top) + log(z)
                if e.teacher == nil {
                    // Target: the softmax restricted to the positives (the gradient of -log sum e^S_pos).
                    var zp = 0.0
                    for p in e.positives { zp += Double(expf(row[columns[p]!] - top)) }
                    for p in e.positives { let j = columns[p]!; target[j] = Float(Double(expf(row[j] - top)) / zp) }
                    loss += logZ - (Double(top) + log(zp))
                } else {
                    for j in 0..<nc where target[j] > 0 { loss += Double(target[j]) * (log(Double(target[j])) - (Double(row[j]) - logZ)) }
                }
                let scale = 1 / Float(total)
                for j in 0..<nc { row[j] = active[j] ? (Float(exp(Double(row[j]) - logZ)) - target[j]) * scale : 0 }
            }
            // G_Z (b, d) = dS (b, nc) D_C (nc, d) / tau
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(b), Int32(d), Int32(nc), 1 / tau, S, Int32(nc), DC, Int32(d), 0, GZ, Int32(d))
            // G_U = (G_Z - (G_Z . z) z) / |u|, in place.
            for i in 0..<b {
                let gi = GZ + i * d, zi = U + i * d
                let dot = DistanceKernels.dot(gi, zi, d)
                let inv = 1 / norms[i]
                for j in 0..<d { gi[j] = (gi[j] - dot * zi[j]) * inv }
            }
            g.withUnsafeMutableBufferPointer { gp in
                adapter.weights.withUnsafeBufferPointer { wp in
                    let G = gp.baseAddress!, W = wp.baseAddress!
                    switch adapter.kind {
                    case .linear:
                        // G_W (d, d) = Q^T (d, b) G_U (b, d)
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(d), Int32(d), Int32(b), 1, Q, Int32(d), GZ, Int32(d), 0, G, Int32(d))
                    case .lowRank(let r):
                        // G_B (r, d) = H^T (r, b) G_U (b, d); G_H (b, r) = G_U (b, d) B^T (d, r); G_A (d, r) = Q^T G_H
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(r), Int32(d), Int32(b), 1, H, Int32(r), GZ, Int32(d), 0, G + d * r, Int32(d))
                        var gh = [Float](repeating: 0, count: b * r)
                        gh.withUnsafeMutableBufferPointer { ghp in
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(b), Int32(r), Int32(d), 1, GZ, Int32(d), W + d * r, Int32(d), 0, ghp.baseAddress!, Int32(r))
                            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(d), Int32(r), Int32(b), 1, Q, Int32(d), ghp.baseAddress!, Int32(r), 0, G, Int32(r))
                        }
                    }
                }
            }
        }}}}}}
        return (loss, g)
    }

    /// One AdamW step (beta1 0.9, beta2 0.999), with decoupled decay toward zero weights (the identity).
    func adamW(_ w: inout [Float], _ g: [Float], _ m: inout [Float], _ v: inout [Float], step: Int) {
        let lr = configuration.learningRate, decay = configuration.weightDecay
        let b1: Float = 0.9, b2: Float = 0.999
        let c1 = 1 - powf(b1, Float(step)), c2 = 1 - powf(b2, Float(step))
        for i in 0..<w.count {
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
            w[i] -= lr * ((m[i] / c1) / ((v[i] / c2).squareRoot() + 1e-8) + decay * w[i])
        }
    }
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

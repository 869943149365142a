import Foundation
import Quiver
import QuiverCore
import QuiverTuning

/// `--sweep`: trainer settings tried directly on the vectors (no database), each scored on the
/// test claims (whole set and unseen subset), to choose the defaults. Validation is the trainer's own
/// 10% of the training claims; the test claims only report.
func sweep(_ data: SciFactData, corpusVectors: [[Float]], scratch: String) throws {
    let ids = data.corpus.map(\.id)
    let index = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, Int32($0)) })
    var storage: [Float] = []
    for v in corpusVectors {
        let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        storage.append(contentsOf: v.map { $0 / n })
    }
    let documents = Matrix(dimension: 384, storage: storage)
    let trainIDs = data.trainQrels.keys.sorted(), testIDs = data.testQrels.keys.sorted()
    let texts = trainIDs.map { data.trainQueries[$0]! } + testIDs.map { data.queries[$0]! }
    let cache = scratch + "/scifact-queries.f32"
    var q: [Float]
    if let bytes = FileManager.default.contents(atPath: cache), bytes.count == texts.count * 384 * 4 {
        q = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    } else {
        let encoder = try EncoderRegistry.shared.encoder(named: "all-MiniLM-L6-v2")
        q = try encoder.encode(queries: texts).storage
        try q.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: cache)) }
    }
    func row(_ i: Int) -> [Float] { Array(q[i * 384..<(i + 1) * 384]) }
    var examples = trainIDs.enumerated().map { i, id in TrainingExample(query: row(i), positives: data.trainQrels[id]!.map { index[$0]! }) }
    var rng = SplitMix64(seed: 1)
    examples.shuffle(using: &rng)
    let validation = Array(examples.prefix(81)), training = Array(examples.dropFirst(81))
    let testQ = testIDs.indices.flatMap { row(trainIDs.count + $0) }
    let unseen = data.unseenTestClaims
    func evaluate(_ trainer: AdapterTrainer, _ adapter: QueryAdapter) -> (Double, Double) {
        let ranked = trainer.rank(adapter, testQ, rows: testIDs.count, k: 10)
        var all = 0.0, sub = 0.0
        for (i, id) in testIDs.enumerated() {
            let n = ndcg10(ranked[i], relevant: Set(data.testQrels[id]!.compactMap { index[$0] }))
            all += n
            if unseen.contains(id) { sub += n }
        }
        return (all / Double(testIDs.count), sub / Double(unseen.count))
    }
    let base = TrainerConfiguration()
    var grid: [(String, TrainerConfiguration)] = []
    for lr in [Float(5e-5), 1e-4, 2e-4] {
        for t in [Float(0.01), 0.02] {
            for wd in [Float(0), 10, 50] {
                var c = base
                c.learningRate = lr; c.temperature = t; c.weightDecay = wd
                grid.append(("lr \(lr) t \(t) wd \(wd)", c))
            }
        }
    }
    for r in [16, 64] {
        var c = base
        c.kind = .lowRank(r); c.learningRate = 1e-3; c.temperature = 0.02
        grid.append(("lowrank \(r) lr 1e-3 t 0.02", c))
    }
    let untuned = evaluate(AdapterTrainer(documents: documents, configuration: base), QueryAdapter.identity(.linear, dimension: 384))
    print(String(format: "untuned: all %.4f unseen %.4f", untuned.0, untuned.1))
    for (label, c) in grid {
        let trainer = AdapterTrainer(documents: documents, configuration: c)
        let out = trainer.train(training, validation: validation)
        let (all, sub) = evaluate(trainer, out.adapter)
        print(String(format: "%@: epochs %d best %d val %.4f->%.4f  test all %.4f unseen %.4f (%.1f s)", label, out.epochs.count, out.bestEpoch,
                     out.validationBefore, out.validationAfter, all, sub, out.seconds))
    }
}

/// `--sweep-distill`: label-free distillation settings tried through the engine (`Collection.distill`
/// with the cached query vectors, stored under "sweep", not the default), each chosen on the training
/// split only: distilled from the training claims but a held-out tenth, and scored (exact dense
/// nDCG@10) on that tenth with its training judgments, the whole tenth and its "unseen" part (claims
/// none of whose relevant documents is relevant to another training claim). The test claims only
/// report. Query vectors are the engine's (cached by `--sweep`), adapted and ranked exactly here.
func sweepDistillation(_ c: Collection, _ data: SciFactData, corpusVectors: [[Float]], scratch: String, grid: [(String, TuneOptions)]) throws {
    let ids = data.corpus.map(\.id)
    var storage: [Float] = []
    for v in corpusVectors {
        let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        storage.append(contentsOf: v.map { $0 / n })
    }
    let ranking = AdapterTrainer(documents: Matrix(dimension: 384, storage: storage), configuration: TrainerConfiguration())
    let trainIDs = data.trainQrels.keys.sorted(), testIDs = data.testQrels.keys.sorted()
    guard let bytes = FileManager.default.contents(atPath: scratch + "/scifact-queries.f32"), bytes.count == (trainIDs.count + testIDs.count) * 384 * 4 else {
        throw QuiverError.invalidArgument("no cached query vectors in \(scratch): run TuneBench --sweep once")
    }
    let q = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    func row(_ i: Int) -> [Float] { Array(q[i * 384..<(i + 1) * 384]) }
    let vectorOf = Dictionary(uniqueKeysWithValues: (trainIDs + testIDs).enumerated().map { ($1, row($0)) })
    var shuffled = trainIDs
    var rng = SplitMix64(seed: 7)
    shuffled.shuffle(using: &rng)
    // Three folds of 81 held-out training claims (their "unseen" part judged against the claims
    // distilled from), so that a choice rests on 243 held-out claims, not 81.
    let folds = (0..<3).map { f -> (held: [String], distill: [String], unseen: Set<String>) in
        let held = Array(shuffled[(f * 81)..<((f + 1) * 81)])
        let heldSet = Set(held)
        let distill = shuffled.filter { !heldSet.contains($0) }
        let elsewhere = Set(distill.flatMap { data.trainQrels[$0]! })
        return (held, distill, Set(held.filter { data.trainQrels[$0]!.isDisjoint(with: elsewhere) }))
    }
    let testUnseen = data.unseenTestClaims
    /// (all, unseen) exact dense nDCG@10 sums of `claims` through `adapter`, and the unseen count.
    func score(_ adapter: QueryAdapter?, _ claims: [String], _ qrels: [String: Set<String>], _ unseen: Set<String>) -> (Double, Double, Int) {
        let ranked = ranking.rank(adapter ?? QueryAdapter.identity(.linear, dimension: 384), claims.flatMap { vectorOf[$0]! }, rows: claims.count, k: 10)
        var all = 0.0, sub = 0.0
        for (i, claim) in claims.enumerated() {
            let n = ndcg10(ranked[i].map { ids[Int($0)] }, relevant: qrels[claim]!)
            all += n
            if unseen.contains(claim) { sub += n }
        }
        return (all, sub, claims.filter(unseen.contains).count)
    }
    func mean(_ s: (Double, Double, Int), _ n: Int) -> (Double, Double) { (s.0 / Double(n), s.1 / Double(max(s.2, 1))) }
    /// Held-out figures over the folds, each fold's adapter from `adapterOf(fold)`.
    func held(_ adapterOf: (Int) throws -> QueryAdapter?) rethrows -> (Double, Double) {
        var all = 0.0, sub = 0.0, n = 0, u = 0
        for (f, fold) in folds.enumerated() {
            let s = score(try adapterOf(f), fold.held, data.trainQrels, fold.unseen)
            all += s.0; sub += s.1; n += fold.held.count; u += s.2
        }
        return (all / Double(n), sub / Double(max(u, 1)))
    }
    let h0 = held { _ in nil }, t0 = mean(score(nil, testIDs, data.testQrels, testUnseen), testIDs.count)
    print(String(format: "held-out training claims 3 x 81 (unseen %d); untuned held %.4f / %.4f, test %.4f / %.4f",
                 folds.reduce(0) { $0 + $1.unseen.count }, h0.0, h0.1, t0.0, t0.1))
    for (label, o) in grid {
        var options = o
        options.name = "sweep"
        options.force = true
        options.makeDefault = false
        var epochs: [Int] = []
        let h = try held { f in
            let r = try c.distill(queries: folds[f].distill.map { data.trainQueries[$0]! }, vectors: folds[f].distill.map { vectorOf[$0]! }, options: options)
            epochs.append(r.bestEpoch)
            return try c.queryAdapter(.named("sweep"))
        }
        // The test figures: distilled from every training claim.
        let r = try c.distill(queries: trainIDs.map { data.trainQueries[$0]! }, vectors: trainIDs.map { vectorOf[$0]! }, options: options)
        let t = mean(score(try c.queryAdapter(.named("sweep")), testIDs, data.testQrels, testUnseen), testIDs.count)
        print(String(format: "%@: best epochs %@ / %d, agreement %.4f->%.4f | held %.4f / %.4f (%+.4f / %+.4f) | test %.4f / %.4f (%+.4f / %+.4f) %.1f s",
                     label, epochs.map(String.init).joined(separator: ","), r.bestEpoch, r.validationBefore, r.validationAfter, h.0, h.1, h.0 - h0.0, h.1 - h0.1,
                     t.0, t.1, t.0 - t0.0, t.1 - t0.1, r.trainingSeconds))
    }
}

/// The distillation settings of `--sweep-distill SPEC`: every combination of the values SPEC lists,
/// `key=v1,v2;key=v1...` with keys tt (teacher temperature), st (student temperature), cand (teacher
/// candidates), depth (teacher depth), lr, wd (weight decay), ep (epochs), pat (patience), hn (hard
/// negatives), kind (linear or lowrank:R), tf (teacher fusion: rrf:K, w:DENSE min-max, d:DENSE distribution).
func distillationGrid(_ spec: String) throws -> [(String, TuneOptions)] {
    var grid: [(String, TuneOptions)] = [("", TuneOptions.distillation)]
    for part in spec.split(separator: ";") {
        let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
        guard kv.count == 2 else { throw QuiverError.invalidArgument("--sweep-distill: '\(part)' is not key=values") }
        var next: [(String, TuneOptions)] = []
        for (label, o) in grid {
            for v in kv[1].split(separator: ",").map(String.init) {
                var o = o
                let f = Float(v), i = Int(v)
                switch kv[0] {
                case "tt": o.teacherTemperature = f!
                case "st": o.trainer.temperature = f!
                case "cand": o.teacherCandidates = i!
                case "depth": o.teacherDepth = i!
                case "lr": o.trainer.learningRate = f!
                case "wd": o.trainer.weightDecay = f!
                case "ep": o.trainer.epochs = i!
                case "pat": o.trainer.patience = i!
                case "hn": o.trainer.hardNegatives = i!
                case "kind": o.adapter = QueryAdapter.Kind(v)!
                case "tf": o.teacherFusion = v.hasPrefix("rrf:") ? .reciprocalRank(k: Int(v.dropFirst(4))!)
                    : v.hasPrefix("w:") ? .weighted(dense: Double(v.dropFirst(2))!) : .distribution(dense: Double(v.dropFirst(2))!)
                default: throw QuiverError.invalidArgument("--sweep-distill: unknown key '\(kv[0])'")
                }
                next.append((label + "\(kv[0]) \(v) ", o))
            }
        }
        grid = next
    }
    return grid
}

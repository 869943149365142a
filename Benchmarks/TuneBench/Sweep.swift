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

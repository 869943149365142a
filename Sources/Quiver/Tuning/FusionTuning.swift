import QuiverCore
import QuiverTuning

/// Hybrid fusion chosen from labelled queries: the dense list (exact, through the adapter) and the
/// BM25 list of each query are made once, then fused with every candidate setting by the engine's
/// own `Collection.fuse`, so the figures are those hybrid search will give.
struct FusionTuning {
    let collection: Collection
    let corpus: TuningCorpus
    let trainer: AdapterTrainer
    let adapter: QueryAdapter?

    init(collection: Collection, corpus: TuningCorpus, trainer: AdapterTrainer, adapter: QueryAdapter?) throws {
        self.collection = collection
        self.corpus = corpus
        self.trainer = trainer
        self.adapter = adapter
    }

    /// One query's two ranked lists (document indexes and scores, best first).
    struct Lists {
        var dense: [(document: Int32, score: Float)]
        var lexical: [(document: Int32, score: Float)]
    }

    /// The settings tried: RRF k, and min-max and distribution-based weighted fusion at dense weights
    /// from 0.05 to 0.95.
    static let candidates: [Fusion] = [5, 10, 20, 30, 40, 60, 80, 100].map { .reciprocalRank(k: $0) }
        + stride(from: 0.05, through: 0.951, by: 0.05).flatMap { w in [Fusion.weighted(dense: w), .distribution(dense: w)] }

    func lists(_ texts: [String], _ vectors: [[Float]], depth: Int, progress: (Int) -> Void = { _ in }) throws -> [Lists] {
        let dense = trainer.rankScored(adapter, vectors.flatMap { $0 }, rows: vectors.count, k: depth)
        var out: [Lists] = []
        for (i, text) in texts.enumerated() {
            let lexical = try collection.lexical(text, k: depth, allowed: nil).compactMap { hit in
                corpus.rowIndex[hit.row].map { (document: $0, score: hit.score) }
            }
            out.append(Lists(dense: dense[i], lexical: lexical))
            if (i + 1) % 64 == 0 || i + 1 == texts.count { progress(i + 1) }
        }
        return out
    }

    /// The fused ranking of `lists` under `fusion`, best first.
    func fuse(_ lists: Lists, _ fusion: Fusion) -> [(document: Int32, score: Float)] {
        func results(_ l: [(document: Int32, score: Float)]) -> [SearchResult] {
            l.map { SearchResult(id: corpus.ids[Int($0.document)], score: $0.score, metadata: [:], text: nil, vector: nil) }
        }
        return Collection.fuse(dense: results(lists.dense), lexical: results(lists.lexical), fusion: fusion, metric: .cosine)
            .map { (corpus.index[$0.id]!, $0.score) }
    }

    func meanNDCG(_ lists: [Lists], _ relevant: [Set<Int32>], _ fusion: Fusion) -> Double {
        guard !lists.isEmpty else { return 0 }
        return zip(lists, relevant).reduce(0.0) { $0 + ndcg10(fuse($1.0, fusion).prefix(10).map(\.document), relevant: $1.1) } / Double(lists.count)
    }

    /// The best setting on `training` (ties to the earlier candidate), with its training figure and
    /// the validation figures of `current` and of the choice.
    func choose(training: [(String, [Float], Set<Int32>)], validation: [(String, [Float], Set<Int32>)], current: Fusion, depth: Int = 100)
        throws -> (fusion: Fusion, training: Double, validationBefore: Double, validationAfter: Double) {
        let trainLists = try lists(training.map(\.0), training.map(\.1), depth: depth)
        let trainRelevant = training.map(\.2)
        var best = (fusion: current, score: meanNDCG(trainLists, trainRelevant, current))
        for f in Self.candidates {
            let s = meanNDCG(trainLists, trainRelevant, f)
            if s > best.score { best = (f, s) }
        }
        let validLists = try lists(validation.map(\.0), validation.map(\.1), depth: depth)
        let validRelevant = validation.map(\.2)
        return (best.fusion, best.score, meanNDCG(validLists, validRelevant, current), meanNDCG(validLists, validRelevant, best.fusion))
    }
}

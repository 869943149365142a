import Foundation
import QuiverCore
import QuiverEncoder
import QuiverStorage
import QuiverTuning

/// The collection's vectors in memory for training: unit rows, their ids, and rows to indexes.
struct TuningCorpus {
    var ids: [String]
    var index: [String: Int32]
    var rowIndex: [UInt64: Int32]
    var vectors: Matrix

    init(_ c: Collection) throws {
        var ids: [String] = [], rows: [UInt64] = []
        var storage: [Float] = []
        let d = c.info.dimension
        try c.database.readTransaction { txn in
            try c.checkExists(txn)
            var v = [Float](repeating: 0, count: d)
            try c.vectorTable.forEach(txn: txn) { row, vector in
                guard let id = try RowCodec.read(c.info.number, row, collection: c.name, txn: txn, tables: c.database.tables) else { return true }
                let stored = try vector.get()
                v.withUnsafeMutableBufferPointer {
                    $0.baseAddress!.update(from: stored.baseAddress!, count: d)
                    DistanceKernels.normalize($0.baseAddress!, d)
                }
                storage.append(contentsOf: v)
                ids.append(id)
                rows.append(row)
                return true
            }
        }
        self.ids = ids
        index = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, Int32($0)) })
        rowIndex = Dictionary(uniqueKeysWithValues: rows.enumerated().map { ($1, Int32($0)) })
        vectors = Matrix(dimension: d, storage: storage)
    }
}

extension Collection {
    /// Trains a query adapter (and, with `options.fusion`, the hybrid fusion) from the pairs of
    /// JSON Lines file `path` (see `TrainingPair`), and stores them as the collection's defaults
    /// when they beat the current state on the held-back validation pairs. Bad lines stop the
    /// tuning with `QuiverError.badInput` naming file:line, or are passed over with `.skip`.
    /// Nothing is stored unless the whole tuning succeeds. Documents are never re-embedded.
    public func tune(pairsFile path: String, options: TuneOptions = TuneOptions(),
                     progress: (TuneProgress) -> Void = { _ in }) throws -> TuneReport {
        let (pairs, bad) = try TrainingFile.read(path, labels: true)
        return try tune(pairs: pairs, badLines: bad, file: path, options: options, progress: progress)
    }

    /// `tune(pairsFile:)` with the pairs given.
    public func tune(pairs: [TrainingPair], options: TuneOptions = TuneOptions(),
                     progress: (TuneProgress) -> Void = { _ in }) throws -> TuneReport {
        try tune(pairs: pairs, badLines: [], file: "pairs", options: options, progress: progress)
    }

    /// Label-free distillation from the queries of JSON Lines file `path` (`{"query": ...}` lines):
    /// the collection's own hybrid search (its tuned fusion over the best `teacherDepth` of each
    /// list) is the teacher, and the adapter learns to make the dense scores over the teacher's
    /// candidates match the teacher's distribution (KL divergence of the softmaxes).
    public func distill(queriesFile path: String, options: TuneOptions = .distillation,
                        progress: (TuneProgress) -> Void = { _ in }) throws -> TuneReport {
        let (pairs, bad) = try TrainingFile.read(path, labels: false)
        return try distill(queries: pairs, badLines: bad, file: path, options: options, progress: progress)
    }

    /// `distill(queriesFile:)` with the queries given.
    public func distill(queries: [String], options: TuneOptions = .distillation,
                        progress: (TuneProgress) -> Void = { _ in }) throws -> TuneReport {
        let given = try queries.enumerated().map { i, q -> TrainingPair in
            guard !q.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw QuiverError.invalidArgument("query \(i) is empty") }
            return TrainingPair(query: q, positives: [], line: i + 1)
        }
        return try distill(queries: given, badLines: [], file: "queries", options: options, progress: progress)
    }

    /// `distill(queries:)` with the queries' vectors from the collection's query tower at hand (an
    /// app that keeps the vectors of the queries it served, or a benchmark trying several settings
    /// on the same queries): `vectors[i]` must be `embed(queries[i])`, which is not embedded again.
    /// Each vector must have the collection's dimension and finite components.
    public func distill(queries: [String], vectors: [[Float]], options: TuneOptions = .distillation,
                        progress: (TuneProgress) -> Void = { _ in }) throws -> TuneReport {
        guard vectors.count == queries.count else {
            throw QuiverError.invalidArgument("\(vectors.count) query vectors for \(queries.count) queries")
        }
        for (i, v) in vectors.enumerated() {
            guard v.count == info.dimension else {
                throw QuiverError.invalidArgument("query vector \(i) has \(v.count) components; '\(name)' has dimension \(info.dimension)")
            }
            if let bad = v.firstIndex(where: { !$0.isFinite }) { throw QuiverError.invalidArgument("query vector \(i): component \(bad) is NaN or infinite") }
        }
        let given = try queries.enumerated().map { i, q -> TrainingPair in
            guard !q.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw QuiverError.invalidArgument("query \(i) is empty") }
            return TrainingPair(query: q, positives: [], line: i + 1)
        }
        return try distill(queries: given, vectors: vectors, badLines: [], file: "queries", options: options, progress: progress)
    }

    /// The query adapter a text search with `choice` applies (nil: none), checked as a search checks it.
    public func queryAdapter(_ choice: AdapterChoice = .collectionDefault) throws -> QueryAdapter? {
        try adapter(for: choice)?.0
    }

    // MARK: The runs

    private func checkTunable(_ options: TuneOptions) throws -> EncoderBinding {
        guard let binding = info.encoder else {
            throw QuiverError.invalidArgument("'\(name)' has no text encoder: query adapters adapt an encoder's query tower")
        }
        guard options.validationShare > 0, options.validationShare < 1 else {
            throw QuiverError.invalidArgument("the validation share must be between 0 and 1 (exclusive), not \(options.validationShare)")
        }
        try StoredAdapter.checkName(options.name)
        let t = options.trainer
        guard t.epochs >= 1, t.epochs <= 10_000 else { throw QuiverError.invalidArgument("epochs must be between 1 and 10000, not \(t.epochs)") }
        guard t.batchSize >= 2, t.batchSize <= 65_536 else { throw QuiverError.invalidArgument("the batch size must be between 2 and 65536, not \(t.batchSize)") }
        guard t.temperature > 0, t.temperature.isFinite else { throw QuiverError.invalidArgument("the temperature must be positive, not \(t.temperature)") }
        guard t.learningRate > 0, t.learningRate.isFinite else { throw QuiverError.invalidArgument("the learning rate must be positive, not \(t.learningRate)") }
        guard t.weightDecay >= 0, t.weightDecay.isFinite else { throw QuiverError.invalidArgument("the weight decay must not be negative, not \(t.weightDecay)") }
        guard t.hardNegatives >= 0, t.hardNegatives <= 1_000 else { throw QuiverError.invalidArgument("hard negatives must be between 0 and 1000, not \(t.hardNegatives)") }
        guard t.remineEvery >= 1, t.patience >= 1, t.workers >= 1 else { throw QuiverError.invalidArgument("remineEvery, patience and workers must be positive") }
        if case .lowRank(let r) = options.adapter, !(1...info.dimension).contains(r) {
            throw QuiverError.invalidArgument("a low-rank adapter's rank must be between 1 and the dimension (\(info.dimension)), not \(r)")
        }
        guard options.teacherCandidates >= 2, options.teacherDepth >= options.teacherCandidates / 2, options.teacherTemperature > 0 else {
            throw QuiverError.invalidArgument("distillation needs at least 2 teacher candidates, a depth of at least half of them, and a positive temperature")
        }
        if let f = options.teacherFusion { try TunedFusion.check(TunedFusion(f), source: "the teacher's fusion") }
        return binding
    }

    /// The lines that survive the policy: with `stop`, any bad line is the error.
    private func screened(_ bad: [TrainingFile.BadLine], _ policy: BadLinePolicy, file: String) throws {
        guard policy == .stop, let first = bad.first else { return }
        let more = bad.count > 1 ? " (and \(bad.count - 1) more bad line(s): \(bad.dropFirst().prefix(5).map(\.message).joined(separator: "; ")))" : ""
        throw QuiverError.invalidArgument(first.message + more + "; fix them, or pass over bad lines (--skip-bad-lines)")
    }

    /// A seeded split: (training, validation) indexes; validation gets round(share x n), at least 1.
    private func split(_ n: Int, share: Double, seed: UInt64) throws -> ([Int], [Int]) {
        guard n >= 4 else { throw QuiverError.invalidArgument("tuning needs at least 4 usable lines, not \(n)") }
        var order = Array(0..<n)
        var rng = SplitMix64(seed: seed)
        order.shuffle(using: &rng)
        let v = min(n - 2, max(1, Int((Double(n) * share).rounded())))
        return (Array(order[v...]).sorted(), Array(order[..<v]).sorted())
    }

    /// The query tower's vectors of `texts`, in batches of 32 with progress.
    private func embedQueries(_ texts: [String], progress: (TuneProgress) -> Void) throws -> [[Float]] {
        let encoder = try database.encoder(for: info)
        var out: [[Float]] = []
        out.reserveCapacity(texts.count)
        var s = 0
        while s < texts.count {
            let m = try encode(Array(texts[s..<min(s + 32, texts.count)]), with: encoder, queries: true)
            for i in 0..<m.rows { out.append(m[row: i]) }
            s += 32
            progress(TuneProgress(phase: "embedding queries", done: min(s, texts.count), total: texts.count))
        }
        return out
    }

    private func tune(pairs given: [TrainingPair], badLines: [TrainingFile.BadLine], file: String, options: TuneOptions,
                      progress: (TuneProgress) -> Void) throws -> TuneReport {
        let binding = try checkTunable(options)
        if options.fusion && info.fullText == nil {
            throw QuiverError.invalidArgument("'\(name)' has no full-text index: fusion tuning needs hybrid search")
        }
        guard options.adapter != nil || options.fusion else { throw QuiverError.invalidArgument("nothing to tune: no adapter and no fusion") }
        let corpus = try TuningCorpus(self)
        var bad = badLines
        var pairs: [TrainingPair] = []
        for p in given {
            let unknown = (p.positives + p.negatives).filter { corpus.index[$0] == nil }
            if unknown.isEmpty { pairs.append(p) } else {
                bad.append(TrainingFile.BadLine(line: p.line, message: "\(file):\(p.line): unknown document id(s) \(unknown.prefix(3).map { "'\($0)'" }.joined(separator: ", "))"))
            }
        }
        bad.sort { $0.line < $1.line }
        try screened(bad, options.badLines, file: file)
        let (trainIdx, validIdx) = try split(pairs.count, share: options.validationShare, seed: options.seed)
        let t0 = ContinuousClock.now
        let vectors = try embedQueries(pairs.map(\.query), progress: progress)
        let embeddingSeconds = seconds(since: t0)
        func example(_ i: Int) -> TrainingExample {
            TrainingExample(query: vectors[i], positives: pairs[i].positives.map { corpus.index[$0]! },
                            negatives: pairs[i].negatives.map { corpus.index[$0]! })
        }
        let training = trainIdx.map(example), validation = validIdx.map(example)
        var config = options.trainer
        config.kind = options.adapter ?? .linear
        let trainer = AdapterTrainer(documents: corpus.vectors, configuration: config)
        let t1 = ContinuousClock.now
        var outcome: TrainingOutcome?
        if options.adapter != nil {
            outcome = trainer.train(training, validation: validation) { e in
                progress(TuneProgress(phase: "training", done: e.epoch, total: config.epochs, epoch: e))
                return true
            }
        }
        var report = TuneReport(method: "supervised", adapter: options.adapter == nil ? nil : options.name,
                                kind: options.adapter?.description, trainingExamples: training.count, validationExamples: validation.count,
                                skippedLines: bad.map(\.message), epochs: outcome?.epochs.count ?? 0, bestEpoch: outcome?.bestEpoch ?? 0,
                                validationBefore: outcome?.validationBefore ?? 0, validationAfter: outcome?.validationAfter ?? 0,
                                history: outcome?.epochs ?? [], stored: false, embeddingSeconds: embeddingSeconds, trainingSeconds: 0,
                                createdAt: Date().timeIntervalSince1970.rounded())
        let adapterGain = outcome.map { $0.validationAfter > $0.validationBefore } ?? false
        // The adapter the fusion is tuned with: the new one when it is kept, else the current default.
        let dense = adapterGain || options.force ? outcome?.adapter : try adapter(for: .collectionDefault)?.0
        if options.fusion {
            progress(TuneProgress(phase: "fusion", done: 0, total: 1))
            let f = try FusionTuning(collection: self, corpus: corpus, trainer: trainer, adapter: dense)
            // With a new adapter, the training lines' dense lists are the ones it was fitted to (they
            // would favour the dense list): the fusion is then chosen on half of the held-back lines
            // and reported on the other half.
            let fitted = dense != nil && outcome != nil && dense == outcome?.adapter
            let half = validIdx.count / 2
            let chooseOn = fitted ? Array(validIdx[..<half]) : trainIdx, reportOn = fitted ? Array(validIdx[half...]) : validIdx
            func labelled(_ i: Int) -> (String, [Float], Set<Int32>) { (pairs[i].query, vectors[i], Set(pairs[i].positives.map { corpus.index[$0]! })) }
            let chosen = try f.choose(training: chooseOn.map(labelled), validation: reportOn.map(labelled), current: resolvedFusion(nil).0)
            report.fusion = TunedFusion(chosen.fusion)
            report.fusionTrainingNDCG = chosen.training
            report.fusionValidationBefore = chosen.validationBefore
            report.fusionValidationAfter = chosen.validationAfter
            progress(TuneProgress(phase: "fusion", done: 1, total: 1))
        }
        report.trainingSeconds = seconds(since: t1)
        let fusionGain = report.fusion != nil && (report.fusionValidationAfter ?? 0) >= (report.fusionValidationBefore ?? 0)
        let storeAdapter = outcome != nil && (adapterGain || options.force)
        let storeFusion = report.fusion != nil && (fusionGain || options.force)
        guard storeAdapter || storeFusion else { return report }
        report.stored = true
        try store(report, adapter: storeAdapter ? outcome!.adapter : nil, fusion: storeFusion ? report.fusion : nil, binding: binding, options: options)
        return report
    }

    private func distill(queries given: [TrainingPair], vectors known: [[Float]]? = nil, badLines: [TrainingFile.BadLine], file: String,
                         options: TuneOptions, progress: (TuneProgress) -> Void) throws -> TuneReport {
        let binding = try checkTunable(options)
        guard info.fullText != nil else { throw QuiverError.invalidArgument("'\(name)' has no full-text index: distillation's teacher is hybrid search") }
        guard options.adapter != nil else { throw QuiverError.invalidArgument("distillation trains an adapter: give its kind") }
        try screened(badLines, options.badLines, file: file)
        let corpus = try TuningCorpus(self)
        let (trainIdx, validIdx) = try split(given.count, share: options.validationShare, seed: options.seed)
        let t0 = ContinuousClock.now
        let vectors = try known ?? embedQueries(given.map(\.query), progress: progress)
        let embeddingSeconds = seconds(since: t0)
        var config = options.trainer
        config.kind = options.adapter!
        let trainer = AdapterTrainer(documents: corpus.vectors, configuration: config)
        // The teacher: the collection's hybrid ranking as it stands (default adapter and fusion).
        let teacherAdapter = try adapter(for: .collectionDefault)?.0
        let fusion = resolvedFusion(options.teacherFusion).0
        let f = try FusionTuning(collection: self, corpus: corpus, trainer: trainer, adapter: teacherAdapter)
        let lists = try f.lists(given.map(\.query), vectors, depth: options.teacherDepth) { done in
            progress(TuneProgress(phase: "teacher", done: done, total: given.count))
        }
        let examples: [TrainingExample] = (0..<given.count).map { i in
            let fused = Array(f.fuse(lists[i], fusion).prefix(options.teacherCandidates))
            let hi = fused.first?.score ?? 1, lo = fused.last?.score ?? 0
            let logits = fused.map { Double(hi > lo ? ($0.score - lo) / (hi - lo) : 1) / Double(options.teacherTemperature) }
            let top = logits.max() ?? 0
            let z = logits.reduce(0) { $0 + exp($1 - top) }
            let teacher = zip(fused, logits).map { (document: $0.0.document, probability: Float(exp($0.1 - top) / z)) }
            return TrainingExample(query: vectors[i], positives: fused.prefix(10).map(\.document), teacher: teacher)
        }
        let t1 = ContinuousClock.now
        let outcome = trainer.train(trainIdx.map { examples[$0] }, validation: validIdx.map { examples[$0] }) { e in
            progress(TuneProgress(phase: "training", done: e.epoch, total: config.epochs, epoch: e))
            return true
        }
        var report = TuneReport(method: "distillation", adapter: options.name, kind: config.kind.description, trainingExamples: trainIdx.count,
                                validationExamples: validIdx.count, skippedLines: badLines.map(\.message), epochs: outcome.epochs.count,
                                bestEpoch: outcome.bestEpoch, validationBefore: outcome.validationBefore, validationAfter: outcome.validationAfter,
                                history: outcome.epochs, stored: false, embeddingSeconds: embeddingSeconds,
                                trainingSeconds: seconds(since: t1), createdAt: Date().timeIntervalSince1970.rounded())
        guard outcome.validationAfter > outcome.validationBefore || options.force else { return report }
        report.stored = true
        try store(report, adapter: outcome.adapter, fusion: nil, binding: binding, options: options)
        return report
    }

    /// One write: the adapter (when given) under `options.name`, and the defaults.
    func store(_ report: TuneReport, adapter: QueryAdapter?, fusion: TunedFusion?, binding: EncoderBinding, options: TuneOptions) throws {
        let payload = try adapter.map {
            try StoredAdapter(name: options.name, adapter: $0, encoderIdentifier: binding.identifier, encoderWeights: binding.weightsChecksum,
                              report: report).payload()
        }
        try database.write { txn in
            let current = try database.info(name, txn: txn)
            guard current.number == info.number else { throw QuiverError.unknownCollection(name) }
            guard current.encoder == binding else { throw QuiverError.encoder("the encoder of '\(name)' changed during tuning") }
            var settings = current.tuning ?? TuningSettings()
            if let payload, options.makeDefault {
                settings.adapter = options.name
                settings.adapterDigest = SHA256.hex(payload)
            } else if let payload, settings.adapter == options.name {
                settings.adapterDigest = SHA256.hex(payload)
            }
            if let fusion { settings.fusion = fusion }
            let change: TuningChange = payload.map { .put(name: options.name, payload: $0) } ?? .none
            return (.tuning(number: info.number, change: change, settings: settings), ())
        }
    }
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

import Foundation
import QuiverCore
import QuiverEncoder
import QuiverStorage
import QuiverTuning

/// How `Collection.tune` trains.
public struct TuneOptions: Sendable {
    /// The adapter to train (nil: none, fusion only).
    public var adapter: QueryAdapter.Kind? = .linear
    /// The name it is stored under.
    public var name = "default"
    /// Share of the examples held back for validation and early stopping (seeded split).
    public var validationShare = 0.1
    public var seed: UInt64 = 1
    /// Choose the hybrid fusion on the training split and store it as the collection's default.
    public var fusion = false
    /// Bad lines of a file: stop (the default) or train on the good ones.
    public var badLines: BadLinePolicy = .stop
    /// Store the result even when it does not beat the current state on the validation queries.
    public var force = false
    /// Make the new adapter the collection's default (default true).
    public var makeDefault = true
    /// The trainer's settings (epochs, temperature, weight decay, hard negatives, ...).
    public var trainer = TrainerConfiguration()
    /// Distillation: candidates per query from the teacher (the collection's hybrid search over the
    /// best `teacherDepth` of each list), and the teacher's softmax temperature over its fused scores
    /// scaled to 0...1.
    public var teacherCandidates = 50
    public var teacherDepth = 100
    public var teacherTemperature: Float = 0.1
    /// Distillation: the fusion of the teacher's hybrid ranking (nil: the collection's default).
    public var teacherFusion: Fusion? = nil

    public init() {}

    /// The defaults of distillation (`distill`), chosen by `TuneBench --sweep-distill` on SciFact's
    /// training claims alone (three folds of 81 held-out claims, judged by their training labels;
    /// docs/benchmarks.md): a sharper teacher (temperature 0.02 over its fused scores scaled to
    /// 0...1) and a softer student (0.05) than supervised training's, a larger step (3e-4) held
    /// near the identity by a stronger decay (50), 64 mined negatives, and more patience (10 epochs), since agreement
    /// with the teacher is a noisier figure than labelled nDCG@10.
    public static var distillation: TuneOptions {
        var o = TuneOptions()
        o.teacherTemperature = 0.02
        o.teacherCandidates = 50
        o.trainer.temperature = 0.05
        o.trainer.learningRate = 3e-4
        o.trainer.weightDecay = 50
        o.trainer.patience = 10
        o.trainer.hardNegatives = 64
        return o
    }
}

/// Where a tuning is, for a progress bar.
public struct TuneProgress: Sendable {
    /// `embedding queries`, `training`, `fusion` or `teacher`.
    public var phase: String
    public var done: Int
    public var total: Int
    /// During training, the last epoch's figures.
    public var epoch: EpochReport?
}

extension Collection {
    // MARK: Applying

    /// How much wider than the collection's efSearch an HNSW search through a query adapter looks
    /// when the search does not give efSearch. On SciFact (TuneBench's recall rows) HNSW at efSearch
    /// 64 finds 99.4% of the exact top ten for untuned queries and 99.5% for adapted ones: the
    /// adapter does not make the graph harder to search, but the 0.5% it misses cost the adapted
    /// ranking 0.006 nDCG@10 on the 104 unseen claims, about half of the adapter's gain there,
    /// while at 96 and wider HNSW equals the exact scan. Text search cost is the encoder's, so
    /// the wider list costs little (the adapter cost figure in docs/benchmarks.md includes it).
    static let adaptedEfSearchFactor = 2

    /// The vector a text search uses: the query tower's, through the adapter `options` choose, and
    /// the options to search with (efSearch widened by `adaptedEfSearchFactor` when an adapter
    /// applies and the search gives no efSearch).
    func queryVector(_ text: String, options: SearchOptions) throws -> ([Float], String?, SearchOptions) {
        let v = try embed(text, query: true)
        guard let (adapter, name) = try adapter(for: options.adapter) else { return (v, nil, options) }
        var widened = options
        if widened.efSearch == nil { widened.efSearch = min(info.indexSettings.efSearch * Self.adaptedEfSearchFactor, 1 << 20) }
        return (adapter.apply(v), name, widened)
    }

    /// The adapter `choice` names (nil for none, or no default), checked: its stored bytes against
    /// the catalog's digest (the default one), and its encoder against the collection's.
    func adapter(for choice: AdapterChoice) throws -> (QueryAdapter, String)? {
        let current = try database.describe(name)
        guard current.number == info.number else { throw QuiverError.unknownCollection(name) }
        let wanted: String, digest: String?
        switch choice {
        case .none: return nil
        case .collectionDefault:
            guard let a = current.tuning?.adapter else { return nil }
            wanted = a
            digest = current.tuning?.adapterDigest
            if let d = digest, let hit = AdapterCache.shared.get(d) { return (hit, a) }
        case .named(let a):
            try StoredAdapter.checkName(a)
            wanted = a
            digest = nil
        }
        guard let (stored, actual) = try database.readTransaction({ txn in try StoredAdapter.read(current, wanted, txn: txn, tables: database.tables) }) else {
            throw QuiverError.invalidArgument("'\(name)' has no adapter named '\(wanted)'" + (choice == .collectionDefault ? " (its catalog names it as the default; run `quiver verify`)" : ""))
        }
        if let d = digest, d != actual {
            throw QuiverError.storage(StorageError(.corrupt, "collection '\(name)': the stored query adapter '\(wanted)' is not the one its catalog entry names (SHA-256 \(actual.prefix(16)) instead of \(d.prefix(16))); run `quiver verify`"))
        }
        guard let binding = current.encoder, binding.identifier == stored.encoderIdentifier, binding.weightsChecksum == stored.encoderWeights,
              stored.adapter.dimension == current.dimension else {
            throw QuiverError.encoder("query adapter '\(wanted)' of '\(name)' was trained for encoder \(stored.encoderIdentifier) (weights \(stored.encoderWeights.prefix(16))), not the collection's \(current.encoder?.identifier ?? "none"); train it again")
        }
        AdapterCache.shared.put(actual, stored.adapter)
        return (stored.adapter, wanted)
    }

    /// The fusion a hybrid search uses and where it came from.
    func resolvedFusion(_ given: Fusion?) -> (Fusion, String) {
        if let given { return (given, "given") }
        if let current = try? database.describe(name), current.number == info.number, let f = current.tuning?.fusion?.fusion {
            return (f, "the collection's tuned default")
        }
        return (.reciprocalRank(k: 60), "the default")
    }

    // MARK: Listing and removing

    /// The collection's stored query adapters, by name.
    public func adapters() throws -> [AdapterInfo] {
        try database.readTransaction { txn in
            let current = try database.info(name, txn: txn)
            guard current.number == info.number else { throw QuiverError.unknownCollection(name) }
            var out: [AdapterInfo] = []
            var names: [String] = []
            try txn.forEach(database.tables.adapters, prefix: Keys.collection(info.number)) { k, _ in
                names.append(String(decoding: UnsafeRawBufferPointer(rebasing: k[4...]), as: UTF8.self))
                return true
            }
            for n in names {
                guard let (stored, digest) = try StoredAdapter.read(current, n, txn: txn, tables: database.tables) else { continue }
                out.append(AdapterInfo(name: n, kind: stored.adapter.kind.description, isDefault: current.tuning?.adapter == n,
                                       digest: digest, report: stored.report))
            }
            return out
        }
    }

    /// Removes adapter `name` (when it is the default, text searches go back to the query tower alone).
    public func removeAdapter(_ adapterName: String) throws {
        try StoredAdapter.checkName(adapterName)
        try database.write { txn in
            let current = try database.info(name, txn: txn)
            guard current.number == info.number else { throw QuiverError.unknownCollection(name) }
            guard try txn.contains(database.tables.adapters, StoredAdapter.key(info.number, adapterName)) else {
                throw QuiverError.invalidArgument("'\(name)' has no adapter named '\(adapterName)'")
            }
            var settings = current.tuning ?? TuningSettings()
            if settings.adapter == adapterName { settings.adapter = nil; settings.adapterDigest = nil }
            return (.tuning(number: info.number, change: .remove(name: adapterName), settings: settings == TuningSettings() ? nil : settings), ())
        }
    }

    /// Makes stored adapter `name` the default of text searches (nil: none), and sets or clears the
    /// default hybrid fusion when `fusion` is given.
    public func setTuningDefaults(adapter adapterName: String?, fusion: Fusion?? = nil) throws {
        try database.write { txn in
            let current = try database.info(name, txn: txn)
            guard current.number == info.number else { throw QuiverError.unknownCollection(name) }
            var settings = current.tuning ?? TuningSettings()
            if let a = adapterName {
                try StoredAdapter.checkName(a)
                guard let (_, digest) = try StoredAdapter.read(current, a, txn: txn, tables: database.tables) else {
                    throw QuiverError.invalidArgument("'\(name)' has no adapter named '\(a)'")
                }
                settings.adapter = a
                settings.adapterDigest = digest
            } else {
                settings.adapter = nil
                settings.adapterDigest = nil
            }
            if let f = fusion { settings.fusion = f.map(TunedFusion.init) }
            return (.tuning(number: info.number, change: .none, settings: settings == TuningSettings() ? nil : settings), ())
        }
    }
}

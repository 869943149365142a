import QuiverTuning

/// What tuning stored as a collection's defaults (in its catalog entry).
public struct TuningSettings: Sendable, Equatable, Codable {
    /// The adapter applied to text queries unless a search says otherwise (nil: none).
    public var adapter: String?
    /// The SHA-256 of that adapter's stored payload: applying it checks the stored bytes against it.
    public var adapterDigest: String?
    /// The default fusion of hybrid search (nil: reciprocal rank, k 60).
    public var fusion: TunedFusion?

    public init(adapter: String? = nil, adapterDigest: String? = nil, fusion: TunedFusion? = nil) {
        self.adapter = adapter
        self.adapterDigest = adapterDigest
        self.fusion = fusion
    }
}

/// A hybrid fusion as stored (the Codable form of `Fusion`).
public struct TunedFusion: Sendable, Equatable, Codable, CustomStringConvertible {
    /// `rrf`, `weighted` (min-max) or `distribution` (mean and 3 standard deviations).
    public var method: String
    /// RRF's k.
    public var k: Int?
    /// The dense list's weight (weighted and distribution).
    public var dense: Double?

    public init(_ fusion: Fusion) {
        switch fusion {
        case .reciprocalRank(let k): method = "rrf"; self.k = k
        case .weighted(let w): method = "weighted"; dense = w
        case .distribution(let w): method = "distribution"; dense = w
        }
    }

    /// The fusion (nil for a method this version does not know).
    public var fusion: Fusion? {
        switch method {
        case "rrf": return k.map { .reciprocalRank(k: $0) }
        case "weighted": return dense.map { .weighted(dense: $0) }
        case "distribution": return dense.map { .distribution(dense: $0) }
        default: return nil
        }
    }

    public var description: String { fusion.map { "\($0)" } ?? method }
}

/// Which adapter a text search applies.
public enum AdapterChoice: Sendable, Equatable {
    /// The collection's default adapter, when it has one.
    case collectionDefault
    /// None: the query tower's output as it is.
    case none
    /// The adapter stored under this name.
    case named(String)
}

/// What one tuning did, stored with the adapter it made.
public struct TuneReport: Sendable, Codable, Equatable {
    /// `supervised` (pairs) or `distillation` (queries only).
    public var method: String
    /// The adapter's name and kind (`linear`, `lowrank:R`); nil when no adapter was trained.
    public var adapter: String?
    public var kind: String?
    /// Examples used for training and held back for validation.
    public var trainingExamples: Int
    public var validationExamples: Int
    /// Input lines passed over (bad lines with `skip`), each `file:line: reason`.
    public var skippedLines: [String]
    /// Epochs run and the epoch kept (by validation nDCG@10).
    public var epochs: Int
    public var bestEpoch: Int
    /// Validation nDCG@10 of dense search without and with the adapter (for distillation: agreement
    /// with the teacher's top ten).
    public var validationBefore: Double
    public var validationAfter: Double
    /// The per-epoch loss and validation figures.
    public var history: [EpochReport]
    /// Fusion tuning: the chosen fusion and hybrid validation nDCG@10 with the previous default and
    /// with the chosen one (nil without fusion tuning). With a new adapter the fusion is chosen on
    /// half of the validation lines (the training lines are what the adapter was fitted to) and
    /// these figures are the other half's; without one, it is chosen on the training lines.
    public var fusion: TunedFusion?
    public var fusionTrainingNDCG: Double?
    public var fusionValidationBefore: Double?
    public var fusionValidationAfter: Double?
    /// Whether the result was stored (false when it did not beat the collection's current state
    /// on the validation queries and storing was not forced).
    public var stored: Bool
    /// Seconds spent embedding queries and training.
    public var embeddingSeconds: Double
    public var trainingSeconds: Double
    /// When it was made (seconds since 1970).
    public var createdAt: Double
}

extension TuneReport {
    /// The report of an adapter stored without training (`method` says how it was made).
    static func untrained(_ method: String, adapter: String, kind: String) -> TuneReport {
        TuneReport(method: method, adapter: adapter, kind: kind, trainingExamples: 0, validationExamples: 0, skippedLines: [], epochs: 0,
                   bestEpoch: 0, validationBefore: 0, validationAfter: 0, history: [], stored: true, embeddingSeconds: 0,
                   trainingSeconds: 0, createdAt: 0)
    }
}

/// A stored adapter, as `Collection.adapters()` lists it.
public struct AdapterInfo: Sendable, Codable, Equatable {
    public var name: String
    public var kind: String
    public var isDefault: Bool
    /// The SHA-256 of its stored payload.
    public var digest: String
    public var report: TuneReport
}

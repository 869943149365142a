import Foundation
import Quiver

/// `rrf`, `rrf:<k>`, `weighted:<w>` or `distribution:<w>` (w in 0...1), else nil.
func parseFusion(_ text: String) -> Fusion? {
    if text == "rrf" { return .reciprocalRank(k: 60) }
    let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
    guard parts.count == 2 else { return nil }
    switch parts[0] {
    case "rrf": return Int(parts[1]).flatMap { (1...100_000).contains($0) ? .reciprocalRank(k: $0) : nil }
    case "weighted": return Double(parts[1]).flatMap { (0...1).contains($0) ? .weighted(dense: $0) : nil }
    case "distribution": return Double(parts[1]).flatMap { (0...1).contains($0) ? .distribution(dense: $0) : nil }
    default: return nil
    }
}

struct TuneCommand: CLICommand {
    static let name = "tune"
    static let abstract = "Train a query adapter (and the hybrid fusion) from example queries; documents are not re-embedded."
    static let positionals = [PositionalSpec(name: "collection", help: "A collection with a text encoder.")]
    static let options = [
        OptionSpec(name: "pairs", value: "<file>", help: #"JSON Lines of {"query": "...", "positive": "<id>" or ["<id>", ...], "negative": [optional ids]}."#),
        OptionSpec(name: "queries", value: "<file>", help: #"JSON Lines of {"query": "..."} without labels: distillation from the collection's own hybrid search."#),
        OptionSpec(name: "adapter", value: "<kind>", help: "linear (full rank; default), lowrank:<R>, or none (fusion only)."),
        OptionSpec(name: "name", value: "<name>", help: "The name the adapter is stored under (default 'default')."),
        OptionSpec(name: "epochs", value: "<n>", help: "Passes over the training pairs at most (default 30; early stopping usually ends sooner)."),
        OptionSpec(name: "validation", value: "<share>", help: "Share of the lines held back to validate and stop early (default 0.1; seeded)."),
        OptionSpec(name: "seed", value: "<n>", help: "Seed of the validation split and of training (default 1)."),
        OptionSpec(name: "fusion", help: "With --pairs: also choose the hybrid fusion and store it as the collection's default."),
        OptionSpec(name: "temperature", value: "<t>", help: "Softmax temperature of the adapter's scores (default 0.02; 0.05 with --queries)."),
        OptionSpec(name: "weight-decay", value: "<x>", help: "Decay toward the identity adapter, per step and learning rate (default 1; 50 with --queries)."),
        OptionSpec(name: "skip-bad-lines", help: "Train on the good lines of a file with bad ones (default: stop, naming file:line of each)."),
        OptionSpec(name: "force", help: "Store the result even when it does not beat the current state on the validation lines."),
    ]
    static let discussion = """
    The adapter maps the query tower's output before search (u = q + qW, rescaled); documents keep
    their vectors. It is trained with a contrastive loss over in-batch and mined hard negatives, and
    stopped early on nDCG@10 of the held-back lines; it is stored (and made the default for text
    searches) only when it beats the untuned search on them. `quiver search --adapter none` compares.
    Nothing is stored when tuning fails. See docs/cli.md for how much data helps.
    """
    static let examples = [
        "quiver tune papers --pairs train.jsonl",
        "quiver tune papers --pairs train.jsonl --fusion --adapter lowrank:64",
        "quiver tune papers --queries served.jsonl --name distilled",
        "quiver tune papers --pairs train.jsonl --adapter none --fusion --json",
    ]

    let collection: String
    let pairs: String?
    let queries: String?
    var options = TuneOptions()

    init(_ a: ParsedArguments) throws {
        collection = a.positional(0)!
        pairs = a.value("pairs")
        queries = a.value("queries")
        guard (pairs == nil) != (queries == nil) else { throw UsageError(message: "give exactly one of --pairs and --queries", command: Self.name) }
        if queries != nil { options = .distillation }
        if let kind = a.value("adapter") {
            if kind == "none" { options.adapter = nil } else {
                guard let k = QueryAdapter.Kind(kind) else {
                    throw UsageError(message: "--adapter must be linear, lowrank:<R> or none, not \(MessageText.quoted(kind))", command: Self.name)
                }
                options.adapter = k
            }
        }
        if let n = a.value("name") { options.name = n }
        options.trainer.epochs = try a.int("epochs", default: options.trainer.epochs, range: 1...10_000)
        options.seed = UInt64(try a.int("seed", default: 1, range: 0...Int.max))
        options.fusion = a.flag("fusion")
        if options.fusion && queries != nil { throw UsageError(message: "--fusion needs --pairs (labels)", command: Self.name) }
        options.force = a.flag("force")
        options.badLines = a.flag("skip-bad-lines") ? .skip : .stop
        func real(_ name: String, _ range: ClosedRange<Double>) throws -> Double? {
            guard let raw = a.value(name) else { return nil }
            guard let v = Double(raw), range.contains(v) else {
                throw UsageError(message: "--\(name) must be a number in \(range.lowerBound)...\(range.upperBound), not \(MessageText.quoted(raw))", command: Self.name)
            }
            return v
        }
        if let v = try real("validation", 0.01...0.9) { options.validationShare = v }
        if let t = try real("temperature", 0.001...10) { options.trainer.temperature = Float(t) }
        if let w = try real("weight-decay", 0...100) { options.trainer.weightDecay = Float(w) }
    }

    func run(_ context: CommandContext) throws {
        let db = try context.openDatabase()
        let c = try db.collection(collection)
        let terminal = isatty(2) != 0
        var lastLine = -Double.infinity
        let progress: (TuneProgress) -> Void = { p in
            let now = ProcessInfo.processInfo.systemUptime
            let last = p.done == p.total
            guard terminal ? true : (now - lastLine >= 5 || last) else { return }
            lastLine = now
            var text = "\(p.phase): \(p.done)/\(p.total)"
            if let e = p.epoch { text += String(format: ", loss %.4f, validation nDCG@10 %.4f", e.loss, e.validationNDCG) }
            if terminal {
                let filled = p.total > 0 ? min(24, 24 * p.done / p.total) : 0
                let bar = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: 24 - filled) + "] "
                FileHandle.standardError.write(Data(("\r\u{1B}[K" + bar + text).utf8))
            } else {
                FileHandle.standardError.write(Data((text + "\n").utf8))
            }
        }
        let report: TuneReport
        do {
            report = try pairs.map { try c.tune(pairsFile: $0, options: options, progress: progress) }
                ?? c.distill(queriesFile: queries!, options: options, progress: progress)
        } catch {
            if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
            throw error
        }
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
        if context.json { try context.printJSON(report); return }
        for s in report.skippedLines { context.line("skipped \(s)") }
        let what = report.method == "distillation" ? "agreement with the teacher's top 10" : "nDCG@10"
        var rows: [[String]] = []
        if let a = report.adapter {
            rows.append(["dense (\(what))", String(format: "%.4f", report.validationBefore), String(format: "%.4f", report.validationAfter),
                         "adapter '\(a)' (\(report.kind ?? "")), epoch \(report.bestEpoch) of \(report.epochs)"])
        }
        if let f = report.fusion {
            rows.append(["hybrid (nDCG@10)", String(format: "%.4f", report.fusionValidationBefore ?? 0), String(format: "%.4f", report.fusionValidationAfter ?? 0),
                         "fusion \(f)"])
        }
        context.line("\(report.trainingExamples) training and \(report.validationExamples) validation lines (\(report.method))")
        context.table(["VALIDATION", "BEFORE", "AFTER", "WHAT"], rows)
        context.line(String(format: "embedding %.1f s, training %.1f s", report.embeddingSeconds, report.trainingSeconds))
        context.line(report.stored ? "Stored as the defaults of '\(collection)' (compare with `quiver search --adapter none`)."
                                   : "Not stored: no gain on the validation lines (--force stores it anyway).")
    }
}

struct AdaptersCommand: CLICommand {
    static let name = "adapters"
    static let abstract = "List a collection's query adapters, or remove one, or choose the default."
    static let positionals = [PositionalSpec(name: "collection", help: "The collection.")]
    static let options = [
        OptionSpec(name: "remove", value: "<name>", help: "Remove this adapter (when it is the default, text searches go back to the query tower alone)."),
        OptionSpec(name: "default", value: "<name|none>", help: "Make this stored adapter the default of text searches (none: no default)."),
    ]
    static let examples = ["quiver adapters papers", "quiver adapters papers --remove old", "quiver adapters papers --default none --json"]

    let collection: String
    let remove: String?
    let makeDefault: String?

    init(_ a: ParsedArguments) throws {
        collection = a.positional(0)!
        remove = a.value("remove")
        makeDefault = a.value("default")
        if remove != nil && makeDefault != nil { throw UsageError(message: "give at most one of --remove and --default", command: Self.name) }
    }

    func run(_ context: CommandContext) throws {
        let db = try context.openDatabase(readOnly: remove == nil && makeDefault == nil)
        let c = try db.collection(collection)
        if let r = remove {
            try c.removeAdapter(r)
            if context.json { try context.printJSON(["removed": r]) } else { context.line("Removed adapter '\(r)' of '\(collection)'") }
            return
        }
        if let d = makeDefault {
            try c.setTuningDefaults(adapter: d == "none" ? nil : d)
            if context.json { try context.printJSON(["default": d]) } else { context.line("Default adapter of '\(collection)': \(d)") }
            return
        }
        let list = try c.adapters()
        let fusion = try db.describe(collection).tuning?.fusion
        if context.json {
            struct Output: Encodable { let adapters: [AdapterInfo]; let fusion: TunedFusion? }
            try context.printJSON(Output(adapters: list, fusion: fusion))
            return
        }
        if list.isEmpty { context.line("No adapters") } else {
            context.table(["NAME", "KIND", "DEFAULT", "METHOD", "LINES", "VALIDATION", "CREATED"], list.map { a in
                [a.name, a.kind, a.isDefault ? "yes" : "", a.report.method, "\(a.report.trainingExamples)+\(a.report.validationExamples)",
                 String(format: "%.4f -> %.4f", a.report.validationBefore, a.report.validationAfter),
                 ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: a.report.createdAt))]
            })
        }
        context.line("hybrid fusion: \(fusion?.description ?? "rrf k 60 (not tuned)")")
    }
}

import Foundation
import Quiver

struct DedupCommand: CLICommand {
    static let name = "dedup"
    static let abstract = "Find near-duplicate documents (all pairs above a threshold), in clusters; optionally delete all but one."
    static let positionals = [PositionalSpec(name: "collection", help: "The collection to search for near-duplicates.")]
    static let options = [
        OptionSpec(name: "threshold", value: "<s>", help: "Pairs scoring at least s (cosine similarity or dot product); for l2, within Euclidean distance s. Required."),
        OptionSpec(name: "filter", value: "<filter>", help: "Only documents whose metadata matches (both sides of every pair)."),
        OptionSpec(name: "clusters", value: "<how>", help: "connected (default: connected components of the pairs) or representative (every member within the threshold of the cluster's representative)."),
        OptionSpec(name: "exact", help: "Join by scanning every vector instead of the index (the exact answer; quadratic, slow)."),
        OptionSpec(name: "output", value: "<file>", help: "Also write the clusters to this file, one JSON object per line (it must not exist)."),
        OptionSpec(name: "delete", help: "Delete all but one document per cluster: prints what it would delete, and deletes only with --yes."),
        OptionSpec(name: "keep", value: "<rule>", help: "With --delete: first (written first; default), longest (longest text) or a metadata field (greatest value; field:<name> for a field called first or longest)."),
        OptionSpec(name: "yes", help: "With --delete: delete after printing the plan (each cluster one atomic batch)."),
        OptionSpec(name: "allow-unknown-fields", help: "Let the filter name fields no document has (by default an error listing the fields)."),
    ]
    static let discussion = """
    Every document is a range query over the index for the others at or above the threshold (the
    range search of `quiver search --min-score`), on every core, with a progress bar on standard
    error; each pair is reported once. --delete without --yes is a dry run that changes nothing.
    Exit codes: 0 success (also when no pair is found), 1 an error, 2 a usage error.
    """
    static let examples = [
        "quiver dedup questions --threshold 0.95",
        "quiver dedup questions --threshold 0.9 --filter 'lang = \"en\"' --output clusters.jsonl --json",
        "quiver dedup questions --threshold 0.95 --delete --keep longest",
        "quiver dedup questions --threshold 0.95 --delete --keep updated --yes",
    ]

    let collection: String
    let threshold: Float
    let filter: Filter?
    let clustering: NearDuplicateClustering
    let exact: Bool
    let output: String?
    let keep: NearDuplicateKeep?
    let yes: Bool
    let allowUnknownFields: Bool

    init(_ a: ParsedArguments) throws {
        collection = a.positional(0)!
        guard let t = try a.finiteFloat("threshold") else { throw UsageError(message: "--threshold is required (e.g. --threshold 0.95)", command: Self.name) }
        threshold = t
        filter = try a.value("filter").map { try parseFilterOption($0, command: Self.name) }
        let how = a.value("clusters") ?? "connected"
        guard let c = NearDuplicateClustering(rawValue: how) else {
            throw UsageError(message: "--clusters must be connected or representative, not \(MessageText.quoted(how))", command: Self.name)
        }
        clustering = c
        exact = a.flag("exact")
        output = a.value("output")
        yes = a.flag("yes")
        allowUnknownFields = a.flag("allow-unknown-fields")
        if a.flag("delete") {
            let rule = a.value("keep") ?? "first"
            guard !rule.isEmpty && rule != "field:" else { throw UsageError(message: "--keep needs first, longest or a field name", command: Self.name) }
            keep = NearDuplicateKeep(parsing: rule)
        } else {
            if a.value("keep") != nil { throw UsageError(message: "--keep applies only with --delete", command: Self.name) }
            if yes { throw UsageError(message: "--yes applies only with --delete", command: Self.name) }
            keep = nil
        }
        if let output, FileManager.default.fileExists(atPath: output) {
            throw UsageError(message: "--output \(MessageText.quoted(output)) exists; dedup writes a new file", command: Self.name)
        }
    }

    func run(_ context: CommandContext) throws {
        let db = try context.openDatabase(readOnly: keep == nil || !yes)
        let c = try db.collection(collection)
        let bar = ProgressReporter(label: "dedup \(collection)")
        let started = ProcessInfo.processInfo.systemUptime
        bar.start()
        let report: NearDuplicateReport
        do {
            report = try c.nearDuplicates(threshold: threshold, filter: filter, clustering: clustering, exact: exact,
                                          allowUnknownFields: allowUnknownFields) { p in
                bar.update(ImportProgress(rowsRead: p.done, imported: p.done, skipped: 0, bytesRead: p.done, totalBytes: max(p.total, 1),
                                          elapsed: ProcessInfo.processInfo.systemUptime - started))
            }
        } catch {
            bar.finish(rows: 0, skipped: 0, seconds: 0, failed: true)
            throw error
        }
        bar.finish(rows: report.documents, skipped: 0, seconds: ProcessInfo.processInfo.systemUptime - started)
        if let output { try writeClusters(report.clusters, to: output) }
        let deletions = try keep.map { try c.deletions(report.clusters, keep: $0) }
        let deleted = try deletions.map { d in yes ? try c.apply(d) : 0 }
        if context.json {
            struct Output: Encodable {
                let report: NearDuplicateReport
                let deletions: [NearDuplicateDeletion]?
                let deleted: Int?
                let dryRun: Bool?
            }
            try context.printJSON(Output(report: report, deletions: deletions, deleted: deleted, dryRun: keep.map { _ in !yes }))
            return
        }
        let scoreWord = c.info.metric == .l2 ? "distance" : "score"
        context.line("\(report.pairs.count) pair(s) at \(scoreWord) \(scoreWord == "score" ? ">=" : "<=") \(threshold) among \(report.documents) document(s), in \(report.clusters.count) cluster(s) (\(report.clustering.rawValue))")
        if report.truncatedDocuments > 0 {
            context.line("note: \(report.truncatedDocuments) document(s) have more than \(Limits.maxK) others inside the threshold; only their closest \(Limits.maxK) were taken")
        }
        for (i, cluster) in report.clusters.enumerated() {
            context.line()
            context.line("cluster \(i + 1): \(cluster.members.count) documents, representative \(cluster.representative)")
            for p in cluster.pairs { context.line(String(format: "  %@  %@  %.4f", p.a, p.b, p.score)) }
        }
        guard let deletions else { return }
        context.line()
        let total = deletions.reduce(0) { $0 + $1.delete.count }
        context.line(yes ? "Deleting \(total) document(s), keeping one per cluster (--keep \(keep!)):"
                         : "Dry run: --delete --yes would delete \(total) document(s), keeping one per cluster (--keep \(keep!)):")
        for d in deletions { context.line("  keep \(d.keep); delete \(d.delete.joined(separator: ", "))") }
        if let deleted, yes { context.line("Deleted \(deleted) document(s) in \(deletions.count) atomic batch(es), one per cluster") }
        else { context.line("Nothing was deleted; add --yes to delete them.") }
    }

    /// The clusters as JSON lines, written to a new file.
    private func writeClusters(_ clusters: [NearDuplicateCluster], to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var data = Data()
        for c in clusters {
            data.append(try encoder.encode(c))
            data.append(0x0A)
        }
        guard FileManager.default.createFile(atPath: path, contents: data) else { throw CLIError("cannot write \(path)") }
    }
}

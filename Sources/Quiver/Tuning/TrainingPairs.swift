import Foundation

/// One line of a pairs file: a query, the ids of its relevant documents, and optionally ids of
/// documents known not to be relevant.
public struct TrainingPair: Sendable, Equatable {
    public var query: String
    public var positives: [String]
    public var negatives: [String]
    /// The 1-based line of the file it came from (0 when given in code).
    public var line: Int

    public init(query: String, positives: [String], negatives: [String] = [], line: Int = 0) {
        self.query = query
        self.positives = positives
        self.negatives = negatives
        self.line = line
    }
}

/// What to do with bad lines of a pairs or queries file (malformed JSON, an empty query, unknown
/// document ids).
public enum BadLinePolicy: String, Sendable, Codable {
    /// Refuse the whole file, listing the bad lines (nothing is trained or stored).
    case stop
    /// Train on the good lines; the report lists the bad ones.
    case skip
}

/// JSON Lines of training data: `{"query": "...", "positive": "<id>" | ["<id>", ...], "negative":
/// [optional ids]}` (pairs), or `{"query": "..."}` (queries, for distillation). Blank lines are
/// passed over.
enum TrainingFile {
    /// Every line of `path` as a pair (`labels`) or a query, with `file:line: reason` for each bad line.
    static func read(_ path: String, labels: Bool) throws -> (pairs: [TrainingPair], bad: [BadLine]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw QuiverError.invalidArgument("cannot read \(labels ? "pairs" : "queries") file \(path)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw QuiverError.badInput(file: path, line: 1, reason: "the file is not UTF-8")
        }
        var pairs: [TrainingPair] = [], bad: [BadLine] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            do {
                pairs.append(try parse(line, labels: labels, line: i + 1))
            } catch let reason as LineError {
                bad.append(BadLine(line: i + 1, message: "\(path):\(i + 1): \(reason.text)"))
            }
        }
        return (pairs, bad)
    }

    struct LineError: Error { var text: String }

    /// A bad line and its `file:line: reason` message.
    struct BadLine {
        var line: Int
        var message: String
    }

    static func parse(_ line: String, labels: Bool, line number: Int) throws -> TrainingPair {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)), let o = object as? [String: Any] else {
            throw LineError(text: "not a JSON object")
        }
        guard let query = o["query"] as? String else { throw LineError(text: "no \"query\" string") }
        guard !query.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw LineError(text: "the query is empty") }
        func ids(_ key: String) throws -> [String]? {
            guard let v = o[key] else { return nil }
            if let s = v as? String { return [s] }
            if let a = v as? [Any], a.allSatisfy({ $0 is String }) { return a as? [String] }
            throw LineError(text: "\"\(key)\" must be a document id or a list of ids")
        }
        let positives = try ids("positive") ?? []
        if labels && positives.isEmpty { throw LineError(text: "no \"positive\" document id") }
        if positives.contains(where: \.isEmpty) { throw LineError(text: "an empty document id in \"positive\"") }
        return TrainingPair(query: query, positives: positives, negatives: try ids("negative") ?? [], line: number)
    }
}

import Foundation
import Quiver

/// Documents read from an input, each with the line it starts on.
struct InputDocuments {
    let name: String
    var documents: [Document] = []
    var lines: [Int] = []
}

/// Reads documents from JSON Lines (one object per line) or from one JSON array, and reports a
/// malformed document by its line number.
func readDocuments(from source: String?) throws -> InputDocuments {
    let data: Data
    let name: String
    if let path = source, path != "-" {
        guard let d = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read \(MessageText.path(path))") }
        data = d
        name = MessageText.path(path)
    } else {
        data = FileHandle.standardInput.readDataToEndOfFile()
        name = "standard input"
    }
    var input = InputDocuments(name: name)
    let bytes = [UInt8](data)
    func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
    if bytes.first(where: { !isSpace($0) }) == UInt8(ascii: "[") {
        // Invalid UTF-8 is refused as in a JSON Lines input (and by `quiver import`), by line.
        if let offset = Document.invalidUTF8Offset(bytes) {
            let line = bytes[..<offset].reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
            throw CLIError("\(name), line \(line): invalid UTF-8 at byte \(offset + 1) of the input (0x\(String(bytes[offset], radix: 16, uppercase: true)))")
        }
        do { input.documents = try Document.documents(jsonArray: data) } catch let e as QuiverError {
            throw CLIError("\(name), \(e.description)")
        }
        input.lines = Array(repeating: 1, count: input.documents.count)
        return input
    }
    // JSON Lines, split on the bytes (a line is decoded by Document(json:), which refuses invalid
    // UTF-8 as the importer does).
    for (i, line) in bytes.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
        if line.allSatisfy(isSpace) { continue }
        do { input.documents.append(try Document(json: Data(line))) } catch let e as QuiverError {
            throw CLIError("\(name), line \(i + 1): \(e.description)")
        }
        input.lines.append(i + 1)
    }
    return input
}

/// Parses a `--filter` value: the JSON form when it starts with `{`, else the text form; an error
/// shows the position with a caret.
func parseFilterOption(_ text: String, command: String) throws -> Filter {
    do {
        return text.trimmingCharacters(in: .whitespaces).hasPrefix("{") ? try Filter(json: text) : try Filter(text: text)
    } catch {
        throw UsageError(message: "invalid filter: \(error.description)\n\(error.caretDiagnostic(source: text))", command: command)
    }
}

/// Parses a vector given on the command line: `[0.1, 0.2]` or `0.1,0.2`. Anything else (an
/// unclosed bracket, an empty component, a stray bracket) is a usage error.
func parseVector(_ s: String) throws -> [Float] {
    var body = Substring(s.trimmingCharacters(in: .whitespacesAndNewlines))
    let opens = body.hasPrefix("["), closes = body.hasSuffix("]")
    if opens != closes || (opens && body.count < 2) {
        throw UsageError(message: "the vector \(MessageText.quoted(s)) \(opens ? "has no closing ']'" : "has no opening '['"); give '[0.1, 0.2, ...]' or '0.1,0.2,...'", command: "search")
    }
    if opens { body = body.dropFirst().dropLast() }
    if body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw UsageError(message: "the vector is empty", command: "search") }
    return try body.split(separator: ",", omittingEmptySubsequences: false).enumerated().map { i, part in
        let text = part.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw UsageError(message: "component \(i + 1) of the vector \(MessageText.quoted(s)) is empty", command: "search") }
        guard let f = Float(text) else {
            throw UsageError(message: "component \(i + 1) of the vector, \(MessageText.quoted(text)), is not a number", command: "search")
        }
        return f
    }
}

struct PutCommand: CLICommand {
    static let name = "put"
    static let abstract = "Write JSON documents (JSON Lines or one JSON array) from a file or standard input."
    static let positionals = [
        PositionalSpec(name: "collection", help: "The collection to write to."),
        PositionalSpec(name: "file", help: "The input file; '-' or nothing reads standard input.", optional: true),
    ]
    static let options = [
        OptionSpec(name: "insert", help: "Fail on an id that already exists (default: replace it)."),
        OptionSpec(name: "batch-size", value: "<n>", help: "Documents per write (default 1000); each batch is atomic."),
    ]
    static let discussion = """
    Each document is {"id": "...", "text": "...", "metadata": {...}, "vector": [...]}; only id is
    required, and vector is required unless the collection has a text encoder. Metadata values are
    strings, numbers, booleans, null or lists of strings. The whole input is checked before anything
    is written; an error names the line.
    """
    static let examples = [
        #"echo '{"id":"a","vector":[0.1,0.2,0.3]}' | quiver put points"#,
        "quiver put papers papers.jsonl --batch-size 500",
    ]

    let collection: String
    let file: String?
    let insert: Bool
    let batchSize: Int

    init(_ a: ParsedArguments) throws {
        collection = a.positional(0)!
        file = a.positional(1)
        insert = a.flag("insert")
        batchSize = try a.int("batch-size", default: 1000, range: 1...100_000)
    }

    func run(_ context: CommandContext) throws {
        let db = try context.openDatabase()
        let c = try db.collection(collection)
        let input = try readDocuments(from: file)
        let documents = input.documents
        var written = 0
        var start = 0
        while start < documents.count {
            let batch = Array(documents[start..<min(start + batchSize, documents.count)])
            do {
                written += insert ? try c.insert(batch) : try c.upsert(batch)
            } catch let e as QuiverError {
                guard let i = e.recordIndex else { throw e }
                let place = input.lines[start + i] > 1 || documents.count == 1 ? "line \(input.lines[start + i])" : "document \(start + i + 1)"
                throw CLIError("\(input.name), \(place): \(e.description)" + (written > 0 ? " (the \(written) documents before this batch were written)" : ""))
            }
            start += batch.count
        }
        if context.json { try context.printJSON(["written": written]) } else {
            context.line("Wrote \(written) document(s) to '\(collection)'")
        }
    }
}

struct GetCommand: CLICommand {
    static let name = "get"
    static let abstract = "Show documents by id."
    static let positionals = [
        PositionalSpec(name: "collection", help: "The collection."),
        PositionalSpec(name: "id", help: "One or more document ids.", repeating: true),
    ]
    static let options = [OptionSpec(name: "vector", help: "Also show the vectors (always included with --json).")]
    static let examples = ["quiver get papers 4983 5836", "quiver get papers 4983 --json"]

    let collection: String
    let ids: [String]
    let showVector: Bool
    init(_ a: ParsedArguments) throws {
        collection = a.positional(0)!
        ids = Array(a.positionals.dropFirst())
        if ids.isEmpty { throw UsageError(message: "missing argument <id>", command: Self.name) }
        showVector = a.flag("vector")
    }

    func run(_ context: CommandContext) throws {
        let db = try context.openDatabase(readOnly: true)
        let docs = try db.collection(collection).get(ids: ids)
        let missing = zip(ids, docs).filter { $0.1 == nil }.map(\.0)
        if context.json {
            try context.printJSON(docs.compactMap { $0 })
        } else {
            for d in docs.compactMap({ $0 }) {
                context.line("id:       \(d.id)")
                if let t = d.text { context.line("text:     " + indentedText(t, indent: 10)) }
                context.line("metadata: \(formatMetadata(d.metadata))")
                if showVector, let v = d.vector { context.line("vector:   \(v)") }
                context.line()
            }
        }
        if !missing.isEmpty { throw CLIError("not found in \(MessageText.quoted(collection)): \(missing.map { MessageText.quoted($0) }.joined(separator: ", "))") }
    }
}

struct DeleteCommand: CLICommand {
    static let name = "delete"
    static let abstract = "Delete documents by id or by filter."
    static let positionals = [
        PositionalSpec(name: "collection", help: "The collection."),
        PositionalSpec(name: "id", help: "Document ids (or use --filter).", optional: true, repeating: true),
    ]
    static let options = [
        OptionSpec(name: "filter", value: "<filter>", help: "Delete every document whose metadata matches (text or JSON form)."),
        OptionSpec(name: "yes", short: "y", help: "Confirm a delete by filter of more than 100 documents."),
        OptionSpec(name: "allow-unknown-fields", help: "Let the filter name fields no document has (by default an error listing the fields)."),
    ]
    static let discussion = "A delete by filter first counts what matches; above 100 documents it needs --yes, and prints the count either way."
    static let examples = ["quiver delete papers 4983 5836", #"quiver delete papers --filter 'year < 2000' --yes"#]

    let collection: String
    let ids: [String]
    let filter: (String, Filter)?
    let confirmed: Bool
    let allowUnknownFields: Bool

    init(_ a: ParsedArguments) throws {
        collection = a.positional(0)!
        ids = Array(a.positionals.dropFirst())
        confirmed = a.flag("yes")
        allowUnknownFields = a.flag("allow-unknown-fields")
        filter = try a.value("filter").map { ($0, try parseFilterOption($0, command: Self.name)) }
        if ids.isEmpty == (filter == nil) { throw UsageError(message: "give document ids or --filter (not both)", command: Self.name) }
    }

    func run(_ context: CommandContext) throws {
        let db = try context.openDatabase()
        let c = try db.collection(collection)
        let n: Int
        if let (text, f) = filter {
            let matching = try c.ids(matching: f, allowUnknownFields: allowUnknownFields)
            if matching.count > 100 && !confirmed {
                throw CLIError("the filter \(text) matches \(matching.count) documents of \(MessageText.quoted(collection)); add --yes to delete them")
            }
            n = try c.delete(ids: matching)
        } else {
            n = try c.delete(ids: ids)
        }
        if context.json { try context.printJSON(["deleted": n]) } else { context.line("Deleted \(n) document(s) from '\(collection)'") }
    }
}

struct SearchCommand: CLICommand {
    static let name = "search"
    static let abstract = "Find the nearest documents to a query vector or text."
    static let positionals = [PositionalSpec(name: "collection", help: "The collection to search.")]
    static let options = [
        OptionSpec(name: "vector", value: "<floats>", help: "The query vector: '[0.1, 0.2, ...]' or '0.1,0.2,...'."),
        OptionSpec(name: "text", value: "<query>", help: "The query text, embedded by the collection's encoder (query tower)."),
        OptionSpec(name: "filter", value: "<filter>", help: "Only documents whose metadata matches: 'year >= 2020 and tags in (\"a\", \"b\")' or JSON {\"year\": {\"$gte\": 2020}}."),
        OptionSpec(name: "mode", value: "<mode>", help: "With --text: dense (default), lexical (BM25) or hybrid (both, fused)."),
        OptionSpec(name: "fusion", value: "<fusion>", help: "Hybrid: rrf or rrf:<k> (reciprocal rank), weighted:<dense weight 0..1> (min-max) or distribution:<dense weight> (default: the collection's tuned fusion, else rrf k 60)."),
        OptionSpec(name: "adapter", value: "<name|none>", help: "Text queries: the query adapter to apply (default: the collection's tuned one, if any; none for the query tower alone)."),
        OptionSpec(name: "explain", help: "Also show how the search ran: the strategy, and how many documents the filter allows."),
        OptionSpec(name: "exact", help: "Scan every vector instead of using the index (slow; the exact answer)."),
        OptionSpec(name: "ef", value: "<n>", help: "HNSW candidate list size for this search (default: the collection's)."),
        OptionSpec(name: "nprobe", value: "<n>", help: "IVF-PQ lists probed by this search (default: the collection's; a filter widens it)."),
        OptionSpec(name: "rerank", value: "<n>", help: "IVF-PQ candidates re-ranked with full vectors by this search (default: the collection's)."),
        OptionSpec(name: "k", short: "k", value: "<n>", help: "How many results (default 10; with --min-score or --max-distance, an optional cap)."),
        OptionSpec(name: "min-score", value: "<s>", help: "Range search (cosine, dot): every document scoring at least s, best first (at most 10000; -k takes the best k)."),
        OptionSpec(name: "max-distance", value: "<d>", help: "Range search (l2): every document within Euclidean distance d, closest first (at most 10000; -k takes the best k)."),
        OptionSpec(name: "with-text", help: "Show each hit's text."),
        OptionSpec(name: "allow-unknown-fields", help: "Let the filter name fields no document has, or compare a field with a type it never holds (by default an error listing the fields)."),
        // Diversity and grouping.
        OptionSpec(name: "diversity", value: "<0..1>", help: "Pick the k by maximal marginal relevance: 0 is pure relevance (the plain ranking), 1 pure diversity; scores stay the plain search's."),
        OptionSpec(name: "diversity-candidates", value: "<n>", help: "With --diversity: the candidates MMR picks from (default 5 x k)."),
        OptionSpec(name: "group-by", value: "<field>", help: "Up to k groups by this metadata field's value, each with its best --group-size hits; documents without a string, integer or boolean value there are skipped, a list puts a document in a group per string."),
        OptionSpec(name: "group-size", value: "<n>", help: "With --group-by: the hits per group (default 1)."),
    ]
    static let discussion = """
    Scores are cosine similarity or dot product (higher is closer), or Euclidean distance for l2
    (lower is closer). A filter returns k results whenever at least k documents match. Text filters:
    =, !=, <, <=, >, >=, in (...), not in (...), exists(field), and, or, not, parentheses; strings in
    double quotes. A string-list field matches when any element does.
    A range search (--min-score, --max-distance) returns every document inside the bound: -k caps it,
    and without -k more than 10000 inside is an error saying so; --exact gives the exact answer.
    """
    static let examples = [
        #"quiver search colors --vector "[0.9, 0.1, 0.1]" -k 3"#,
        #"quiver search colors --vector "[0.9, 0.1, 0.1]" --filter 'family = "red" or family = "orange"' --explain"#,
        #"quiver search papers --text "vitamin D and bone density" -k 5 --with-text"#,
        #"quiver search papers --text "vitamin D and bone density" --mode hybrid --filter "year >= 2015""#,
        "quiver search points --vector 1,0,0 --json",
        #"quiver search papers --text "vitamin D" --diversity 0.5 -k 5"#,
        #"quiver search papers --text "vitamin D" --group-by venue --group-size 2 -k 3"#,
        #"quiver search colors --vector "[0.9, 0.1, 0.1]" --min-score 0.9"#,
    ]

    let collection: String
    let vector: [Float]?
    let text: String?
    /// nil: a range search without a cap.
    let k: Int?
    let withText: Bool
    let explain: Bool
    var options = SearchOptions()
    var mode = SearchMode.dense
    var fusion: Fusion?

    init(_ a: ParsedArguments) throws {
        collection = a.positional(0)!
        explain = a.flag("explain")
        if let m = a.value("mode") {
            guard let mode = SearchMode(rawValue: m) else { throw UsageError(message: "--mode must be dense, lexical or hybrid, not \(MessageText.quoted(m))", command: Self.name) }
            self.mode = mode
        }
        if let f = a.value("fusion") {
            guard let parsed = parseFusion(f) else {
                throw UsageError(message: "--fusion must be rrf, rrf:<k>, weighted:<0..1> or distribution:<0..1>, not \(MessageText.quoted(f))", command: Self.name)
            }
            fusion = parsed
        }
        if let name = a.value("adapter") { options.adapter = name == "none" ? .none : .named(name) }
        options.exact = a.flag("exact")
        if a.value("ef") != nil { options.efSearch = try a.int("ef", default: 64, range: 1...(1 << 20)) }
        if a.value("nprobe") != nil { options.nprobe = try a.int("nprobe", default: 32, range: 1...(1 << 20)) }
        if a.value("rerank") != nil { options.rerank = try a.int("rerank", default: 100, range: 0...(1 << 24)) }
        options.filter = try a.value("filter").map { try parseFilterOption($0, command: Self.name) }
        options.allowUnknownFields = a.flag("allow-unknown-fields")
        text = a.value("text")
        vector = try a.value("vector").map(parseVector)
        guard (vector == nil) != (text == nil) else {
            throw UsageError(message: "give exactly one of --vector and --text", command: Self.name)
        }
        if mode != .dense && text == nil { throw UsageError(message: "--mode \(mode.rawValue) needs --text", command: Self.name) }
        options.minScore = try a.finiteFloat("min-score")
        options.maxDistance = try a.finiteFloat("max-distance")
        let ranged = options.minScore != nil || options.maxDistance != nil
        k = ranged && a.value("k") == nil ? nil : try a.int("k", default: 10, range: 1...10_000)
        withText = a.flag("with-text")
        try parseShape(a)
    }

    /// --diversity, --diversity-candidates, --group-by and --group-size.
    private mutating func parseShape(_ a: ParsedArguments) throws {
        if let raw = a.value("diversity") {
            guard let d = Double(raw), d.isFinite, (0...1).contains(d) else {
                throw UsageError(message: "--diversity must be a number between 0 (pure relevance) and 1 (pure diversity), not \(MessageText.quoted(raw))", command: Self.name)
            }
            options.diversity = d
        }
        if a.value("diversity-candidates") != nil {
            guard options.diversity != nil else { throw UsageError(message: "--diversity-candidates needs --diversity", command: Self.name) }
            options.diversityCandidates = try a.int("diversity-candidates", default: 0, range: (k ?? 10)...10_000)
        }
        options.groupBy = a.value("group-by")
        if a.value("group-size") != nil {
            guard options.groupBy != nil else { throw UsageError(message: "--group-size needs --group-by", command: Self.name) }
            options.groupSize = try a.int("group-size", default: 1, range: 1...10_000)
        }
        if options.groupBy != nil && options.diversity != nil {
            throw UsageError(message: "--diversity and --group-by do not combine (a grouped search spreads its hits over the field's values instead)", command: Self.name)
        }
        if (options.minScore != nil || options.maxDistance != nil) && (options.groupBy != nil || options.diversity != nil) {
            throw UsageError(message: "--min-score / --max-distance (every document inside a bound) do not combine with --diversity or --group-by", command: Self.name)
        }
    }

    func run(_ context: CommandContext) throws {
        let db = try context.openDatabase(readOnly: true)
        let c = try db.collection(collection)
        var options = self.options
        options.includeText = withText || context.json
        if options.groupBy != nil { return try runGroups(c, k: k ?? 10, options: options, context: context) }
        let (hits, plan) = try k.map { k in
            try text.map { try c.explain(text: $0, k: k, mode: mode, fusion: fusion, options: options) } ?? c.explain(vector: vector!, k: k, options: options)
        } ?? text.map { try c.explain(text: $0, mode: mode, options: options) } ?? c.explain(vector: vector!, options: options)
        if context.json && explain {
            struct Output: Encodable { let results: [SearchResult]; let plan: SearchPlan }
            try context.printJSON(Output(results: hits, plan: plan))
            return
        }
        printHits(hits, context: context, withText: withText)
        if explain { printPlan(plan, context: context) }
    }

    /// A grouped search: each group's value and hits (JSON: `[{"value": ..., "hits": [...]}]`).
    private func runGroups(_ c: Collection, k: Int, options: SearchOptions, context: CommandContext) throws {
        let (groups, plan) = try text.map { try c.explainGroups(text: $0, k: k, mode: mode, fusion: fusion, options: options) }
            ?? c.explainGroups(vector: vector!, k: k, options: options)
        if context.json {
            struct Output: Encodable { let groups: [SearchGroup]; let plan: SearchPlan }
            if explain { try context.printJSON(Output(groups: groups, plan: plan)) } else { try context.printJSON(groups) }
            return
        }
        if groups.isEmpty { context.line("No groups") }
        for (i, g) in groups.enumerated() {
            if i > 0 { context.line() }
            context.line("\(options.groupBy!) = \(g.value) (\(g.hits.count) hit(s))")
            printHits(g.hits, context: context, withText: withText)
        }
        if explain { printPlan(plan, context: context) }
    }

    private func printPlan(_ plan: SearchPlan, context: CommandContext) {
        context.line()
        let indexes = plan.indexesUsed.isEmpty ? "no payload index" : "payload indexes " + plan.indexesUsed.joined(separator: ", ")
        context.line("plan: \(plan.strategy) (\(plan.reason)); estimate \(plan.estimate) from \(indexes); \(plan.allowed) of \(plan.documents) documents allowed; \(plan.returned) returned")
        for f in plan.fields { context.line("field \(f.summary)") }
        if text != nil { context.line("adapter: \(plan.adapter ?? "none")") }
        if let f = plan.fusion { context.line("fusion: \(f)") }
        if let d = plan.diversity { context.line("diversity: \(d)") }
        if let g = plan.grouping { context.line("grouping: \(g)") }
    }
}

struct EmbedCommand: CLICommand {
    static let name = "embed"
    static let abstract = "Print the vector a text encoder makes of a text."
    static let positionals = [PositionalSpec(name: "text", help: "The text to embed.")]
    static let options = [
        OptionSpec(name: "encoder", value: "<name>", help: "The encoder (default all-MiniLM-L6-v2; all-MiniLM-L6-v2:int8 for int8)."),
        OptionSpec(name: "document", help: "Use the document tower instead of the query tower."),
    ]
    static let discussion = "The model is read from $QUIVER_MODELS (default ~/.local/share/quiver/models); tools/install-model installs the default one. Needs no database."
    static let examples = [#"quiver embed "some text""#, #"quiver embed "a passage" --document --json"#]

    let text: String
    let encoder: String
    let document: Bool
    init(_ a: ParsedArguments) {
        text = a.positional(0)!
        encoder = a.value("encoder") ?? EncoderRegistry.defaultEncoderName
        document = a.flag("document")
    }

    func run(_ context: CommandContext) throws {
        let e: any TextEncoder
        let m: Matrix
        do {
            e = try EncoderRegistry.shared.encoder(named: encoder)
            m = document ? try e.encode(documents: [text]) : try e.encode(queries: [text])
        } catch let error as CustomStringConvertible where !(error is QuiverError) {
            throw CLIError("encoder \(MessageText.quoted(encoder)): \(error)")
        }
        let v = m[row: 0]
        if context.json { try context.printJSON(v); return }
        context.line("[" + v.map { String(format: "%.6f", $0) }.joined(separator: ", ") + "]")
        context.line("(\(v.count)-d, \(e.identifier))")
    }
}

func printHits(_ hits: [SearchResult], context: CommandContext, withText: Bool) {
    if context.json { try? context.printJSON(hits); return }
    if hits.isEmpty { context.line("No results"); return }
    var rows: [[String]] = []
    for (i, h) in hits.enumerated() {
        var row = [String(i + 1), h.id, String(format: "%.4f", h.score), formatMetadata(h.metadata)]
        if withText { row.append(String((h.text ?? "").prefix(80))) }
        rows.append(row)
    }
    context.table(withText ? ["#", "ID", "SCORE", "METADATA", "TEXT"] : ["#", "ID", "SCORE", "METADATA"], rows)
}

func formatMetadata(_ m: Metadata) -> String {
    m.isEmpty ? "{}" : "{" + m.keys.sorted().map { "\($0): \(m[$0]!)" }.joined(separator: ", ") + "}"
}

/// A document's text for a labelled column: lines after the first are indented to the column (so
/// that multi-line text stays readable under its label), and control characters other than line
/// breaks and tabs are escaped.
func indentedText(_ text: String, indent: Int) -> String {
    let pad = String(repeating: " ", count: indent)
    let lines = text.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
    return lines.map { MessageText.escapingControls($0.replacingOccurrences(of: "\t", with: "    ")) }.joined(separator: "\n" + pad)
}

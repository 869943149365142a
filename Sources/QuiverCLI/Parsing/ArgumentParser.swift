/// A small command-line parser in the shape of swift-argument-parser (no packages can be fetched):
/// each command declares its positionals and options; the parser checks them, and `--help` on any
/// command prints its usage, options and examples.

import Quiver

/// One option a command accepts.
struct OptionSpec {
    /// The long name, without dashes (`dimension` for `--dimension`).
    let name: String
    /// A one-letter short name (`k` for `-k`), if any.
    var short: Character? = nil
    /// The placeholder of the value (`<n>`), or nil for a flag that takes none.
    var value: String? = nil
    /// One line of help.
    let help: String
}

/// One positional argument.
struct PositionalSpec {
    let name: String
    let help: String
    var optional = false
    /// Takes every remaining argument.
    var repeating = false
}

/// A usage error: wrong options or arguments. Exit code 2.
struct UsageError: Error, CustomStringConvertible {
    let message: String
    let command: String
    var description: String { message }
}

/// The parsed arguments of one command.
struct ParsedArguments {
    var positionals: [String] = []
    var values: [String: [String]] = [:]
    var flags: Set<String> = []
    let command: String

    func flag(_ name: String) -> Bool { flags.contains(name) }
    func value(_ name: String) -> String? { values[name]?.last }
    func positional(_ i: Int) -> String? { i < positionals.count ? positionals[i] : nil }

    /// An integer option within bounds, or its default.
    func int(_ name: String, default def: Int, range: ClosedRange<Int>) throws -> Int {
        guard let raw = value(name) else { return def }
        guard let v = Int(raw), range.contains(v) else {
            throw UsageError(message: "--\(name) must be an integer between \(range.lowerBound) and \(range.upperBound), not \(MessageText.quoted(raw))", command: command)
        }
        return v
    }

    /// A finite number option (nil when absent).
    func finiteFloat(_ name: String) throws -> Float? {
        guard let raw = value(name) else { return nil }
        guard let v = Float(raw), v.isFinite else {
            throw UsageError(message: "--\(name) must be a finite number, not \(MessageText.quoted(raw))", command: command)
        }
        return v
    }
}

/// What every command declares.
protocol CLICommand {
    static var name: String { get }
    /// One line: what the command does.
    static var abstract: String { get }
    static var positionals: [PositionalSpec] { get }
    static var options: [OptionSpec] { get }
    /// Worked examples, one per line.
    static var examples: [String] { get }
    /// Optional longer text after the options.
    static var discussion: String { get }
    init(_ arguments: ParsedArguments) throws
    func run(_ context: CommandContext) throws
}

extension CLICommand {
    static var discussion: String { "" }

    static var allOptions: [OptionSpec] {
        options + [
            OptionSpec(name: "db", short: "d", value: "<dir>", help: "The database directory (default: $QUIVER_DB, else ./quiver.db)."),
            OptionSpec(name: "json", help: "Print machine-readable JSON instead of text."),
            OptionSpec(name: "help", short: "h", help: "Show this help."),
        ]
    }

    static var usageLine: String {
        var parts = ["quiver", name]
        for p in positionals {
            let n = "<\(p.name)>" + (p.repeating ? "..." : "")
            parts.append(p.optional ? "[\(n)]" : n)
        }
        parts.append("[options]")
        return parts.joined(separator: " ")
    }

    static var help: String {
        var out = "\(abstract)\n\nUSAGE: \(usageLine)\n"
        if !positionals.isEmpty {
            out += "\nARGUMENTS:\n"
            for p in positionals { out += pad("  <\(p.name)>", 28) + p.help + "\n" }
        }
        out += "\nOPTIONS:\n"
        for o in allOptions {
            var left = "  "
            if let s = o.short { left += "-\(s), " }
            left += "--\(o.name)"
            if let v = o.value { left += " \(v)" }
            out += pad(left, 28) + o.help + "\n"
        }
        if !discussion.isEmpty { out += "\n" + discussion + "\n" }
        if !examples.isEmpty {
            out += "\nEXAMPLES:\n"
            for e in examples { out += "  \(e)\n" }
        }
        return out
    }

    /// Parses `args` (the words after the command name).
    static func parse(_ args: [String]) throws -> ParsedArguments {
        var parsed = ParsedArguments(command: name)
        let specs = allOptions
        var i = 0
        var onlyPositionals = false
        while i < args.count {
            let arg = args[i]
            i += 1
            if onlyPositionals || arg == "-" || !arg.hasPrefix("-") || Double(arg) != nil {
                parsed.positionals.append(arg)
                continue
            }
            if arg == "--" { onlyPositionals = true; continue }
            var key = arg
            var inline: String?
            if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
                key = String(arg[..<eq])
                inline = String(arg[arg.index(after: eq)...])
            }
            let spec: OptionSpec?
            if key.hasPrefix("--") {
                spec = specs.first { "--" + $0.name == key }
            } else {
                spec = key.count == 2 ? specs.first { $0.short.map { "-\($0)" } == key } : nil
            }
            guard let s = spec else {
                let known = specs.map { "--" + $0.name } + ["--db", "--json", "--help"]
                let hint = key.hasPrefix("--") ? MessageText.closest(to: key, among: known).map { "did you mean '\($0)'? " } ?? "" : ""
                throw UsageError(message: "unknown option \(MessageText.quoted(key)) for 'quiver \(name)' (\(hint)see 'quiver \(name) --help')", command: name)
            }
            if s.value != nil {
                let v: String
                if let inline = inline { v = inline } else {
                    guard i < args.count else { throw UsageError(message: "option --\(s.name) needs a value \(s.value!)", command: name) }
                    v = args[i]
                    i += 1
                }
                parsed.values[s.name, default: []].append(v)
            } else {
                if inline != nil { throw UsageError(message: "option --\(s.name) takes no value", command: name) }
                parsed.flags.insert(s.name)
            }
        }
        if parsed.flag("help") { return parsed }
        let required = positionals.filter { !$0.optional }.count
        let repeating = positionals.contains { $0.repeating }
        if parsed.positionals.count < required {
            let missing = positionals[parsed.positionals.count]
            throw UsageError(message: "missing argument <\(missing.name)> (usage: \(usageLine))", command: name)
        }
        if !repeating && parsed.positionals.count > positionals.count {
            throw UsageError(message: "unexpected argument \(MessageText.quoted(parsed.positionals[positionals.count])) (usage: \(usageLine))", command: name)
        }
        return parsed
    }
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s + "  " : s + String(repeating: " ", count: width - s.count)
}

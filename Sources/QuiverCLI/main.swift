// quiver: the command-line tool of the Quiver vector database. It uses only the public `Quiver`
// API, exactly as a host app would. Exit codes: 0 success, 1 an error while running, 2 a usage error.
import Foundation
import Quiver

let commands: [any CLICommand.Type] = [
    InitCommand.self, CreateCommand.self, CollectionsCommand.self, DropCommand.self, PutCommand.self, IndexCommand.self, ImportCommand.self, ExportCommand.self, FilterCommand.self,
    GetCommand.self, DeleteCommand.self, SearchCommand.self, DedupCommand.self, EmbedCommand.self, TuneCommand.self, AdaptersCommand.self, StatsCommand.self, CompactCommand.self, VerifyCommand.self, RepairCommand.self, BackupCommand.self, RestoreCommand.self, DemoCommand.self,
]

@MainActor func topLevelHelp() -> String {
    var out = """
    quiver: an embedded vector database, from the command line.

    USAGE: quiver <command> [arguments] [options]

    COMMANDS:

    """
    for c in commands { out += pad("  \(c.name)", 16) + c.abstract + "\n" }
    out += """

    Every command takes --db <dir> (default: $QUIVER_DB, else ./quiver.db), --json and --help.
    Run 'quiver <command> --help' for a command's options and examples.
    Exit codes: 0 success, 1 error, 2 usage error.

    """
    return out
}

/// Prints an error and exits. Control characters are escaped here once more, whatever the message
/// came from (a name in it could otherwise send escape sequences to the terminal); its own line
/// breaks (a filter's caret diagnostic) are kept.
func fail(_ message: String, code: Int32) -> Never {
    FileHandle.standardError.write(Data("quiver: error: \(MessageText.escapingControls(message, keepingNewlines: true))\n".utf8))
    exit(code)
}

var arguments = Array(CommandLine.arguments.dropFirst())
if arguments.isEmpty || ["--help", "-h", "help"].contains(arguments[0]) {
    if arguments.count >= 2, let c = commands.first(where: { $0.name == arguments[1] }) {
        print(c.help, terminator: "")
    } else {
        print(topLevelHelp(), terminator: "")
    }
    exit(0)
}
if arguments[0] == "--version" {
    print("quiver 0.1.0 (database format \(Database.formatVersion))")
    exit(0)
}
let name = arguments.removeFirst()
guard let command = commands.first(where: { $0.name == name }) else {
    let hint = MessageText.closest(to: name, among: commands.map { $0.name }).map { "did you mean '\($0)'? " } ?? ""
    fail("unknown command \(MessageText.quoted(name)) (\(hint)run 'quiver --help' for the list)", code: 2)
}
do {
    let parsed = try command.parse(arguments)
    if parsed.flag("help") {
        print(command.help, terminator: "")
        exit(0)
    }
    let dbPath = parsed.value("db") ?? ProcessInfo.processInfo.environment["QUIVER_DB"] ?? "quiver.db"
    let context = CommandContext(json: parsed.flag("json"), databasePath: dbPath)
    let instance = try command.init(parsed)
    try instance.run(context)
} catch let e as UsageError {
    fail(e.message, code: 2)
} catch let e as QuiverError {
    fail(e.description, code: 1)
} catch let e as CLIError {
    fail(e.message, code: 1)
} catch {
    fail("\(error)", code: 1)
}

import Foundation
import Quiver

/// `quiver filter --to milvus`: a filter translated into another engine's expression language.
struct FilterCommand: CLICommand {
    static let name = "filter"
    static let abstract = "Translate a filter into a Milvus boolean expression with the same meaning."
    static let positionals = [
        PositionalSpec(name: "filter", help: "The filter, in the text form ('year >= 2020 and tags in (\"a\")') or JSON ({\"year\": {\"$gte\": 2020}})."),
    ]
    static let options = [
        OptionSpec(name: "to", value: "<engine>", help: "The target: milvus (the only one)."),
        OptionSpec(name: "collection", short: "c", value: "<name>", help: "Place the fields as an export of this collection would (typed columns, the kinds each field holds)."),
        OptionSpec(name: "schema", value: "<path>", help: "Place the fields as the export with this schema.json (or its directory) did."),
    ]
    static let discussion = """
    The expression selects exactly the documents the filter matches in Quiver, missing keys, nulls,
    lists and int/float comparisons included, for a collection exported with `quiver export --format
    milvus`. Which column a field is in and which kinds of value it holds decide the spelling: give
    --collection or --schema, else every field is taken to be in the JSON column 'metadata' and to hold
    any kind of value. Where Milvus 2.3 cannot say the same thing (a string range over a list, numbers
    beyond 2^53 beside floats), the command fails naming the field and the reason (exit status 1).
    """
    static let examples = [
        "quiver filter --to milvus 'year >= 2020 and lang = \"en\"'",
        "quiver filter --to milvus --collection papers 'not exists(retracted)'",
        "quiver filter --to milvus --schema papers-milvus/schema.json '{\"tags\": {\"$in\": [\"ml\"]}}'",
    ]

    let filter: Filter
    let collection: String?
    let schema: String?

    init(_ a: ParsedArguments) throws {
        guard let to = a.value("to") else { throw UsageError(message: "name the target with --to milvus", command: Self.name) }
        guard to.lowercased() == "milvus" else { throw UsageError(message: "--to \(MessageText.quoted(to)): the only target is milvus", command: Self.name) }
        filter = try parseFilterOption(a.positional(0)!, command: Self.name)
        collection = a.value("collection")
        schema = a.value("schema")
        if collection != nil && schema != nil { throw UsageError(message: "give --collection or --schema, not both", command: Self.name) }
    }

    func run(_ context: CommandContext) throws {
        let mapping: MilvusMapping
        if let collection {
            mapping = try context.openDatabase(readOnly: true).collection(collection).milvusMapping()
        } else if let schema {
            mapping = try Self.readMapping(schema)
        } else {
            mapping = .allJSON
        }
        let expression: String
        do {
            expression = try filter.milvusExpression(mapping: mapping)
        } catch {
            throw CLIError(error.description)
        }
        if context.json { try context.printJSON(["expression": expression]); return }
        context.line(expression)
    }

    /// The mapping recorded in an export's schema.json (`quiver.mapping`).
    static func readMapping(_ path: String) throws -> MilvusMapping {
        var isDirectory: ObjCBool = false
        let file = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue ? path + "/schema.json" : path
        guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
        struct SchemaFile: Decodable {
            struct QuiverPart: Decodable { let mapping: MilvusMapping }
            let quiver: QuiverPart
        }
        do {
            return try JSONDecoder().decode(SchemaFile.self, from: data).quiver.mapping
        } catch {
            throw CLIError("\(file) is not a schema.json written by `quiver export --format milvus` (no quiver.mapping): \(error)")
        }
    }
}

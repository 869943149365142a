import Foundation
import Quiver

struct DemoCommand: CLICommand {
    static let name = "demo"
    static let abstract = "Create a database, load a small bundled sample, and search it."
    static let positionals = [PositionalSpec(name: "dir", help: "Where to create the demo database (default ./quiver-demo.db).", optional: true)]
    static let options: [OptionSpec] = []
    static let discussion = """
    Two bundled samples: 40 named colours as RGB vectors (L2 metric) with their colour family as
    metadata, searched by vector; and 16 short sentences written as text, embedded inside the engine
    by all-MiniLM-L6-v2 and searched by meaning (this part needs the model: tools/setup installs it).
    Running the demo again replaces its collections.
    """
    static let examples = ["quiver demo", "quiver demo /tmp/demo.db"]

    let dir: String?
    init(_ a: ParsedArguments) { dir = a.positional(0) }

    func run(_ context: CommandContext) throws {
        let path = dir ?? "quiver-demo.db"
        let db = try Database(path: path)
        defer { db.close() }
        if (try? db.describe("colors")) != nil { try db.dropCollection("colors") }
        let colors = try db.createCollection("colors", dimension: 3, metric: .l2)
        let documents = DemoSample.colors.map { c in
            Document(id: c.name, text: "\(c.name) is a \(c.family) colour",
                     metadata: ["family": .string(c.family), "hex": .string(c.hex)], vector: c.rgb)
        }
        try colors.upsert(documents)
        let queries: [(String, [Float])] = [
            ("something close to pure red", [1.0, 0.05, 0.05]),
            ("a dark blue-green", [0.0, 0.3, 0.35]),
            ("a pale yellow", [1.0, 1.0, 0.75]),
        ]
        let sentences = try textCollection(db)
        let textQueries = ["a pet sleeping", "how do plants get energy", "money and markets"]
        if context.json {
            var out: [String: [SearchResult]] = [:]
            for (label, v) in queries { out[label] = try colors.search(vector: v, k: 3) }
            if let s = sentences { for q in textQueries { out[q] = try s.search(text: q, k: 3) } }
            try context.printJSON(out)
            return
        }
        context.line("Created \(path) with collection 'colors': \(try colors.count()) documents (3-d RGB vectors, L2)")
        if let teal = try colors.get("teal") {
            context.line("get teal -> vector \(teal.vector ?? []), metadata \(formatMetadata(teal.metadata))")
        }
        for (label, v) in queries {
            context.line()
            context.line("search \(v) (\(label)), k = 3:")
            printHits(try colors.search(vector: v, k: 3), context: context, withText: false)
        }
        context.line()
        if let s = sentences {
            context.line("Collection 'sentences': \(try s.count()) texts embedded on write by all-MiniLM-L6-v2 (384-d, cosine)")
            for q in textQueries {
                context.line()
                context.line("search --text \"\(q)\", k = 3:")
                printHits(try s.search(text: q, k: 3, options: SearchOptions(includeText: true)), context: context, withText: true)
            }
        } else {
            context.line("(Skipped the text part: the all-MiniLM-L6-v2 model is not installed; run tools/setup or tools/install-model.)")
        }
        context.line()
        context.line("Try: quiver search colors --db \(path) --vector \"[0.5, 0.0, 0.5]\" -k 5")
        if sentences != nil { context.line("     quiver search sentences --db \(path) --text \"weather\" --with-text") }
    }

    /// The text sample, written without vectors so that the engine embeds it; nil when the default
    /// model is not installed.
    func textCollection(_ db: Database) throws -> Collection? {
        guard EncoderRegistry.shared.modelStore.isInstalled(EncoderRegistry.defaultEncoderName) else { return nil }
        if (try? db.describe("sentences")) != nil { try db.dropCollection("sentences") }
        let c = try db.createCollection("sentences", encoder: EncoderRegistry.defaultEncoderName)
        try c.upsert(DemoSample.sentences.enumerated().map { i, s in
            Document(id: "s\(i + 1)", text: s.text, metadata: ["topic": .string(s.topic)])
        })
        return c
    }
}

/// The demo's bundled sample: named colours with sRGB components in 0...1.
enum DemoSample {
    struct Color {
        let name: String
        let hex: String
        let family: String
        var rgb: [Float] {
            let v = Int(hex.dropFirst(), radix: 16)!
            return [Float((v >> 16) & 0xFF) / 255, Float((v >> 8) & 0xFF) / 255, Float(v & 0xFF) / 255]
        }
    }

    static let colors: [Color] = [
        Color(name: "red", hex: "#FF0000", family: "red"), Color(name: "crimson", hex: "#DC143C", family: "red"),
        Color(name: "firebrick", hex: "#B22222", family: "red"), Color(name: "maroon", hex: "#800000", family: "red"),
        Color(name: "tomato", hex: "#FF6347", family: "orange"), Color(name: "coral", hex: "#FF7F50", family: "orange"),
        Color(name: "orange", hex: "#FFA500", family: "orange"), Color(name: "dark orange", hex: "#FF8C00", family: "orange"),
        Color(name: "gold", hex: "#FFD700", family: "yellow"), Color(name: "yellow", hex: "#FFFF00", family: "yellow"),
        Color(name: "light yellow", hex: "#FFFFE0", family: "yellow"), Color(name: "khaki", hex: "#F0E68C", family: "yellow"),
        Color(name: "lemon chiffon", hex: "#FFFACD", family: "yellow"), Color(name: "lime", hex: "#00FF00", family: "green"),
        Color(name: "green", hex: "#008000", family: "green"), Color(name: "forest green", hex: "#228B22", family: "green"),
        Color(name: "olive", hex: "#808000", family: "green"), Color(name: "sea green", hex: "#2E8B57", family: "green"),
        Color(name: "mint cream", hex: "#F5FFFA", family: "green"), Color(name: "teal", hex: "#008080", family: "cyan"),
        Color(name: "dark cyan", hex: "#008B8B", family: "cyan"), Color(name: "cyan", hex: "#00FFFF", family: "cyan"),
        Color(name: "turquoise", hex: "#40E0D0", family: "cyan"), Color(name: "dark slate gray", hex: "#2F4F4F", family: "gray"),
        Color(name: "navy", hex: "#000080", family: "blue"), Color(name: "blue", hex: "#0000FF", family: "blue"),
        Color(name: "royal blue", hex: "#4169E1", family: "blue"), Color(name: "steel blue", hex: "#4682B4", family: "blue"),
        Color(name: "sky blue", hex: "#87CEEB", family: "blue"), Color(name: "midnight blue", hex: "#191970", family: "blue"),
        Color(name: "indigo", hex: "#4B0082", family: "purple"), Color(name: "purple", hex: "#800080", family: "purple"),
        Color(name: "violet", hex: "#EE82EE", family: "purple"), Color(name: "orchid", hex: "#DA70D6", family: "purple"),
        Color(name: "magenta", hex: "#FF00FF", family: "pink"), Color(name: "hot pink", hex: "#FF69B4", family: "pink"),
        Color(name: "black", hex: "#000000", family: "gray"), Color(name: "gray", hex: "#808080", family: "gray"),
        Color(name: "silver", hex: "#C0C0C0", family: "gray"), Color(name: "white", hex: "#FFFFFF", family: "gray"),
    ]

    static let sentences: [(topic: String, text: String)] = [
        ("animals", "The cat curled up on the warm windowsill and fell asleep."),
        ("animals", "A dog chased the ball across the park."),
        ("animals", "Owls hunt at night and sleep during the day."),
        ("animals", "The puppy napped in its basket after the walk."),
        ("plants", "Leaves turn sunlight, water and carbon dioxide into sugar."),
        ("plants", "Photosynthesis happens in the chloroplasts of plant cells."),
        ("plants", "Cacti store water in their thick stems."),
        ("plants", "Roots pull minerals and water from the soil."),
        ("finance", "The central bank raised interest rates by a quarter point."),
        ("finance", "Stock prices fell after the earnings report."),
        ("finance", "Bond yields rose as investors sold government debt."),
        ("finance", "The company paid a dividend to its shareholders."),
        ("weather", "Heavy rain and strong winds are expected tomorrow."),
        ("weather", "A heat wave kept temperatures above forty degrees."),
        ("weather", "Snow closed the mountain pass overnight."),
        ("weather", "The fog lifted by noon and the sky cleared."),
    ]
}

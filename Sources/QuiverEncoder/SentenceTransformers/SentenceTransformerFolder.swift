import Foundation

/// What a sentence-transformers model folder says about how to run it.
///
/// Files read (paths relative to the folder):
/// - `modules.json`: the module pipeline; supported: `Transformer` (BERT) → `Pooling` → optional `Normalize`.
/// - `<transformer path>/config.json`, `vocab.txt`, `model.safetensors`: the BERT checkpoint.
/// - `<transformer path>/sentence_bert_config.json` (optional): `max_seq_length`.
/// - `<transformer path>/tokenizer_config.json` (optional): `do_lower_case`, `strip_accents`,
///   `tokenize_chinese_chars`, `model_max_length`.
/// - `<pooling path>/config.json`: pooling modes.
/// - `config_sentence_transformers.json` (optional): `prompts` with `query` and `document`/`passage` prefixes.
/// Without `modules.json` the folder is taken as a bare BERT checkpoint with mean pooling and no
/// normalization (sentence-transformers' own fallback).
public struct SentenceTransformerFolder: Sendable, Equatable {
    /// The folder.
    public let path: String
    /// Folder of the transformer files (the folder itself for standard layouts).
    public let transformerPath: String
    /// Architecture numbers.
    public let config: BertConfig
    /// Longest token sequence, `[CLS]` and `[SEP]` included.
    public let maxSequenceLength: Int
    /// Tokenizer options.
    public let tokenizerOptions: WordPieceTokenizer.Options
    /// Pooling modes.
    public let pooling: Pooling
    /// Whether a `Normalize` module follows pooling.
    public let normalizes: Bool
    /// Prefix the model expects before queries (from its prompts), or "".
    public let queryPrefix: String
    /// Prefix the model expects before documents (from its prompts), or "".
    public let documentPrefix: String

    /// Path of the weights.
    public var weightsPath: String { transformerPath + "/model.safetensors" }
    /// Path of the vocabulary.
    public var vocabularyPath: String { transformerPath + "/vocab.txt" }

    /// Reads the folder's configuration files (not the weights).
    public init(path: String) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw EncoderError(.invalidModelFolder, "not a model folder", path: path)
        }
        self.path = path
        func json(_ file: String) throws -> [String: Any]? {
            guard let data = fm.contents(atPath: file) else { return nil }
            guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                throw EncoderError(.invalidModelFolder, "not a JSON object", path: file)
            }
            return object
        }

        var transformer = "", poolingDir: String? = nil, normalizes = false
        if let data = fm.contents(atPath: path + "/modules.json") {
            guard let modules = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else {
                throw EncoderError(.invalidModelFolder, "modules.json is not a list of modules", path: path + "/modules.json")
            }
            for module in modules {
                let type = module["type"] as? String ?? ""
                let modulePath = module["path"] as? String ?? ""
                switch type.split(separator: ".").last.map(String.init) ?? "" {
                case "Transformer": transformer = modulePath
                case "Pooling": poolingDir = modulePath
                case "Normalize": normalizes = true
                default:
                    throw EncoderError(.unsupportedModel, "module type '\(type)' is not implemented (supported: Transformer, Pooling, Normalize)", path: path + "/modules.json")
                }
            }
        }
        transformerPath = transformer.isEmpty ? path : path + "/" + transformer
        self.normalizes = normalizes
        if let poolingDir {
            pooling = try Pooling(configFile: path + "/" + poolingDir + "/config.json")
        } else {
            pooling = Pooling(modes: [.mean])
        }

        config = try BertConfig(contentsOf: transformerPath + "/config.json")

        var options = WordPieceTokenizer.Options()
        var maxLength = config.maxPositions
        if let tok = try json(transformerPath + "/tokenizer_config.json") {
            if let lower = tok["do_lower_case"] as? Bool { options.lowercase = lower }
            if let strip = tok["strip_accents"] as? Bool { options.stripAccents = strip }
            if let cjk = tok["tokenize_chinese_chars"] as? Bool { options.handleChineseChars = cjk }
            if let m = (tok["model_max_length"] as? NSNumber)?.doubleValue, m >= 2, m < 1e9 { maxLength = min(maxLength, Int(m)) }
        }
        if let sbert = try json(transformerPath + "/sentence_bert_config.json"),
           let m = (sbert["max_seq_length"] as? NSNumber)?.intValue, m >= 2 {
            maxLength = min(m, config.maxPositions)
        }
        tokenizerOptions = options
        maxSequenceLength = maxLength

        var query = "", document = ""
        if let st = try json(path + "/config_sentence_transformers.json"), let prompts = st["prompts"] as? [String: String] {
            query = prompts["query"] ?? ""
            document = prompts["document"] ?? prompts["passage"] ?? ""
        }
        queryPrefix = query
        documentPrefix = document
    }
}

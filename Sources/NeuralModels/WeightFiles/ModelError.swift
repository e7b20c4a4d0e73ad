import TensorCore

/// Why a model file could not be used. Its description is one line naming the file and
/// the tensor, layer or key at fault, and what to do.
public struct ModelError: ProbeFarmError {
    public enum Code: Sendable, Equatable {
        /// The file does not exist or cannot be opened.
        case missing
        /// The safetensors container is malformed (header, offsets, dtype).
        case malformedFile
        /// The architecture metadata is missing or invalid.
        case badArchitecture
        /// A tensor the architecture names is absent or has the wrong shape.
        case tensorMismatch
        /// Layer shapes do not chain.
        case shapeMismatch
        /// The content hash in the metadata does not match the data.
        case hashMismatch
        /// The file cannot be written.
        case cannotWrite
    }

    public var code: Code
    public var path: String
    public var message: String

    public init(_ code: Code, path: String, _ message: String) {
        self.code = code
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }

    public var sysexit: Sysexit {
        switch code {
        case .missing: .noInput
        case .cannotWrite: .cantCreate
        default: .dataError
        }
    }
}

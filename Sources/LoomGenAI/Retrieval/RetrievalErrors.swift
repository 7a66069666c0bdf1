/// Errors thrown when loading a serialized index.
public enum SerializationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The buffer ended before all expected data could be read.
    case truncated
    /// The buffer does not start with the expected magic bytes.
    case badMagic(expected: String)
    /// The format version is not understood by this build.
    case unsupportedVersion(UInt32)
    /// The checksum stored in the buffer does not match its contents.
    case checksumMismatch
    /// The data is structurally invalid; the message says what was wrong.
    case corrupt(String)

    public var description: String {
        switch self {
        case .truncated: return "serialized index is truncated"
        case .badMagic(let expected): return "not a serialized \(expected) (bad magic bytes)"
        case .unsupportedVersion(let version): return "unsupported serialization format version \(version)"
        case .checksumMismatch: return "serialized index is corrupt (checksum mismatch)"
        case .corrupt(let message): return "serialized index is corrupt: \(message)"
        }
    }
}

/// Errors thrown by the vector indexes for invalid configuration or input.
public enum VectorIndexError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The index dimension must be at least 1.
    case invalidDimension(Int)
    /// A vector's length differs from the index dimension.
    case dimensionMismatch(expected: Int, actual: Int)
    /// A vector contains NaN or infinity.
    case nonFiniteComponent
    /// The index cannot hold more vectors (ids are 32-bit internally).
    case capacityExceeded
    /// Invalid HNSW parameters; the message says which.
    case invalidParameters(String)

    public var description: String {
        switch self {
        case .invalidDimension(let dimension):
            return "vector dimension must be at least 1 (got \(dimension))"
        case .dimensionMismatch(let expected, let actual):
            return "vector has \(actual) components but the index dimension is \(expected)"
        case .nonFiniteComponent:
            return "vector contains NaN or infinite components"
        case .capacityExceeded:
            return "index cannot hold more than \(UInt32.max - 1) vectors"
        case .invalidParameters(let message):
            return "invalid HNSW parameters: \(message)"
        }
    }
}

/// A configuration value failed validation; `message` explains why.
public struct ValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Human-readable explanation of the problem.
    public var message: String

    /// Creates a validation error with an explanation.
    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

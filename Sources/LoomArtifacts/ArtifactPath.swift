import Foundation
import LoomCore

/// A relative artifact path that cannot leave its root.
///
/// Rejected: absolute paths, `..` and `.` segments, empty segments, backslashes, NUL and control
/// characters, and segments that still decode to something dangerous after another round of
/// percent-decoding (double-encoded traversal such as `%252e%252e`).
public struct ArtifactPath: Sendable, Hashable, CustomStringConvertible {
    public let segments: [String]

    /// The root itself.
    public static let root = ArtifactPath(validated: [])

    private init(validated: [String]) {
        self.segments = validated
    }

    /// Validates `raw`. An empty string (or `/`-only) means the root when `allowRoot` is true.
    public init(_ raw: String, allowRoot: Bool = false) throws(LoomError) {
        if raw.isEmpty {
            guard allowRoot else { throw .invalidParameter("Artifact path must not be empty") }
            self.segments = []
            return
        }
        guard !raw.hasPrefix("/") else { throw .invalidParameter("Invalid artifact path '\(raw)': absolute paths are not allowed") }
        guard raw.utf8.count <= 4096 else { throw .invalidParameter("Artifact path is too long") }
        var trimmed = Substring(raw)
        while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        if trimmed.isEmpty {
            guard allowRoot else { throw .invalidParameter("Artifact path must not be empty") }
            self.segments = []
            return
        }
        var segments: [String] = []
        for part in trimmed.split(separator: "/", omittingEmptySubsequences: false) {
            let s = String(part)
            try Self.check(segment: s, in: raw)
            segments.append(s)
        }
        self.segments = segments
    }

    static func check(segment s: String, in raw: String) throws(LoomError) {
        guard !s.isEmpty else { throw .invalidParameter("Invalid artifact path '\(raw)': empty path segment") }
        guard s != ".", s != ".." else { throw .invalidParameter("Invalid artifact path '\(raw)': '.' and '..' are not allowed") }
        guard s.utf8.count <= 255 else { throw .invalidParameter("Invalid artifact path '\(raw)': a segment is longer than 255 bytes") }
        for scalar in s.unicodeScalars {
            if scalar == "\\" || scalar.value < 0x20 || scalar.value == 0x7F {
                throw .invalidParameter("Invalid artifact path '\(raw)': backslashes and control characters are not allowed")
            }
        }
        // Catch encoded traversal that a second decoder might turn into '..' or '/'.
        var decoded = s
        for _ in 0..<3 {
            guard decoded.contains("%"), let next = decoded.removingPercentEncoding, next != decoded else { break }
            decoded = next
            if decoded == ".." || decoded == "." || decoded.contains("/") || decoded.contains("\\") || decoded.contains("\0") {
                throw .invalidParameter("Invalid artifact path '\(raw)': encoded traversal is not allowed")
            }
        }
    }

    public var isRoot: Bool { segments.isEmpty }
    public var string: String { segments.joined(separator: "/") }
    public var description: String { string }
    public var name: String { segments.last ?? "" }
    public var parent: ArtifactPath { ArtifactPath(validated: Array(segments.dropLast())) }

    public func appending(_ other: ArtifactPath) -> ArtifactPath {
        ArtifactPath(validated: segments + other.segments)
    }

    /// Appends one validated relative path given as a string.
    public func appending(_ raw: String) throws(LoomError) -> ArtifactPath {
        appending(try ArtifactPath(raw, allowRoot: true))
    }

    /// Whether `self` equals `prefix` or lies below it.
    public func hasPrefix(_ prefix: ArtifactPath) -> Bool {
        segments.count >= prefix.segments.count && Array(segments.prefix(prefix.segments.count)) == prefix.segments
    }

    /// The path relative to `prefix` (which it must have as a prefix).
    public func relative(to prefix: ArtifactPath) -> ArtifactPath {
        ArtifactPath(validated: Array(segments.dropFirst(prefix.segments.count)))
    }
}

import Crypto
import LoomCore
import NIOCore

/// One entry of a directory listing.
public struct ArtifactEntry: Sendable, Hashable, Codable {
    /// Path relative to the listed directory's root (the store root, not the listed directory).
    public var path: String
    public var isDirectory: Bool
    public var size: Int64?

    public init(path: String, isDirectory: Bool, size: Int64?) {
        self.path = path
        self.isDirectory = isDirectory
        self.size = size
    }
}

/// What a completed upload stored.
public struct StoredArtifact: Sendable, Hashable, Codable {
    public var path: String
    public var size: Int64
    /// `sha256:<hex>` of the content.
    public var digest: String

    public init(path: String, size: Int64, digest: String) {
        self.path = path
        self.size = size
        self.digest = digest
    }
}

/// Where artifact bytes live. Uploads and downloads stream; nothing buffers a whole file.
public protocol ArtifactStore: Sendable {
    /// A human-readable location (for logs and `loom server` output).
    var location: String { get }

    /// Writes `chunks` to `path` atomically (readers see the old file or the whole new one) and
    /// returns its size and digest. Rejects bodies larger than `maxBytes`.
    func write<S: AsyncSequence & Sendable>(_ path: ArtifactPath, from chunks: S, maxBytes: Int64?) async throws -> StoredArtifact
        where S.Element == ByteBuffer

    /// The size of the file at `path`, or nil if there is no file there.
    func fileSize(_ path: ArtifactPath) async throws -> Int64?

    /// Streams the file at `path` from byte `offset` on to `consume`, chunk by chunk (nothing
    /// when `offset` is at or past its end).
    func read(_ path: ArtifactPath, from offset: Int64, chunkSize: Int, _ consume: (ByteBuffer) async throws -> Void) async throws

    /// Lists the direct children of the directory at `path` (empty if it does not exist).
    func list(_ path: ArtifactPath) async throws -> [ArtifactEntry]

    /// Deletes the file or directory tree at `path`.
    func delete(_ path: ArtifactPath) async throws

    /// Computes the digest of the file at `path` by streaming it.
    func digest(_ path: ArtifactPath) async throws -> StoredArtifact
}

/// One buffer as an async sequence, for writing small artifacts held in memory.
public struct SingleBuffer: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    let buffer: ByteBuffer

    public init(_ bytes: some Sequence<UInt8>) { buffer = ByteBuffer(bytes: Array(bytes)) }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var buffer: ByteBuffer?
        public mutating func next() async throws -> ByteBuffer? {
            defer { buffer = nil }
            return buffer
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(buffer: buffer) }
}

extension ArtifactStore {
    /// Writes bytes held in memory.
    public func write(_ path: ArtifactPath, bytes: some Sequence<UInt8>) async throws -> StoredArtifact {
        try await write(path, from: SingleBuffer(bytes), maxBytes: nil)
    }

    /// The size and SHA-256 of a file, by streaming it.
    /// Streams the whole file at `path` to `consume`, chunk by chunk.
    public func read(_ path: ArtifactPath, chunkSize: Int, _ consume: (ByteBuffer) async throws -> Void) async throws {
        try await read(path, from: 0, chunkSize: chunkSize, consume)
    }

    public func digestByReading(_ path: ArtifactPath) async throws -> StoredArtifact {
        var hasher = SHA256()
        var size: Int64 = 0
        try await read(path, chunkSize: 1 << 20) { chunk in
            size += Int64(chunk.readableBytes)
            chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        }
        return StoredArtifact(path: path.string, size: size, digest: "sha256:" + Identifiers.hex(bytes: hasher.finalize()))
    }

    /// Reads a whole (small) file, refusing one larger than `limit` bytes.
    public func readAll(_ path: ArtifactPath, limit: Int) async throws -> [UInt8] {
        var out: [UInt8] = []
        try await read(path, chunkSize: 1 << 20) { buffer in
            guard out.count + buffer.readableBytes <= limit else {
                throw LoomError.invalidParameter("\(path.string) is larger than \(limit) bytes")
            }
            out.append(contentsOf: buffer.readableBytesView)
        }
        return out
    }
}

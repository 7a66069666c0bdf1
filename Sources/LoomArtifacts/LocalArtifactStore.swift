import Crypto
import Foundation
import LoomCore
import NIOCore
import _NIOFileSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Artifacts on the local filesystem below one root directory.
///
/// Every path is an ``ArtifactPath`` (no traversal by construction); in addition, no component
/// below the root may be a symbolic link, so a link planted in the tree cannot lead outside it.
public struct LocalArtifactStore: ArtifactStore {
    public let root: String
    public var location: String { root }
    static let tempPrefix = ".loom-upload-"

    public init(root: String) throws {
        let absolute = root.hasPrefix("/") ? root : FileManager.default.currentDirectoryPath + "/" + root
        let standardized = (absolute as NSString).standardizingPath
        try FileManager.default.createDirectory(atPath: standardized, withIntermediateDirectories: true)
        self.root = standardized
    }

    func fullPath(_ path: ArtifactPath) -> String {
        path.isRoot ? root : root + "/" + path.string
    }

    /// Throws if any existing component below the root is a symbolic link.
    func checkNoSymlinks(_ path: ArtifactPath) throws(LoomError) {
        var current = root
        for segment in path.segments {
            current += "/" + segment
            var st = stat()
            if lstat(current, &st) != 0 { return }  // Nothing further exists.
            if (st.st_mode & S_IFMT) == S_IFLNK {
                throw .invalidParameter("Invalid artifact path '\(path)': symbolic links are not allowed")
            }
        }
    }

    func fileType(_ full: String) -> mode_t? {
        var st = stat()
        guard lstat(full, &st) == 0 else { return nil }
        return st.st_mode & S_IFMT
    }

    public func write<S: AsyncSequence & Sendable>(_ path: ArtifactPath, from chunks: S, maxBytes: Int64?) async throws -> StoredArtifact
        where S.Element == ByteBuffer {
        guard !path.isRoot else { throw LoomError.invalidParameter("Cannot write to the artifact root") }
        try checkNoSymlinks(path)
        let destination = fullPath(path)
        if fileType(destination) == S_IFDIR {
            throw LoomError.invalidParameter("Cannot overwrite directory '\(path)' with a file")
        }
        let parent = fullPath(path.parent)
        // A file in the way of the parent directory is a client error, not a server one.
        var probe = path.parent
        while !probe.isRoot {
            if fileType(fullPath(probe)) == S_IFREG {
                throw LoomError.invalidParameter("Cannot create '\(path)': '\(probe)' is a file")
            }
            probe = probe.parent
        }
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        try checkNoSymlinks(path)
        let temp = parent + "/" + Self.tempPrefix + Identifiers.newHexID()
        var hasher = SHA256()
        var size: Int64 = 0
        do {
            try await FileSystem.shared.withFileHandle(forWritingAt: FilePath(temp), options: .newFile(replaceExisting: false)) { handle in
                var writer = handle.bufferedWriter(capacity: .kibibytes(256))
                for try await chunk in chunks {
                    size += Int64(chunk.readableBytes)
                    if let maxBytes, size > maxBytes {
                        throw LoomError.payloadTooLarge("Artifact '\(path)' exceeds the limit of \(maxBytes) bytes")
                    }
                    chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                    _ = try await writer.write(contentsOf: chunk)
                }
                try await writer.flush()
            }
            guard rename(temp, destination) == 0 else {
                throw LoomError.internalError("cannot move upload into place (errno \(errno))")
            }
        } catch {
            unlink(temp)
            throw error
        }
        let digest = Identifiers.hex(bytes: hasher.finalize())
        return StoredArtifact(path: path.string, size: size, digest: "sha256:" + digest)
    }

    public func fileSize(_ path: ArtifactPath) async throws -> Int64? {
        try checkNoSymlinks(path)
        var st = stat()
        guard lstat(fullPath(path), &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(st.st_size)
    }

    public func read(_ path: ArtifactPath, from offset: Int64, chunkSize: Int, _ consume: (ByteBuffer) async throws -> Void) async throws {
        try checkNoSymlinks(path)
        guard fileType(fullPath(path)) == S_IFREG else { throw LoomError.notFound("No artifact at '\(path)'") }
        guard offset >= 0 else { throw LoomError.invalidParameter("A read cannot start before the file's start") }
        try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(fullPath(path)), options: .init(followSymbolicLinks: false)) { handle in
            for try await chunk in handle.readChunks(in: offset..., chunkLength: .bytes(Int64(chunkSize))) {
                try await consume(chunk)
            }
        }
    }

    public func list(_ path: ArtifactPath) async throws -> [ArtifactEntry] {
        try checkNoSymlinks(path)
        let full = fullPath(path)
        guard fileType(full) == S_IFDIR else { return [] }
        let names = try FileManager.default.contentsOfDirectory(atPath: full)
        var entries: [ArtifactEntry] = []
        for name in names.sorted() where !name.hasPrefix(Self.tempPrefix) {
            var st = stat()
            guard lstat(full + "/" + name, &st) == 0 else { continue }
            let type = st.st_mode & S_IFMT
            let rel = path.isRoot ? name : path.string + "/" + name
            if type == S_IFDIR {
                entries.append(ArtifactEntry(path: rel, isDirectory: true, size: nil))
            } else if type == S_IFREG {
                entries.append(ArtifactEntry(path: rel, isDirectory: false, size: Int64(st.st_size)))
            }
            // Symbolic links and special files are never listed.
        }
        return entries
    }

    public func delete(_ path: ArtifactPath) async throws {
        guard !path.isRoot else { throw LoomError.invalidParameter("Cannot delete the artifact root") }
        try checkNoSymlinks(path)
        let full = fullPath(path)
        guard fileType(full) != nil else { throw LoomError.notFound("No artifact at '\(path)'") }
        try FileManager.default.removeItem(atPath: full)
    }

    public func digest(_ path: ArtifactPath) async throws -> StoredArtifact {
        try await digestByReading(path)
    }
}

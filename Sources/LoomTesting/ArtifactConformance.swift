import Foundation
import LoomArtifacts
import LoomCore
import NIOCore
import Testing

/// What every artifact store does the same way: the local one and S3's run the same checks.
public enum ArtifactStoreConformance {
    /// The byte at `offset` of the test pattern: period 256, so any chunk is a slice of `table`.
    static let table: [UInt8] = (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }

    /// Chunks of the pattern, `size` bytes in all.
    struct Pattern: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let size: Int
        let chunk: Int
        struct AsyncIterator: AsyncIteratorProtocol {
            var left: Int
            let chunk: Int
            var offset = 0
            mutating func next() async throws -> ByteBuffer? {
                guard left > 0 else { return nil }
                let n = Swift.min(chunk, left, 1 << 20)
                let start = offset % 256
                let b = ByteBuffer(bytes: ArtifactStoreConformance.table[start..<(start + n)])
                offset += n
                left -= n
                return b
            }
        }
        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(left: size, chunk: chunk) }
    }

    /// Whether `buffer` holds the pattern from `offset` on.
    static func matches(_ buffer: ByteBuffer, at offset: Int) -> Bool {
        let start = offset % 256
        var position = 0
        var equal = true
        buffer.withUnsafeReadableBytes { bytes in
            table.withUnsafeBytes { expected in
                while position < bytes.count && equal {
                    let n = Swift.min(bytes.count - position, 1 << 20)
                    equal = memcmp(bytes.baseAddress! + position, expected.baseAddress! + start, n) == 0
                    position += n
                }
            }
        }
        return equal
    }

    public static func run(_ store: any ArtifactStore, largeBytes: Int = 12 << 20) async throws {
        let root = try ArtifactPath("conformance-\(Identifiers.newHexID().prefix(8))")
        let small = try root.appending("a/b/hello.txt")
        let stored = try await store.write(small, bytes: Array("hello, artifacts".utf8))
        #expect(stored.size == 16 && stored.digest.hasPrefix("sha256:"))
        #expect(try await store.fileSize(small) == 16)
        #expect(try await store.readAll(small, limit: 1 << 10) == Array("hello, artifacts".utf8))
        #expect(try await store.digest(small) == stored)
        // Overwriting replaces the whole file.
        _ = try await store.write(small, bytes: Array("bye".utf8))
        #expect(try await store.readAll(small, limit: 1 << 10) == Array("bye".utf8))
        #expect(try await store.fileSize(try root.appending("a/b/missing.txt")) == nil)
        await #expect(throws: LoomError.self) { _ = try await store.readAll(try root.appending("a/missing"), limit: 10) }

        _ = try await store.write(try root.appending("a/top.txt"), bytes: [1, 2, 3])
        _ = try await store.write(try root.appending("a/c/deep/x.bin"), bytes: [4])
        let listed = try await store.list(try root.appending("a"))
        #expect(listed == [
            ArtifactEntry(path: "\(root.string)/a/b", isDirectory: true, size: nil),
            ArtifactEntry(path: "\(root.string)/a/c", isDirectory: true, size: nil),
            ArtifactEntry(path: "\(root.string)/a/top.txt", isDirectory: false, size: 3),
        ])
        #expect(try await store.list(try root.appending("nothing-here")).isEmpty)

        // Large files stream in and out (in parts, where the store has them).
        let large = try root.appending("large.bin")
        let written = try await store.write(large, from: Pattern(size: largeBytes, chunk: 1 << 16), maxBytes: nil)
        #expect(written.size == Int64(largeBytes))
        #expect(try await store.fileSize(large) == Int64(largeBytes))
        var count = 0
        var matches = true
        try await store.read(large, chunkSize: 1 << 20) { buffer in
            if !Self.matches(buffer, at: count) { matches = false }
            count += buffer.readableBytes
        }
        #expect(count == largeBytes && matches)
        #expect(try await store.digest(large).digest == written.digest)
        // A read from an offset starts there (a log followed from where it was left).
        let offset = largeBytes - 70_001
        var tail = 0
        var tailMatches = true
        try await store.read(large, from: Int64(offset), chunkSize: 1 << 16) { buffer in
            if !Self.matches(buffer, at: offset + tail) { tailMatches = false }
            tail += buffer.readableBytes
        }
        #expect(tail == 70_001 && tailMatches)
        var past = 0
        try await store.read(large, from: Int64(largeBytes), chunkSize: 1 << 16) { past += $0.readableBytes }
        #expect(past == 0, "nothing from the end on")

        // Over the limit: refused, and nothing is left.
        let refused = try root.appending("refused.bin")
        await #expect(throws: LoomError.self) { _ = try await store.write(refused, from: Pattern(size: 1 << 20, chunk: 1 << 16), maxBytes: 1000) }
        #expect(try await store.fileSize(refused) == nil)

        // Deleting a file, then a tree.
        try await store.delete(try root.appending("a/top.txt"))
        #expect(try await store.fileSize(try root.appending("a/top.txt")) == nil)
        try await store.delete(try root.appending("a"))
        #expect(try await store.list(try root.appending("a")).isEmpty)
        #expect(try await store.fileSize(small) == nil)
        await #expect(throws: LoomError.self) { try await store.delete(try root.appending("a")) }
        try await store.delete(root)
    }
}

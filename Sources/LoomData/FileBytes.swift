import CompressNIO
import Crypto
import Foundation
import LoomCore
import NIOCore

/// Streams the content of a file in chunks of bounded size, un-gzipping it when it starts with
/// the gzip magic bytes, and digests the bytes as stored (SHA-256) in the same pass.
public struct FileBytes {
    public static let chunkSize = 1 << 20

    /// Calls `body` with each chunk of the (decompressed) content, in order; returns the
    /// `sha256:<hex>` digest (empty when not `digesting`) and size of the bytes as stored.
    public static func stream(
        _ path: String, chunkSize: Int = FileBytes.chunkSize, digesting: Bool = true,
        _ body: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> (digest: String, size: Int64) {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw LoomError.notFound("Cannot open \(path)")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        var size: Int64 = 0
        var gunzip: Gunzip?
        var first = true
        while true {
            let data: Data
            do {
                guard let d = try handle.read(upToCount: chunkSize), !d.isEmpty else { break }
                data = d
            } catch {
                throw LoomError.invalidParameter("Cannot read \(path): \(error.localizedDescription)")
            }
            if digesting { hasher.update(data: data) }
            size += Int64(data.count)
            if first {
                first = false
                if data.count >= 2, data[data.startIndex] == 0x1F, data[data.startIndex + 1] == 0x8B {
                    gunzip = try Gunzip(path: path)
                }
            }
            if gunzip != nil {
                try gunzip!.feed(data, body)
            } else {
                try data.withUnsafeBytes { try body($0) }
            }
        }
        try gunzip?.finish()
        return (digesting ? "sha256:" + Identifiers.hex(bytes: hasher.finalize()) : "", size)
    }
}

extension FileBytes {
    /// Room `blocks` leaves in front of each block's bytes.
    static let headroom = 1 << 16

    /// Reads a file into a fresh `ByteBlock` per `chunkSize` bytes, each placed `headroom` bytes
    /// in (where a parser can put the unfinished end of the block before, instead of copying
    /// the block). Plain files are read straight into the blocks; gzip files are inflated into
    /// them. Returns the digest and size as `stream` does.
    static func blocks(
        _ path: String, chunkSize: Int = FileBytes.chunkSize, digesting: Bool = true,
        _ body: (ByteBlock, _ length: Int) throws -> Void
    ) throws -> (digest: String, size: Int64) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw LoomError.notFound("Cannot open \(path)") }
        defer { close(fd) }
        var hasher = SHA256()
        var size: Int64 = 0
        var first = true
        while true {
            let block = ByteBlock(capacity: headroom + chunkSize)
            var filled = 0
            while filled < chunkSize {
                let n = read(fd, block.base + headroom + filled, chunkSize - filled)
                if n < 0, errno == EINTR { continue }
                guard n >= 0 else {
                    throw LoomError.invalidParameter("Cannot read \(path): \(String(cString: strerror(errno)))")
                }
                if n == 0 { break }
                filled += n
            }
            if first {
                first = false
                if filled >= 2, block.base[headroom] == 0x1F, block.base[headroom + 1] == 0x8B {
                    // Compressed: inflate through `stream`, a block per window.
                    return try stream(path, chunkSize: chunkSize, digesting: digesting) { window in
                        let inflated = ByteBlock(capacity: headroom + window.count)
                        if let source = window.baseAddress {
                            (inflated.base + headroom).update(from: source.assumingMemoryBound(to: UInt8.self), count: window.count)
                        }
                        try body(inflated, window.count)
                    }
                }
            }
            guard filled > 0 else { break }
            if digesting { hasher.update(bufferPointer: UnsafeRawBufferPointer(start: block.base + headroom, count: filled)) }
            size += Int64(filled)
            try body(block, filled)
            if filled < chunkSize { break }
        }
        return (digesting ? "sha256:" + Identifiers.hex(bytes: hasher.finalize()) : "", size)
    }
}

/// Streaming gzip decompression over compress-nio (zlib). Checks the trailer's length against
/// what was decompressed, so that a truncated file is an error rather than fewer rows.
private struct Gunzip {
    let path: String
    let decompressor: any NIODecompressor
    var produced: UInt64 = 0
    var tail: [UInt8] = []

    init(path: String) throws {
        self.path = path
        decompressor = CompressionAlgorithm.gzip().decompressor
        decompressor.window = ByteBufferAllocator().buffer(capacity: FileBytes.chunkSize)
        do { try decompressor.startStream() } catch { throw LoomError.internalError("zlib: \(error)") }
    }

    mutating func feed(_ data: Data, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        // The last 4 bytes of a gzip file hold the length of its content modulo 2^32.
        tail = Array((tail + data.suffix(4)).suffix(4))
        var input = ByteBuffer(bytes: data)
        var produced = self.produced
        do {
            try input.decompressStream(with: decompressor) { window in
                produced += UInt64(window.readableBytes)
                try window.withUnsafeReadableBytes { try body($0) }
            }
        } catch let error as CompressNIOError {
            throw LoomError.invalidParameter("\(path) is not valid gzip (\(error))")
        }
        self.produced = produced
    }

    func finish() throws {
        try? decompressor.finishStream()
        guard tail.count == 4 else { throw LoomError.invalidParameter("\(path) is a truncated gzip file") }
        let expected = UInt32(tail[0]) | UInt32(tail[1]) << 8 | UInt32(tail[2]) << 16 | UInt32(tail[3]) << 24
        guard UInt32(truncatingIfNeeded: produced) == expected else {
            throw LoomError.invalidParameter("\(path) is a truncated or multi-part gzip file (its trailer says \(expected) bytes, it held \(produced))")
        }
    }
}

/// The bytes of a file as stored, as an async sequence of buffers (for copying a file into the
/// artifact store).
public struct FileChunks: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    let path: String
    let chunkSize: Int

    public init(path: String, chunkSize: Int = FileBytes.chunkSize) {
        self.path = path
        self.chunkSize = chunkSize
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var handle: FileHandle?
        let path: String
        let chunkSize: Int

        public mutating func next() async throws -> ByteBuffer? {
            if handle == nil {
                guard let h = FileHandle(forReadingAtPath: path) else { throw LoomError.notFound("Cannot open \(path)") }
                handle = h
            }
            guard let data = try handle?.read(upToCount: chunkSize), !data.isEmpty else {
                try? handle?.close()
                return nil
            }
            return ByteBuffer(bytes: data)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(handle: nil, path: path, chunkSize: chunkSize) }
}

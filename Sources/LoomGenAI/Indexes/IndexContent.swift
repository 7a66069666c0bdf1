import Foundation

/// What one index version holds, as loaded for queries: its documents, its chunks (each with
/// its document), the BM25 index over the chunks, and — when the index embeds — the chunks'
/// vectors in an HNSW graph. Written to the artifact store as `content.bin`, `bm25.bin` and
/// `hnsw.bin`.
public struct IndexContent: Sendable {
    public struct Document: Sendable, Equatable {
        public var source: String
        public var digest: String
        public var title: String
        public var metadata: [String: String]
        public var modifiedTime: Int64
    }

    public struct Chunk: Sendable, Equatable {
        /// Its document's position in `documents`.
        public var document: Int
        public var ordinal: Int
        public var text: String
        public var heading: String?
    }

    public var documents: [Document]
    public var chunks: [Chunk]

    static let magic = Array("LIXC".utf8)

    /// The documents and chunks, checksummed.
    public func serialized() -> [UInt8] {
        var w = BinaryWriter(magic: Self.magic, version: 1)
        w.write(documents.count)
        for d in documents {
            w.write(d.source)
            w.write(d.digest)
            w.write(d.title)
            w.write(d.modifiedTime)
            w.write(d.metadata.count)
            for (k, v) in d.metadata.sorted(by: { $0.key < $1.key }) {
                w.write(k)
                w.write(v)
            }
        }
        w.write(chunks.count)
        for c in chunks {
            w.write(UInt32(c.document))
            w.write(UInt32(c.ordinal))
            w.write(c.text)
            w.write(UInt8(c.heading == nil ? 0 : 1))
            if let h = c.heading { w.write(h) }
        }
        return w.finish()
    }

    public init(documents: [Document], chunks: [Chunk]) {
        self.documents = documents
        self.chunks = chunks
    }

    /// Reads what `serialized()` wrote; a truncated or corrupt file throws.
    public init(serialized bytes: [UInt8]) throws {
        var r = try BinaryReader(bytes, magic: Self.magic, kind: "index content", version: 1)
        let documentCount = try r.readInt(in: 0...Int(UInt32.max), "document count")
        var documents: [Document] = []
        documents.reserveCapacity(min(documentCount, 1 << 20))
        for _ in 0..<documentCount {
            let source = try r.readString(), digest = try r.readString(), title = try r.readString()
            let modified = try r.read(Int64.self)
            let n = try r.readInt(in: 0...100_000, "metadata count")
            var metadata: [String: String] = [:]
            for _ in 0..<n {
                let k = try r.readString()
                metadata[k] = try r.readString()
            }
            documents.append(Document(source: source, digest: digest, title: title, metadata: metadata, modifiedTime: modified))
        }
        let chunkCount = try r.readInt(in: 0...Int(UInt32.max), "chunk count")
        var chunks: [Chunk] = []
        chunks.reserveCapacity(min(chunkCount, 1 << 22))
        for _ in 0..<chunkCount {
            let document = Int(try r.read(UInt32.self))
            guard document < documents.count else { throw SerializationError.corrupt("a chunk names document \(document) of \(documents.count)") }
            let ordinal = Int(try r.read(UInt32.self))
            let text = try r.readString()
            let heading = try r.read(UInt8.self) == 1 ? try r.readString() : nil
            chunks.append(Chunk(document: document, ordinal: ordinal, text: text, heading: heading))
        }
        try r.expectEnd()
        self.documents = documents
        self.chunks = chunks
    }
}

extension BM25Index {
    static let magic: [UInt8] = Array("BM25".utf8)
    static let formatVersion: UInt32 = 1

    /// A versioned little-endian binary encoding of the index, ending with a
    /// checksum. Load it with ``init(serialized:)``.
    public func serialized() -> [UInt8] {
        var writer = BinaryWriter(magic: Self.magic, version: Self.formatVersion)
        writer.write(parameters.k1)
        writer.write(parameters.b)
        writer.write(parameters.epsilon)
        writer.write(documentLengths.count)
        writer.write(terms.count)
        writer.write(postingDocuments.count)
        writer.write(frequencyOverflow.count)
        writer.writeElements(documentLengths)
        for term in terms { writer.write(term) }
        writer.writeElements(postingOffsets.map { Int64($0) })
        writer.writeElements(postingDocuments)
        writer.writeElements(postingFrequencies)
        for (position, frequency) in frequencyOverflow.sorted(by: { $0.key < $1.key }) {
            writer.write(position)
            writer.write(frequency)
        }
        return writer.finish()
    }

    /// Loads an index written by ``serialized()``.
    ///
    /// The buffer is fully validated (magic, version, checksum, and the
    /// structure: offsets, ascending in-range document ids, frequencies that
    /// add up to the document lengths, distinct terms). Invalid input throws
    /// a ``SerializationError``; it never crashes.
    public convenience init(serialized bytes: [UInt8]) throws {
        var reader = try BinaryReader(bytes, magic: Self.magic, kind: "BM25 index", version: Self.formatVersion)
        let parameters = BM25Parameters(
            k1: try reader.readDouble(), b: try reader.readDouble(), epsilon: try reader.readDouble())
        guard parameters.k1.isFinite, parameters.b.isFinite, parameters.epsilon.isFinite else {
            throw SerializationError.corrupt("non-finite parameters")
        }
        let limit = Int(UInt32.max - 1)
        let documentCount = try reader.readInt(in: 0...limit, "document count")
        let termCount = try reader.readInt(in: 0...limit, "term count")
        let postingCount = try reader.readInt(in: 0...Int.max, "posting count")
        let overflowCount = try reader.readInt(in: 0...postingCount, "overflow count")
        let documentLengths = try reader.readElements(UInt32.self, count: documentCount)
        guard termCount <= reader.remaining / 4 else { throw SerializationError.truncated }
        var terms: [String] = []
        terms.reserveCapacity(termCount)
        var termIDs: [String: UInt32] = [:]
        termIDs.reserveCapacity(termCount)
        for id in 0..<termCount {
            let term = try reader.readString()
            guard termIDs.updateValue(UInt32(id), forKey: term) == nil else {
                throw SerializationError.corrupt("duplicate term")
            }
            terms.append(term)
        }
        let offsets = try reader.readElements(Int64.self, count: termCount + 1).map { Int($0) }
        let documents = try reader.readElements(UInt32.self, count: postingCount)
        let frequencies = try reader.readElements(UInt16.self, count: postingCount)
        guard overflowCount <= reader.remaining / 12 else { throw SerializationError.truncated }
        var overflow: [Int: UInt32] = [:]
        for _ in 0..<overflowCount {
            let position = try reader.readInt(in: 0...max(0, postingCount - 1), "overflow position")
            let frequency = try reader.read(UInt32.self)
            guard frequencies[position] == Self.frequencyEscape, frequency >= UInt32(Self.frequencyEscape),
                  overflow.updateValue(frequency, forKey: position) == nil
            else { throw SerializationError.corrupt("invalid frequency overflow entry") }
        }
        try reader.expectEnd()
        try Self.validatePostings(
            offsets: offsets, documents: documents, frequencies: frequencies, overflow: overflow,
            documentLengths: documentLengths)
        self.init(
            parameters: parameters, terms: terms, termIDs: termIDs, documentLengths: documentLengths,
            postingOffsets: offsets, postingDocuments: documents, postingFrequencies: frequencies,
            frequencyOverflow: overflow)
    }

    /// Checks the posting structure against the document lengths.
    private static func validatePostings(
        offsets: [Int], documents: [UInt32], frequencies: [UInt16], overflow: [Int: UInt32],
        documentLengths: [UInt32]
    ) throws {
        guard offsets.first == 0, offsets.last == documents.count else {
            throw SerializationError.corrupt("posting offsets do not cover the postings")
        }
        var lengthCheck = [UInt64](repeating: 0, count: documentLengths.count)
        for term in 0..<(offsets.count - 1) {
            let start = offsets[term]
            let end = offsets[term + 1]
            guard start < end, end <= documents.count else {
                throw SerializationError.corrupt("invalid posting range for term \(term)")
            }
            var previous: Int = -1
            for position in start..<end {
                let document = Int(documents[position])
                guard document > previous, document < documentLengths.count else {
                    throw SerializationError.corrupt("posting document ids out of order or range")
                }
                previous = document
                let stored = frequencies[position]
                guard stored > 0 else { throw SerializationError.corrupt("zero term frequency") }
                if stored == frequencyEscape {
                    guard let large = overflow[position] else {
                        throw SerializationError.corrupt("missing frequency overflow entry")
                    }
                    lengthCheck[document] += UInt64(large)
                } else {
                    lengthCheck[document] += UInt64(stored)
                }
            }
        }
        for (document, length) in documentLengths.enumerated() where UInt64(length) != lengthCheck[document] {
            throw SerializationError.corrupt("document \(document) length does not match its postings")
        }
    }
}

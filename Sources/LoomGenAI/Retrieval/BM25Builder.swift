/// Collects tokenized documents and builds an immutable ``BM25Index``.
///
/// Document ids are assigned in insertion order starting at 0. The builder
/// stores each document as (term id, frequency) pairs; ``build()`` turns
/// them into per-term postings.
public struct BM25Builder: Sendable {
    /// Scoring parameters for the index being built.
    public var parameters: BM25Parameters

    private var termIDs: [String: UInt32] = [:]
    private var terms: [String] = []
    private var documentFrequencies: [UInt32] = []
    private var documentLengths: [UInt32] = []
    private var uniqueTermCounts: [UInt32] = []
    private var pairTerms: [UInt32] = []
    private var pairFrequencies: [UInt32] = []
    private var scratch: [UInt32] = []

    /// Creates an empty builder.
    public init(parameters: BM25Parameters = BM25Parameters()) {
        self.parameters = parameters
    }

    /// The number of documents added so far.
    public var count: Int { documentLengths.count }

    /// Adds a document given as its terms (e.g. from
    /// ``TextTokenizer/terms(_:)``) and returns its id. An empty document is
    /// allowed: it has length 0 and never matches.
    ///
    /// - Precondition: fewer than 2³² − 1 documents and terms overall.
    @discardableResult
    public mutating func add(terms documentTerms: [String]) -> Int {
        precondition(documentLengths.count < Int(UInt32.max), "BM25Builder: too many documents")
        let id = documentLengths.count
        scratch.removeAll(keepingCapacity: true)
        for term in documentTerms {
            scratch.append(termID(for: term))
        }
        scratch.sort()
        var unique: UInt32 = 0
        var index = 0
        while index < scratch.count {
            let term = scratch[index]
            var frequency: UInt32 = 0
            while index < scratch.count, scratch[index] == term {
                frequency += 1
                index += 1
            }
            pairTerms.append(term)
            pairFrequencies.append(frequency)
            documentFrequencies[Int(term)] += 1
            unique += 1
        }
        documentLengths.append(UInt32(clamping: documentTerms.count))
        uniqueTermCounts.append(unique)
        return id
    }

    /// The id of `term`, registering it on first sight (ids follow first
    /// occurrence order, which fixes the idf averaging order).
    private mutating func termID(for term: String) -> UInt32 {
        if let id = termIDs[term] { return id }
        precondition(terms.count < Int(UInt32.max), "BM25Builder: too many distinct terms")
        let id = UInt32(terms.count)
        termIDs[term] = id
        terms.append(term)
        documentFrequencies.append(0)
        return id
    }

    /// Builds the immutable index (the builder stays usable).
    public func build() -> BM25Index {
        let termCount = terms.count
        var offsets = [Int](repeating: 0, count: termCount + 1)
        for term in 0..<termCount {
            offsets[term + 1] = offsets[term] + Int(documentFrequencies[term])
        }
        let postingCount = offsets[termCount]
        var cursor = offsets
        var documents = [UInt32](repeating: 0, count: postingCount)
        var frequencies = [UInt16](repeating: 0, count: postingCount)
        var overflow: [Int: UInt32] = [:]
        var pair = 0
        for document in 0..<documentLengths.count {
            for _ in 0..<Int(uniqueTermCounts[document]) {
                let term = Int(pairTerms[pair])
                let position = cursor[term]
                cursor[term] += 1
                documents[position] = UInt32(document)
                let frequency = pairFrequencies[pair]
                if frequency >= UInt32(BM25Index.frequencyEscape) {
                    frequencies[position] = BM25Index.frequencyEscape
                    overflow[position] = frequency
                } else {
                    frequencies[position] = UInt16(frequency)
                }
                pair += 1
            }
        }
        return BM25Index(
            parameters: parameters,
            terms: terms,
            termIDs: termIDs,
            documentLengths: documentLengths,
            postingOffsets: offsets,
            postingDocuments: documents,
            postingFrequencies: frequencies,
            frequencyOverflow: overflow)
    }
}

import Foundation

/// An immutable Okapi BM25 index with inverted postings.
///
/// Scores match Python's `rank_bm25.BM25Okapi` (same formula and the same
/// order of floating-point operations):
/// - `idf(t) = ln(N − n(t) + 0.5) − ln(n(t) + 0.5)`; every negative idf is
///   replaced by `epsilon × average idf`, the average being taken over all
///   terms (negative ones included) before replacement;
/// - `score(d) = Σ_q idf(q) · tf·(k1+1) / (tf + k1·(1 − b + b·|d|/avgdl))`,
///   summed over query terms in order, duplicates counted each time.
///
/// Postings are stored per term as parallel arrays of document ids
/// (`UInt32`, ascending) and term frequencies (`UInt16`, with a side table
/// for frequencies ≥ 65535), so a query only touches the documents that
/// contain its terms. Safe to share between threads.
public final class BM25Index: Sendable {
    /// Frequencies at or above this value are stored in `frequencyOverflow`.
    static let frequencyEscape: UInt16 = .max

    /// The scoring parameters.
    public let parameters: BM25Parameters
    /// The number of documents.
    public var documentCount: Int { documentLengths.count }
    /// The number of distinct terms.
    public var termCount: Int { terms.count }
    /// Average document length in terms (0 for an empty index).
    public let averageDocumentLength: Double
    /// Mean of the raw idfs over all terms, used for the epsilon floor.
    public let averageIDF: Double

    let terms: [String]
    let termIDs: [String: UInt32]
    let documentLengths: [UInt32]
    let postingOffsets: [Int]
    let postingDocuments: [UInt32]
    let postingFrequencies: [UInt16]
    let frequencyOverflow: [Int: UInt32]
    /// Final idf per term id (after the epsilon floor).
    let idf: [Double]
    /// `k1 · (1 − b + b·|d| / avgdl)` per document.
    let lengthNorm: [Double]

    init(
        parameters: BM25Parameters,
        terms: [String],
        termIDs: [String: UInt32],
        documentLengths: [UInt32],
        postingOffsets: [Int],
        postingDocuments: [UInt32],
        postingFrequencies: [UInt16],
        frequencyOverflow: [Int: UInt32]
    ) {
        self.parameters = parameters
        self.terms = terms
        self.termIDs = termIDs
        self.documentLengths = documentLengths
        self.postingOffsets = postingOffsets
        self.postingDocuments = postingDocuments
        self.postingFrequencies = postingFrequencies
        self.frequencyOverflow = frequencyOverflow

        let documentCount = Double(documentLengths.count)
        var rawIDF = [Double](repeating: 0, count: terms.count)
        var idfSum = 0.0
        for term in 0..<terms.count {
            let frequency = Double(postingOffsets[term + 1] - postingOffsets[term])
            let value = log(documentCount - frequency + 0.5) - log(frequency + 0.5)
            rawIDF[term] = value
            idfSum += value
        }
        let average = terms.isEmpty ? 0 : idfSum / Double(terms.count)
        let floor = parameters.epsilon * average
        self.idf = rawIDF.map { $0 < 0 ? floor : $0 }
        self.averageIDF = average

        let totalLength = documentLengths.reduce(0) { $0 + Int($1) }
        let averageLength = documentLengths.isEmpty ? 0 : Double(totalLength) / documentCount
        self.averageDocumentLength = averageLength
        let k1 = parameters.k1
        let b = parameters.b
        self.lengthNorm = documentLengths.map { length in
            averageLength > 0 ? k1 * (1 - b + b * Double(length) / averageLength) : k1 * (1 - b)
        }
    }

    /// The idf used for `term` (after the epsilon floor), or `nil` if the
    /// term does not occur in the index.
    public func idf(of term: String) -> Double? {
        termIDs[term].map { idf[Int($0)] }
    }

    /// The number of documents containing `term`.
    public func documentFrequency(of term: String) -> Int {
        guard let id = termIDs[term].map(Int.init) else { return 0 }
        return postingOffsets[id + 1] - postingOffsets[id]
    }

    /// The term frequency stored at posting position `position`.
    @inline(__always)
    func frequency(at position: Int) -> Double {
        let stored = postingFrequencies[position]
        if stored == Self.frequencyEscape, let large = frequencyOverflow[position] {
            return Double(large)
        }
        return Double(stored)
    }
}

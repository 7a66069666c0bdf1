extension BM25Index {
    /// The best `k` documents containing at least one query term, by BM25
    /// score descending then id ascending.
    ///
    /// Only the postings of the query terms are visited (document-at-a-time
    /// merge with a bounded heap), so cost grows with the query terms'
    /// document frequencies, not with the index size. Unknown terms are
    /// ignored; duplicate terms count once per occurrence.
    /// - Parameters:
    ///   - queryTerms: Query terms, tokenized like the documents.
    ///   - k: Maximum number of hits; `k <= 0` returns `[]`.
    ///   - allow: Optional filter; documents for which it returns `false`
    ///     are skipped (and not scored).
    public func search(_ queryTerms: [String], k: Int, allow: ((Int) -> Bool)? = nil) -> [ScoredHit] {
        guard k > 0 else { return [] }
        var cursors: [(position: Int, end: Int, idf: Double)] = []
        for term in queryTerms {
            guard let id = termIDs[term].map(Int.init) else { continue }
            cursors.append((postingOffsets[id], postingOffsets[id + 1], idf[id]))
        }
        guard !cursors.isEmpty else { return [] }
        let k1Plus1 = parameters.k1 + 1
        var top = TopKHits(k: k)
        postingDocuments.withUnsafeBufferPointer { documents in
            postingFrequencies.withUnsafeBufferPointer { frequencies in
                lengthNorm.withUnsafeBufferPointer { norms in
                    while true {
                        var current = UInt32.max
                        var active = false
                        for cursor in cursors where cursor.position < cursor.end {
                            current = min(current, documents[cursor.position])
                            active = true
                        }
                        guard active else { break }
                        let document = Int(current)
                        let allowed = allow?(document) ?? true
                        var score = 0.0
                        let norm = norms[document]
                        for index in cursors.indices {
                            let position = cursors[index].position
                            guard position < cursors[index].end, documents[position] == current else { continue }
                            if allowed {
                                let stored = frequencies[position]
                                let tf = stored == Self.frequencyEscape ? frequency(at: position) : Double(stored)
                                score += tf * k1Plus1 / (tf + norm) * cursors[index].idf
                            }
                            cursors[index].position = position + 1
                        }
                        if allowed { top.insert(ScoredHit(id: document, score: score)) }
                    }
                }
            }
        }
        return top.sorted()
    }

    /// The BM25 score of every document (index = document id), exactly as
    /// `rank_bm25.BM25Okapi.get_scores` computes them; documents without any
    /// query term score 0.
    public func scores(_ queryTerms: [String]) -> [Double] {
        var result = [Double](repeating: 0, count: documentCount)
        let k1Plus1 = parameters.k1 + 1
        for term in queryTerms {
            guard let id = termIDs[term].map(Int.init) else { continue }
            let termIDF = idf[id]
            for position in postingOffsets[id]..<postingOffsets[id + 1] {
                let document = Int(postingDocuments[position])
                let tf = frequency(at: position)
                result[document] += tf * k1Plus1 / (tf + lengthNorm[document]) * termIDF
            }
        }
        return result
    }
}

// TextMatchers.swift
//
// Whole-word blocklist matching with an Aho–Corasick automaton over case-folded UTF-8 bytes.
//
// Case folding keeps byte offsets aligned with the original text: ASCII letters are lower-cased, and a 2-byte
// UTF-8 sequence (U+0080…U+07FF: Latin-1, Latin Extended, Greek, Cyrillic, Armenian, …) is replaced by its
// simple lower-case mapping when that is a single scalar that is also 2 bytes long (É→é, Д→д, Σ→σ). Every other
// byte is compared as it is. Terms are folded the same way, so matching is symmetric.

/// Whole-word, case-insensitive matching of a blocklist (words or multi-word phrases), Unicode-aware via simple
/// case folding of ASCII and lowercasing otherwise; built once, matched many times.
///
/// Word boundaries: a match must not be preceded or followed by a word character — an ASCII letter, digit or
/// `_`, or a non-ASCII scalar that is alphabetic, numeric or a combining mark (so `“class”` and `class—` match,
/// `classé` does not). The check only applies at an edge of a term that is itself a word character, so terms
/// may contain or end in spaces/punctuation (`c++`). Leading/trailing whitespace of terms is ignored; empty
/// terms are dropped.
public struct Blocklist: Sendable {
    /// Byte → input class (0 = a byte that occurs in no term).
    private let classOf: [UInt16]
    private let classCount: Int
    /// Complete DFA in rows of `classCount + 1` entries. A state is identified by the offset of its row.
    /// `table[row + class]` is the row offset of the next state; `table[row + classCount]` is the index of the
    /// first state on its output chain (the state itself if a term ends there), or -1.
    private let table: [Int32]
    /// Length in bytes of the term ending at this state, 0 if none.
    private let termLength: [Int32]
    /// Next state on the suffix chain whose `termLength > 0`, or -1.
    private let outputLink: [Int32]
    /// Bit 0: the term starts with a word character; bit 1: it ends with one.
    private let edgeFlags: [UInt8]

    public init(_ terms: [String]) {
        let fold = BlocklistFolding.table
        var folded: [[UInt8]] = []
        var flags: [UInt8] = []
        for term in terms {
            var s = Substring(term)
            while let f = s.first, f.isWhitespace { s.removeFirst() }
            while let l = s.last, l.isWhitespace { s.removeLast() }
            guard let first = s.unicodeScalars.first, let last = s.unicodeScalars.last else { continue }
            var bytes = Array(s.utf8)
            BlocklistFolding.fold(&bytes, fold)
            folded.append(bytes)
            flags.append((BlocklistFolding.isWord(first) ? 1 : 0) | (BlocklistFolding.isWord(last) ? 2 : 0))
        }

        // Input classes.
        var classOf = [UInt16](repeating: 0, count: 256)
        var classCount = 1
        for term in folded {
            for c in term where classOf[Int(c)] == 0 {
                classOf[Int(c)] = UInt16(classCount)
                classCount += 1
            }
        }
        let C = classCount

        // Trie.
        var delta = [Int32](repeating: -1, count: C)
        var termLength: [Int32] = [0]
        var edgeFlags: [UInt8] = [0]
        for (term, flag) in zip(folded, flags) {
            var s = 0
            for c in term {
                let idx = s * C + Int(classOf[Int(c)])
                var next = delta[idx]
                if next < 0 {
                    next = Int32(termLength.count)
                    delta[idx] = next
                    delta.append(contentsOf: repeatElement(-1, count: C))
                    termLength.append(0)
                    edgeFlags.append(0)
                }
                s = Int(next)
            }
            termLength[s] = Int32(term.count)
            edgeFlags[s] = flag
        }

        // Failure links (BFS) and completion of the transition table.
        let stateCount = termLength.count
        var fail = [Int32](repeating: 0, count: stateCount)
        var outputLink = [Int32](repeating: -1, count: stateCount)
        var queue: [Int32] = []
        queue.reserveCapacity(stateCount)
        for c in 0..<C {
            let t = delta[c]
            if t < 0 {
                delta[c] = 0
            } else {
                fail[Int(t)] = 0
                queue.append(t)
            }
        }
        var head = 0
        while head < queue.count {
            let s = Int(queue[head])
            head += 1
            let f = Int(fail[s])
            outputLink[s] = termLength[f] > 0 ? Int32(f) : outputLink[f]
            for c in 0..<C {
                let t = delta[s * C + c]
                if t < 0 {
                    delta[s * C + c] = delta[f * C + c]
                } else {
                    fail[Int(t)] = delta[f * C + c]
                    queue.append(t)
                }
            }
        }

        let W = C + 1
        var table = [Int32](repeating: -1, count: stateCount * W)
        for st in 0..<stateCount {
            for c in 0..<C { table[st * W + c] = delta[st * C + c] * Int32(W) }
            table[st * W + C] = termLength[st] > 0 ? Int32(st) : outputLink[st]
        }

        self.classOf = classOf
        self.classCount = C
        self.table = table
        self.termLength = termLength
        self.outputLink = outputLink
        self.edgeFlags = edgeFlags
    }

    /// Matches as UTF-8 byte ranges of the ORIGINAL text, sorted, non-overlapping (longest first at a position).
    public func matches(in text: String) -> [Range<Int>] {
        if termLength.count <= 1 || text.isEmpty { return [] }
        var text = text
        return text.withUTF8 { matchBytes($0) }
    }

    private func matchBytes(_ b: UnsafeBufferPointer<UInt8>) -> [Range<Int>] {
        let C = classCount
        var candidates: [Range<Int>] = []
        let fold = BlocklistFolding.table
        fold.withUnsafeBufferPointer { fold in
            classOf.withUnsafeBufferPointer { cls in
                table.withUnsafeBufferPointer { d in
                    let automaton = BlocklistAutomaton(
                        fold: fold, classOf: cls, table: d, classCount: C,
                        termLength: termLength, outputLink: outputLink, edgeFlags: edgeFlags)
                    automaton.run(b, &candidates)
                }
            }
        }
        if candidates.count <= 1 { return candidates }
        candidates.sort {
            $0.lowerBound != $1.lowerBound ? $0.lowerBound < $1.lowerBound : $0.upperBound > $1.upperBound
        }
        var result: [Range<Int>] = []
        result.reserveCapacity(candidates.count)
        var lastEnd = 0
        for r in candidates where r.lowerBound >= lastEnd {
            result.append(r)
            lastEnd = r.upperBound
        }
        return result
    }
}

/// The hot loop, with everything it reads passed in as plain buffers so that the state stays in registers.
private struct BlocklistAutomaton {
    let fold: UnsafeBufferPointer<UInt16>
    let classOf: UnsafeBufferPointer<UInt16>
    let table: UnsafeBufferPointer<Int32>
    let classCount: Int
    let termLength: [Int32]
    let outputLink: [Int32]
    let edgeFlags: [UInt8]

    /// Appends every whole-word match, in order of end offset.
    func run(_ b: UnsafeBufferPointer<UInt8>, _ candidates: inout [Range<Int>]) {
        let n = b.count
        let C = classCount
        var row = 0
        var i = 0
        while i < n {
            let c = b[i]
            if c >= 0xC2 && c <= 0xDF && i &+ 1 < n && b[i &+ 1] & 0xC0 == 0x80 {
                let cp = (Int(c & 0x1F) << 6) | Int(b[i &+ 1] & 0x3F)
                let l = Int(fold[cp &- 0x80])
                row = Int(table[row &+ Int(classOf[0xC0 | (l >> 6)])])
                let o1 = table[row &+ C]
                if o1 >= 0 { report(b, o1, i &+ 1, &candidates) }
                row = Int(table[row &+ Int(classOf[0x80 | (l & 0x3F)])])
                let o2 = table[row &+ C]
                if o2 >= 0 { report(b, o2, i &+ 2, &candidates) }
                i &+= 2
            } else {
                let f = c &- 0x41 < 26 ? c | 0x20 : c
                row = Int(table[row &+ Int(classOf[Int(f)])])
                let o = table[row &+ C]
                if o >= 0 { report(b, o, i &+ 1, &candidates) }
                i &+= 1
            }
        }
    }

    @inline(never)
    private func report(_ b: UnsafeBufferPointer<UInt8>, _ first: Int32, _ end: Int, _ candidates: inout [Range<Int>]) {
        var t = Int(first)
        while t >= 0 {
            let start = end - Int(termLength[t])
            let f = edgeFlags[t]
            if (f & 1 == 0 || !BlocklistFolding.wordCharBefore(b, start))
                && (f & 2 == 0 || !BlocklistFolding.wordCharAt(b, end)) {
                candidates.append(start..<end)
            }
            t = Int(outputLink[t])
        }
    }
}

/// Offset-preserving case folding and Unicode word-character tests for `Blocklist`.
private enum BlocklistFolding {
    /// For each scalar U+0080…U+07FF (index = value - 0x80): its simple lower-case mapping if that is a single
    /// scalar in the same range (so it has the same 2-byte UTF-8 length), else itself.
    static let table: [UInt16] = {
        var t = [UInt16](repeating: 0, count: 0x800 - 0x80)
        for v in UInt32(0x80)..<0x800 {
            var mapped = v
            if let u = Unicode.Scalar(v) {
                let lower = u.properties.lowercaseMapping.unicodeScalars
                if lower.count == 1, let l = lower.first, l.value >= 0x80, l.value < 0x800 {
                    mapped = l.value
                }
            }
            t[Int(v - 0x80)] = UInt16(mapped)
        }
        return t
    }()

    static func fold(_ bytes: inout [UInt8], _ table: [UInt16]) {
        var i = 0
        let n = bytes.count
        while i < n {
            let c = bytes[i]
            if c >= 0xC2 && c <= 0xDF && i + 1 < n && bytes[i + 1] & 0xC0 == 0x80 {
                let cp = (Int(c & 0x1F) << 6) | Int(bytes[i + 1] & 0x3F)
                let l = Int(table[cp - 0x80])
                bytes[i] = UInt8(0xC0 | (l >> 6))
                bytes[i + 1] = UInt8(0x80 | (l & 0x3F))
                i += 2
            } else {
                if c &- 0x41 < 26 { bytes[i] = c | 0x20 }
                i += 1
            }
        }
    }

    static func isWord(_ u: Unicode.Scalar) -> Bool {
        let v = u.value
        if v < 0x80 {
            let c = UInt8(v)
            return c &- 0x30 < 10 || (c | 0x20) &- 0x61 < 26 || c == 0x5F
        }
        let p = u.properties
        if p.isAlphabetic || p.numericType != nil { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .connectorPunctuation: return true
        default: return false
        }
    }

    /// Decodes the scalar whose first byte is at `s` (must be < b.count).
    private static func isWordScalar(_ b: UnsafeBufferPointer<UInt8>, _ s: Int) -> Bool {
        let c = b[s]
        let length: Int
        var v: UInt32
        switch c {
        case 0xC0...0xDF: length = 2; v = UInt32(c & 0x1F)
        case 0xE0...0xEF: length = 3; v = UInt32(c & 0x0F)
        case 0xF0...0xF7: length = 4; v = UInt32(c & 0x07)
        default: return false
        }
        if s + length > b.count { return false }
        for k in 1..<length { v = (v << 6) | UInt32(b[s + k] & 0x3F) }
        guard let u = Unicode.Scalar(v) else { return false }
        return isWord(u)
    }

    /// Is the scalar that ends just before byte offset `i` a word character?
    @inline(__always) static func wordCharBefore(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> Bool {
        if i <= 0 { return false }
        let c = b[i - 1]
        if c < 0x80 { return c &- 0x30 < 10 || (c | 0x20) &- 0x61 < 26 || c == 0x5F }
        var k = i - 1
        while k > 0 && b[k] & 0xC0 == 0x80 && i - k < 4 { k -= 1 }
        return isWordScalar(b, k)
    }

    /// Is the scalar starting at byte offset `i` a word character?
    @inline(__always) static func wordCharAt(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> Bool {
        if i >= b.count { return false }
        let c = b[i]
        if c < 0x80 { return c &- 0x30 < 10 || (c | 0x20) &- 0x61 < 26 || c == 0x5F }
        return isWordScalar(b, i)
    }
}

// PIIScanner.swift
//
// Dependency-free detection of personally identifiable information (PII).
// Everything is a hand-written scan over the UTF-8 bytes of the text (no regular
// expressions): each detector only starts at a plausible token boundary, so the
// whole scan is linear in the length of the text.

public enum PIIKind: String, CaseIterable, Sendable, Codable {
    case email, phone, paymentCard = "payment_card", iban, nationalID = "national_id", ipAddress = "ip_address"
}

public struct PIIFinding: Sendable, Equatable, Hashable {
    public var kind: PIIKind
    /// UTF-8 byte offsets into the scanned text.
    public var range: Range<Int>

    public init(kind: PIIKind, range: Range<Int>) {
        self.kind = kind
        self.range = range
    }
}

public enum PIIScanner {
    /// Every finding of the given kinds, sorted by start, non-overlapping (when two overlap keep the longer;
    /// ties: the earlier kind in PIIKind.allCases order).
    public static func scan(_ text: String, kinds: Set<PIIKind> = Set(PIIKind.allCases)) -> [PIIFinding] {
        if kinds.isEmpty || text.isEmpty { return [] }
        var text = text
        return text.withUTF8 { scanBytes($0, kinds: kinds) }
    }

    /// The text with each finding replaced by a placeholder `[EMAIL]`, `[PHONE]`, `[PAYMENT_CARD]`, `[IBAN]`,
    /// `[NATIONAL_ID]`, `[IP_ADDRESS]`. Findings may be in any order; overlapping findings are merged into one
    /// placeholder (the kind of the earliest-starting one); ranges are clamped to the text.
    public static func redact(_ text: String, _ findings: [PIIFinding]) -> String {
        if findings.isEmpty { return text }
        let sorted = findings.sorted {
            $0.range.lowerBound != $1.range.lowerBound
                ? $0.range.lowerBound < $1.range.lowerBound
                : $0.range.upperBound > $1.range.upperBound
        }
        var text = text
        return text.withUTF8 { b -> String in
            let n = b.count
            var out: [UInt8] = []
            out.reserveCapacity(n + 16 * sorted.count)
            var pos = 0
            for f in sorted {
                let lo = min(max(f.range.lowerBound, 0), n)
                let hi = min(max(f.range.upperBound, 0), n)
                if lo >= hi { continue }
                if lo < pos {
                    // Overlaps the previous redaction: extend it.
                    pos = max(pos, hi)
                    continue
                }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: b[pos..<lo]))
                out.append(contentsOf: placeholder(f.kind).utf8)
                pos = hi
            }
            if pos < n { out.append(contentsOf: UnsafeBufferPointer(rebasing: b[pos..<n])) }
            return String(decoding: out, as: UTF8.self)
        }
    }

    public static func placeholder(_ kind: PIIKind) -> String {
        switch kind {
        case .email: return "[EMAIL]"
        case .phone: return "[PHONE]"
        case .paymentCard: return "[PAYMENT_CARD]"
        case .iban: return "[IBAN]"
        case .nationalID: return "[NATIONAL_ID]"
        case .ipAddress: return "[IP_ADDRESS]"
        }
    }
}

// MARK: - Implementation

extension PIIScanner {
    private typealias Bytes = UnsafeBufferPointer<UInt8>

    private static let cDot: UInt8 = 0x2E      // .
    private static let cDash: UInt8 = 0x2D     // -
    private static let cSpace: UInt8 = 0x20    //
    private static let cPlus: UInt8 = 0x2B     // +
    private static let cAt: UInt8 = 0x40       // @
    private static let cColon: UInt8 = 0x3A    // :
    private static let cLParen: UInt8 = 0x28   // (
    private static let cRParen: UInt8 = 0x29   // )

    /// One pass over the bytes. Number/letter detectors are only tried where a token starts (the previous byte is
    /// not an ASCII letter or digit); emails are anchored on `@`. Each detector re-checks its own boundary rules.
    private static func scanBytes(_ b: Bytes, kinds: Set<PIIKind>) -> [PIIFinding] {
        let wantEmail = kinds.contains(.email)
        let wantPhone = kinds.contains(.phone)
        let wantIP = kinds.contains(.ipAddress)
        // Cards, IBANs and national IDs are also computed when only phones are wanted, so that a phone is never
        // reported inside one of them (scan(kinds: [.phone]) agrees with the phones of a full scan).
        let doCard = wantPhone || kinds.contains(.paymentCard)
        let doIBAN = wantPhone || kinds.contains(.iban)
        let doNID = wantPhone || kinds.contains(.nationalID)

        var out: [PIIFinding] = []
        var strong: [PIIFinding] = []
        var phones: [PIIFinding] = []
        var cardResume = 0, ibanResume = 0, nidResume = 0, phoneResume = 0, ip4Resume = 0, ip6Resume = 0
        var emailEnd = 0
        let n = b.count
        let table = byteClass
        var prevAlnum = false
        var i = 0
        while i < n {
            let c = b[i]
            let k = table[Int(c)]
            if k & (classTokenStart | classAt) != 0 {
                if k & classTokenStart != 0 && !prevAlnum {
                    if isDigit(c) {
                        if doCard && i >= cardResume { cardResume = cardsInRun(b, i, &strong) }
                        if doNID && i >= nidResume, let e = trySSN(b, i) {
                            strong.append(PIIFinding(kind: .nationalID, range: i..<e))
                            nidResume = e
                        }
                        if wantPhone && i >= phoneResume, let e = tryNationalPhone(b, i) {
                            phones.append(PIIFinding(kind: .phone, range: i..<e))
                            phoneResume = e
                        }
                        if wantIP {
                            if i >= ip4Resume, let e = tryIPv4(b, i) {
                                out.append(PIIFinding(kind: .ipAddress, range: i..<e))
                                ip4Resume = e
                            }
                            if i >= ip6Resume, let e = tryIPv6(b, i) {
                                out.append(PIIFinding(kind: .ipAddress, range: i..<e))
                                ip6Resume = e
                            }
                        }
                    } else if k & classAlnum != 0 {
                        if isUpper(c) {
                            if doIBAN && i >= ibanResume, let e = tryIBAN(b, i) {
                                strong.append(PIIFinding(kind: .iban, range: i..<e))
                                ibanResume = e
                            }
                            if doNID && i >= nidResume, let e = tryNINO(b, i) {
                                strong.append(PIIFinding(kind: .nationalID, range: i..<e))
                                nidResume = e
                            }
                        }
                        if wantIP && (c | 0x20) &- 0x61 < 6 && i >= ip6Resume, let e = tryIPv6(b, i) {
                            out.append(PIIFinding(kind: .ipAddress, range: i..<e))
                            ip6Resume = e
                        }
                    } else if c == cColon {
                        if wantIP && i >= ip6Resume, let e = tryIPv6(b, i) {
                            out.append(PIIFinding(kind: .ipAddress, range: i..<e))
                            ip6Resume = e
                        }
                    } else if wantPhone && i >= phoneResume, let e = tryPhoneSymbol(b, i) {  // + or (
                        phones.append(PIIFinding(kind: .phone, range: i..<e))
                        phoneResume = e
                    }
                }
                if k & classAt != 0 && wantEmail, let r = tryEmail(b, i, emailEnd) {
                    out.append(PIIFinding(kind: .email, range: r))
                    emailEnd = r.upperBound
                }
            }
            prevAlnum = k & classAlnum != 0
            i &+= 1
        }

        for p in phones where !strong.contains(where: { $0.range.overlaps(p.range) }) { out.append(p) }
        for f in strong where kinds.contains(f.kind) { out.append(f) }
        return resolve(out)
    }

    // MARK: Overlap resolution

    private static func kindRank(_ k: PIIKind) -> Int {
        switch k {
        case .email: return 0
        case .phone: return 1
        case .paymentCard: return 2
        case .iban: return 3
        case .nationalID: return 4
        case .ipAddress: return 5
        }
    }

    private static func resolve(_ candidates: [PIIFinding]) -> [PIIFinding] {
        guard candidates.count > 1 else { return candidates }
        let byStart = candidates.sorted {
            $0.range.lowerBound != $1.range.lowerBound
                ? $0.range.lowerBound < $1.range.lowerBound
                : $0.range.count > $1.range.count
        }
        var maxEnd = byStart[0].range.upperBound
        var overlapping = false
        for f in byStart.dropFirst() {
            if f.range.lowerBound < maxEnd { overlapping = true; break }
            maxEnd = f.range.upperBound
        }
        if !overlapping { return byStart }

        // Greedy by priority: longer first, then kind order, then position.
        let byPriority = candidates.sorted { a, b in
            let la = a.range.count, lb = b.range.count
            if la != lb { return la > lb }
            let ka = kindRank(a.kind), kb = kindRank(b.kind)
            if ka != kb { return ka < kb }
            return a.range.lowerBound < b.range.lowerBound
        }
        var accepted: [PIIFinding] = []  // kept sorted by start
        accepted.reserveCapacity(byPriority.count)
        for f in byPriority {
            var lo = 0, hi = accepted.count
            while lo < hi {
                let mid = (lo + hi) >> 1
                if accepted[mid].range.lowerBound < f.range.lowerBound { lo = mid + 1 } else { hi = mid }
            }
            if lo > 0 && accepted[lo - 1].range.upperBound > f.range.lowerBound { continue }
            if lo < accepted.count && accepted[lo].range.lowerBound < f.range.upperBound { continue }
            accepted.insert(f, at: lo)
        }
        return accepted
    }

    // MARK: Byte classes

    private static let classAlnum: UInt8 = 1       // ASCII letter or digit
    private static let classTokenStart: UInt8 = 2  // a detector may start here: digit, A-Z, a-f, + ( :
    private static let classAt: UInt8 = 4          // @

    private static let byteClass: [UInt8] = (0..<256).map { v -> UInt8 in
        let c = UInt8(v)
        var k: UInt8 = 0
        if isAlnum(c) { k |= classAlnum }
        if isDigit(c) || isUpper(c) || (c &- 0x61 < 6) || c == cPlus || c == cLParen || c == cColon {
            k |= classTokenStart
        }
        if c == cAt { k |= classAt }
        return k
    }

    @inline(__always) private static func isDigit(_ c: UInt8) -> Bool { c &- 0x30 < 10 }
    @inline(__always) private static func isUpper(_ c: UInt8) -> Bool { c &- 0x41 < 26 }
    @inline(__always) private static func isAlpha(_ c: UInt8) -> Bool { (c | 0x20) &- 0x61 < 26 }
    @inline(__always) private static func isAlnum(_ c: UInt8) -> Bool { isDigit(c) || isAlpha(c) }
    @inline(__always) private static func isUpperOrDigit(_ c: UInt8) -> Bool { isUpper(c) || isDigit(c) }
    @inline(__always) private static func isHex(_ c: UInt8) -> Bool { isDigit(c) || (c | 0x20) &- 0x61 < 6 }

    /// True when a number may start at `i`: the previous byte is not an ASCII letter/digit, and not a `.`/`-`
    /// that itself follows a digit (so we never start in the middle of `12.34` or `2026-11-26`).
    @inline(__always) private static func numBoundaryBefore(_ b: Bytes, _ i: Int) -> Bool {
        if i == 0 { return true }
        let p = b[i - 1]
        if isAlnum(p) { return false }
        if (p == cDot || p == cDash) && i >= 2 && isDigit(b[i - 2]) { return false }
        return true
    }

    /// True when a number may end at `j` (exclusive): the next byte is not an ASCII letter/digit, and not a
    /// `.`/`-` followed by a digit.
    @inline(__always) private static func numBoundaryAfter(_ b: Bytes, _ j: Int) -> Bool {
        if j >= b.count { return true }
        let c = b[j]
        if isAlnum(c) { return false }
        if (c == cDot || c == cDash) && j + 1 < b.count && isDigit(b[j + 1]) { return false }
        return true
    }

    // MARK: Email

    @inline(__always) private static func isLocalChar(_ c: UInt8) -> Bool {
        isAlnum(c) || c == cDot || c == 0x5F /* _ */ || c == 0x25 /* % */ || c == cPlus || c == cDash
    }

    /// `i` is an `@`; `lastEnd` is the end of the previous email (the local part never reaches back before it).
    private static func tryEmail(_ b: Bytes, _ i: Int, _ lastEnd: Int) -> Range<Int>? {
        let n = b.count
        var s = i
        while s > lastEnd && isLocalChar(b[s - 1]) { s -= 1 }
        while s < i && b[s] == cDot { s += 1 }              // local part may not start with a dot
        guard s < i, b[i - 1] != cDot else { return nil }   // ... nor end with one

        var j = i + 1
        var labels = 0
        var end = -1
        var tldOK = false
        while true {
            let ls = j
            var allAlpha = true
            while j < n {
                let c = b[j]
                if isDigit(c) || c == cDash {
                    allAlpha = false
                } else if !isAlpha(c) {
                    break
                }
                j += 1
            }
            if j == ls || b[ls] == cDash || b[j - 1] == cDash { break }
            labels += 1
            end = j
            tldOK = allAlpha && j - ls >= 2
            if j + 1 < n && b[j] == cDot && isAlnum(b[j + 1]) { j += 1 } else { break }
        }
        guard labels >= 2, tldOK, !(end < n && b[end] == cAt) else { return nil }
        return s..<end
    }

    // MARK: Payment card

    private static func luhn(_ b: Bytes, _ s: Int, _ e: Int) -> Bool {
        var sum = 0
        var double = false
        var k = e
        while k > s {
            k -= 1
            let c = b[k]
            guard isDigit(c) else { continue }
            var d = Int(c &- 0x30)
            if double {
                d &*= 2
                if d > 9 { d -= 9 }
            }
            sum &+= d
            double.toggle()
        }
        return sum % 10 == 0
    }

    /// At most this many digit groups of a run are examined at once; a longer run continues as a new run.
    private static let maxCardGroups = 32

    /// `i` starts a run of digit groups separated by single spaces or dashes; appends the cards found in the run
    /// and returns where scanning for cards may resume.
    private static func cardsInRun(_ b: Bytes, _ i: Int, _ out: inout [PIIFinding]) -> Int {
        let n = b.count
        // Quick reject: fewer than 13 digits within the next 23 bytes of the run (the first 13 digits of any card
        // starting here span at most 16 bytes).
        var digitCount = 0
        var k = i
        let limit = min(n, i + 23)
        while k < limit {
            let c = b[k]
            if isDigit(c) {
                digitCount += 1
            } else if !((c == cSpace || c == cDash) && k + 1 < n && isDigit(b[k + 1])) {
                break
            }
            k += 1
        }
        if digitCount < 13 { return i + 1 }

        return withUnsafeTemporaryAllocation(of: Int.self, capacity: 3 * maxCardGroups) { buffer -> Int in
            // Group g spans gs[g]..<ge[g]; sep[g] is the separator after it.
            let gs = buffer.baseAddress!
            let ge = gs + maxCardGroups
            let sep = ge + maxCardGroups
            var g = 0
            var j = i
            var resume = -1
            while true {
                let s = j
                while j < n && isDigit(b[j]) { j += 1 }
                gs[g] = s
                ge[g] = j
                g += 1
                guard j + 1 < n && (b[j] == cSpace || b[j] == cDash) && isDigit(b[j + 1]) else { break }
                if g == maxCardGroups { resume = j + 1; break }
                sep[g - 1] = Int(b[j])
                j += 1
            }

            // A card spans at most 6 groups. If the run was cut, only start candidates whose longest possible
            // extent is inside the collected groups, and resume at the first group not tried.
            let aLimit = resume >= 0 ? g - 6 : g
            var a = 0
            var lastCardEnd = -1
            while a < aLimit {
                var best = -1
                if b[gs[a]] != 0x30 && numBoundaryBefore(b, gs[a]) {
                    var digits = 0
                    var e = a
                    while e < g {
                        let len = ge[e] - gs[e]
                        digits += len
                        if digits > 19 { break }
                        if e == a {
                            // Either one ungrouped run of 13-19 digits, or a first group of exactly 4.
                            if len >= 13 {
                                if numBoundaryAfter(b, ge[e]) && luhn(b, gs[a], ge[e]) { best = e }
                                break
                            }
                            if len != 4 { break }
                        } else {
                            if len < 3 || len > 6 || sep[e - 1] != sep[a] { break }
                            if digits >= 13 && numBoundaryAfter(b, ge[e]) && luhn(b, gs[a], ge[e]) { best = e }
                        }
                        e += 1
                    }
                }
                if best >= 0 {
                    out.append(PIIFinding(kind: .paymentCard, range: gs[a]..<ge[best]))
                    lastCardEnd = ge[best]
                    a = best + 1
                } else {
                    a += 1
                }
            }
            if resume < 0 { return j }
            return a < g ? max(gs[a], lastCardEnd) : resume
        }
    }

    // MARK: IBAN

    private static func mod97(_ b: Bytes, _ s: Int, _ e: Int) -> Bool {
        var r = 0
        @inline(__always) func feed(_ c: UInt8) {
            if isDigit(c) {
                r = (r * 10 + Int(c &- 0x30)) % 97
            } else if isUpper(c) {
                r = (r * 100 + Int(c &- 0x37)) % 97
            }
        }
        var k = s + 4
        while k < e { feed(b[k]); k += 1 }   // separators are skipped by feed
        for k in s..<(s + 4) { feed(b[k]) }
        return r == 1
    }

    private static func tryIBAN(_ b: Bytes, _ i: Int) -> Int? {
        let n = b.count
        guard i + 15 <= n, isUpper(b[i]), isUpper(b[i + 1]), isDigit(b[i + 2]), isDigit(b[i + 3]),
              i == 0 || !isAlnum(b[i - 1]) else { return nil }
        var j = i + 4
        while j < n && isUpperOrDigit(b[j]) { j += 1 }
        if j < n && isAlnum(b[j]) { return nil }   // glued to a lower-case letter
        if j - i > 4 {
            // Compact form.
            let len = j - i
            return len >= 15 && len <= 34 && mod97(b, i, j) ? j : nil
        }
        // Groups of four separated by single spaces; the last group may be shorter. Try the longest first.
        var ends: [(end: Int, chars: Int)] = []
        var chars = 4
        var k = j
        while k + 1 < n && b[k] == cSpace && isUpperOrDigit(b[k + 1]) {
            var m = k + 1
            while m < n && isUpperOrDigit(b[m]) { m += 1 }
            let gl = m - k - 1
            if gl > 4 || (m < n && isAlnum(b[m])) { break }
            chars += gl
            if chars > 34 { break }
            ends.append((m, chars))
            k = m
            if gl < 4 { break }
        }
        for candidate in ends.reversed() where candidate.chars >= 15 {
            if mod97(b, i, candidate.end) { return candidate.end }
        }
        return nil
    }

    // MARK: National IDs

    @inline(__always) private static func digits(_ b: Bytes, _ s: Int, _ count: Int) -> Int? {
        var v = 0
        for k in s..<(s + count) {
            let c = b[k]
            guard isDigit(c) else { return nil }
            v = v * 10 + Int(c &- 0x30)
        }
        return v
    }

    /// US Social Security Number `ddd-dd-dddd` (area not 000/666/9xx, group not 00, serial not 0000).
    private static func trySSN(_ b: Bytes, _ i: Int) -> Int? {
        guard i + 11 <= b.count, b[i + 3] == cDash, b[i + 6] == cDash, numBoundaryBefore(b, i),
              let area = digits(b, i, 3), let group = digits(b, i + 4, 2), let serial = digits(b, i + 7, 4),
              numBoundaryAfter(b, i + 11),
              area != 0, area != 666, area < 900, group != 0, serial != 0
        else { return nil }
        return i + 11
    }

    /// UK National Insurance number: two prefix letters, six digits, suffix A-D; optional single spaces between
    /// the letter prefix, the digit pairs and the suffix (`AB 12 34 56 C`). Upper case only.
    /// Official exclusions: first letter not D F I Q U V; second letter not D F I O Q U V;
    /// prefixes BG GB KN NK NT TN ZZ are never issued.
    private static func tryNINO(_ b: Bytes, _ i: Int) -> Int? {
        guard i + 9 <= b.count else { return nil }
        let c0 = b[i], c1 = b[i + 1]
        guard isUpper(c0), isUpper(c1), i == 0 || !isAlnum(b[i - 1]), ninoPrefixOK(c0, c1) else { return nil }
        return ninoTail(b, i + 2)
    }

    private static func ninoPrefixOK(_ a: UInt8, _ b: UInt8) -> Bool {
        switch a {
        case 0x44, 0x46, 0x49, 0x51, 0x55, 0x56: return false            // D F I Q U V
        default: break
        }
        switch b {
        case 0x44, 0x46, 0x49, 0x4F, 0x51, 0x55, 0x56: return false      // D F I O Q U V
        default: break
        }
        switch (a, b) {
        case (0x42, 0x47), (0x47, 0x42), (0x4B, 0x4E), (0x4E, 0x4B),      // BG GB KN NK
             (0x4E, 0x54), (0x54, 0x4E), (0x5A, 0x5A):                     // NT TN ZZ
            return false
        default:
            return true
        }
    }

    private static func ninoTail(_ b: Bytes, _ start: Int) -> Int? {
        let n = b.count
        var j = start
        for _ in 0..<3 {
            if j < n && b[j] == cSpace { j += 1 }
            guard j + 1 < n, isDigit(b[j]), isDigit(b[j + 1]) else { return nil }
            j += 2
        }
        if j < n && b[j] == cSpace { j += 1 }
        guard j < n, b[j] &- 0x41 < 4 else { return nil }   // A-D
        j += 1
        if j < n && isAlnum(b[j]) { return nil }
        return j
    }

    // MARK: Phone

    @inline(__always) private static func isPhoneSep(_ c: UInt8) -> Bool {
        c == cSpace || c == cDash || c == cDot || c == cLParen || c == cRParen
    }

    /// `i` is a `+` (international number) or `(` (North-American `(NXX) NXX-XXXX`).
    private static func tryPhoneSymbol(_ b: Bytes, _ i: Int) -> Int? {
        let n = b.count
        if b[i] == cPlus {
            guard i + 1 < n, isDigit(b[i + 1]), i == 0 || (!isAlnum(b[i - 1]) && b[i - 1] != cPlus) else { return nil }
            return parseInternational(b, i + 1)
        }
        guard i == 0 || !isAlnum(b[i - 1]) else { return nil }
        return parseNANP(b, i)
    }

    /// `i` is a digit: a North-American number, optionally with the trunk prefix "1-", "1." or "1 ".
    private static func tryNationalPhone(_ b: Bytes, _ i: Int) -> Int? {
        guard numBoundaryBefore(b, i) else { return nil }
        let n = b.count
        if b[i] == 0x31, i + 2 < n, b[i + 1] == cDash || b[i + 1] == cDot || b[i + 1] == cSpace,
           let e = parseNANP(b, i + 2) {
            return e
        }
        return parseNANP(b, i)
    }

    /// `+` already consumed; `p` is the first digit. 8-15 digits, groups separated by at most two of
    /// space/dash/dot/parenthesis (at most one non-parenthesis), parentheses balanced.
    private static func parseInternational(_ b: Bytes, _ p: Int) -> Int? {
        let n = b.count
        var j = p
        var digitCount = 0
        var open = false
        var lastEnd = p
        while j < n && isDigit(b[j]) {
            while j < n && isDigit(b[j]) { digitCount += 1; j += 1 }
            lastEnd = j
            if digitCount > 15 { return nil }
            var k = j
            var o = open
            var plain = 0
            var ok = true
            while k < n && k - j < 2 && isPhoneSep(b[k]) {
                let s = b[k]
                if s == cLParen {
                    if o { ok = false; break }
                    o = true
                } else if s == cRParen {
                    if !o { ok = false; break }
                    o = false
                } else {
                    plain += 1
                    if plain > 1 { ok = false; break }
                }
                k += 1
            }
            if ok && k > j && k < n && isDigit(b[k]) {
                j = k
                open = o
            } else {
                break
            }
        }
        guard digitCount >= 8, !open, numBoundaryAfter(b, lastEnd) else { return nil }
        return lastEnd
    }

    /// North-American national number starting at `p`: `(NXX) NXX-XXXX` (space after `)` optional; last
    /// separator `-`, `.` or space), `NXX-NXX-XXXX` or `NXX.NXX.XXXX`. Area code and exchange start with 2-9.
    private static func parseNANP(_ b: Bytes, _ p: Int) -> Int? {
        let n = b.count
        var area = p
        var exchange: Int
        var end: Int
        if b[p] == cLParen {
            guard p + 13 <= n, isDigit(b[p + 1]), isDigit(b[p + 2]), isDigit(b[p + 3]), b[p + 4] == cRParen
            else { return nil }
            area = p + 1
            var q = p + 5
            if b[q] == cSpace { q += 1 }
            guard q + 8 <= n, isDigit(b[q]), isDigit(b[q + 1]), isDigit(b[q + 2]),
                  b[q + 3] == cDash || b[q + 3] == cDot || b[q + 3] == cSpace,
                  isDigit(b[q + 4]), isDigit(b[q + 5]), isDigit(b[q + 6]), isDigit(b[q + 7])
            else { return nil }
            exchange = q
            end = q + 8
        } else {
            guard p + 12 <= n else { return nil }
            let s = b[p + 3]
            guard s == cDash || s == cDot, b[p + 7] == s,
                  isDigit(b[p]), isDigit(b[p + 1]), isDigit(b[p + 2]),
                  isDigit(b[p + 4]), isDigit(b[p + 5]), isDigit(b[p + 6]),
                  isDigit(b[p + 8]), isDigit(b[p + 9]), isDigit(b[p + 10]), isDigit(b[p + 11])
            else { return nil }
            exchange = p + 4
            end = p + 12
        }
        guard b[area] >= 0x32, b[exchange] >= 0x32, numBoundaryAfter(b, end) else { return nil }
        return end
    }

    // MARK: IP addresses

    /// Four decimal octets 0-255 without leading zeros; returns the end index.
    private static func parseIPv4(_ b: Bytes, _ p: Int) -> Int? {
        let n = b.count
        var j = p
        for octet in 0..<4 {
            if octet > 0 {
                guard j < n, b[j] == cDot else { return nil }
                j += 1
            }
            let s = j
            var v = 0
            while j < n && isDigit(b[j]) {
                v = v * 10 + Int(b[j] &- 0x30)
                j += 1
                if j - s > 3 { return nil }
            }
            let len = j - s
            if len == 0 || v > 255 || (len > 1 && b[s] == 0x30) { return nil }
        }
        return j
    }

    private static func tryIPv4(_ b: Bytes, _ i: Int) -> Int? {
        let n = b.count
        // Fast reject: the first octet (1-3 digits) must be followed by a dot.
        var k = i + 1
        while k < n && k < i + 3 && isDigit(b[k]) { k += 1 }
        guard k < n, b[k] == cDot else { return nil }
        guard i == 0 || (!isAlnum(b[i - 1]) && b[i - 1] != cDot), let e = parseIPv4(b, i),
              e == n || (!isAlnum(b[e]) && !(b[e] == cDot && e + 1 < n && isDigit(b[e + 1])))
        else { return nil }
        return e
    }

    /// IPv6 in full or `::`-compressed form, optionally ending in an embedded IPv4 address. Requires at least one
    /// decimal digit somewhere (so identifiers such as `Face::add` are not addresses).
    private static func parseIPv6(_ b: Bytes, _ p: Int) -> Int? {
        let n = b.count
        var j = p
        var groups = 0
        var compressed = false
        var sawDigit = false
        if b[j] == cColon {
            guard j + 1 < n, b[j + 1] == cColon else { return nil }
            compressed = true
            j += 2
        }
        while j < n && isHex(b[j]) {
            let s = j
            while j < n && isHex(b[j]) {
                if isDigit(b[j]) { sawDigit = true }
                j += 1
                if j - s > 4 { return nil }
            }
            if j + 1 < n && b[j] == cDot && isDigit(b[j + 1]) {
                guard let e = parseIPv4(b, s) else { return nil }
                groups += 2
                j = e
                break
            }
            groups += 1
            if j + 1 < n && b[j] == cColon && b[j + 1] == cColon {
                if compressed { return nil }
                compressed = true
                j += 2
                continue
            }
            if j + 1 < n && b[j] == cColon && isHex(b[j + 1]) {
                j += 1
                continue
            }
            break
        }
        guard groups > 0, sawDigit, compressed ? groups <= 7 : groups == 8 else { return nil }
        if j < n {
            let c = b[j]
            if isAlnum(c) { return nil }
            if c == cColon && j + 1 < n && (isHex(b[j + 1]) || b[j + 1] == cColon) { return nil }
            if c == cDot && j + 1 < n && isAlnum(b[j + 1]) { return nil }
        }
        return j
    }

    private static func tryIPv6(_ b: Bytes, _ i: Int) -> Int? {
        let n = b.count
        let c = b[i]
        if c == cColon {
            guard i + 1 < n, b[i + 1] == cColon else { return nil }
        } else {
            // Fast reject: the first group (1-4 hex digits) must be followed by a colon.
            var k = i + 1
            while k < n && k < i + 4 && isHex(b[k]) { k += 1 }
            guard k < n, b[k] == cColon else { return nil }
        }
        guard i == 0 || (!isAlnum(b[i - 1]) && b[i - 1] != cColon) else { return nil }
        return parseIPv6(b, i)
    }
}

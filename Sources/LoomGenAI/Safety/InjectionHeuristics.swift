// InjectionHeuristics.swift
//
// Cheap, dependency-free prompt-injection / jailbreak heuristics. The text is tokenised in one pass into words
// (ASCII letters/digits lower-cased, bytes >= 0x80 kept; every run of whitespace/punctuation is one separator),
// each word is mapped to a small vocabulary id through a hash table, and the phrase patterns run over the id
// sequence. Role markers and encoded payloads are found by separate linear passes over the raw bytes.

public struct InjectionVerdict: Sendable, Equatable {
    public var score: Double
    public var signals: [String]

    public init(score: Double, signals: [String]) {
        self.score = score
        self.signals = signals
    }
}

public enum InjectionHeuristics {
    /// Prompt-injection / jailbreak likelihood in 0...1 with the names of the signals that fired.
    ///
    /// Signals (each reported once, in this order; the score is the capped sum of their weights):
    /// - `instruction_override` (0.6): ignore/disregard/forget/override [all/any/the/your/...] previous/prior/above/
    ///   earlier/preceding/system instructions/prompts/rules/directions/messages (also "... instructions above").
    /// - `prompt_extraction` (0.5): reveal/show/print/repeat/output/leak [me/us] your/the system prompt /
    ///   initial prompt / hidden instructions / instructions above.
    /// - `persona_jailbreak` (0.5): "you are now DAN", "do anything now", "developer mode", "jailbreak(en)",
    ///   "no restrictions", "without (any) restrictions", "unfiltered", "pretend you are|to be ..." followed within
    ///   12 words by "not bound" / "no rules" / "unrestricted", "act as an unrestricted".
    /// - `role_injection` (0.4): `<|im_start|>`, `<|im_end|>`, `<|system|>`, `<|endoftext|>`, `[system]`, `</s>`,
    ///   `### system` (ending the line or followed by `:`), `system:` at the start of a line.
    /// - `encoded_payload` (0.2): a run of >= 200 base64 characters `[A-Za-z0-9+/=]` (single line breaks after
    ///   >= 40 characters do not end the run).
    public static func assess(_ text: String) -> InjectionVerdict {
        if text.isEmpty { return InjectionVerdict(score: 0, signals: []) }
        var text = text
        return text.withUTF8 { assessBytes($0) }
    }
}

// MARK: - Implementation

extension InjectionHeuristics {
    private typealias Bytes = UnsafeBufferPointer<UInt8>

    /// Vocabulary ids. 0 = any other word.
    private enum W {
        static let ignore: UInt8 = 1, disregard: UInt8 = 2, forget: UInt8 = 3, override: UInt8 = 4
        static let all: UInt8 = 5, any: UInt8 = 6, the: UInt8 = 7, your: UInt8 = 8, of: UInt8 = 9
        static let these: UInt8 = 10, those: UInt8 = 11, my: UInt8 = 12
        static let previous: UInt8 = 13, prior: UInt8 = 14, above: UInt8 = 15, earlier: UInt8 = 16
        static let preceding: UInt8 = 17, system: UInt8 = 18, before: UInt8 = 19, previously: UInt8 = 20
        static let instructions: UInt8 = 21, instruction: UInt8 = 22, prompts: UInt8 = 23, prompt: UInt8 = 24
        static let rules: UInt8 = 25, rule: UInt8 = 26, directions: UInt8 = 27, messages: UInt8 = 28
        static let reveal: UInt8 = 29, show: UInt8 = 30, print: UInt8 = 31, repeat_: UInt8 = 32
        static let output: UInt8 = 33, leak: UInt8 = 34, me: UInt8 = 35, us: UInt8 = 36
        static let initial: UInt8 = 37, hidden: UInt8 = 38
        static let you: UInt8 = 39, are: UInt8 = 40, now: UInt8 = 41, dan: UInt8 = 42, do_: UInt8 = 43
        static let anything: UInt8 = 44, developer: UInt8 = 45, mode: UInt8 = 46, jailbreak: UInt8 = 47
        static let jailbroken: UInt8 = 48, no: UInt8 = 49, restrictions: UInt8 = 50, without: UInt8 = 51
        static let unfiltered: UInt8 = 52, pretend: UInt8 = 53, not: UInt8 = 54, bound: UInt8 = 55
        static let unrestricted: UInt8 = 56, act: UInt8 = 57, as_: UInt8 = 58, an: UInt8 = 59, a: UInt8 = 60
        static let to: UInt8 = 61, be: UInt8 = 62
    }

    private static let vocabularyWords: [(String, UInt8)] = [
        ("ignore", W.ignore), ("disregard", W.disregard), ("forget", W.forget), ("override", W.override),
        ("all", W.all), ("any", W.any), ("the", W.the), ("your", W.your), ("of", W.of),
        ("these", W.these), ("those", W.those), ("my", W.my),
        ("previous", W.previous), ("prior", W.prior), ("above", W.above), ("earlier", W.earlier),
        ("preceding", W.preceding), ("system", W.system), ("before", W.before), ("previously", W.previously),
        ("instructions", W.instructions), ("instruction", W.instruction), ("prompts", W.prompts),
        ("prompt", W.prompt), ("rules", W.rules), ("rule", W.rule), ("directions", W.directions),
        ("messages", W.messages),
        ("reveal", W.reveal), ("show", W.show), ("print", W.print), ("repeat", W.repeat_),
        ("output", W.output), ("leak", W.leak), ("me", W.me), ("us", W.us),
        ("initial", W.initial), ("hidden", W.hidden),
        ("you", W.you), ("are", W.are), ("now", W.now), ("dan", W.dan), ("do", W.do_),
        ("anything", W.anything), ("developer", W.developer), ("mode", W.mode), ("jailbreak", W.jailbreak),
        ("jailbroken", W.jailbroken), ("no", W.no), ("restrictions", W.restrictions), ("without", W.without),
        ("unfiltered", W.unfiltered), ("pretend", W.pretend), ("not", W.not), ("bound", W.bound),
        ("unrestricted", W.unrestricted), ("act", W.act), ("as", W.as_), ("an", W.an), ("a", W.a),
        ("to", W.to), ("be", W.be),
    ]

    /// Words are packed, lower-cased, into two UInt64 used as a 128-bit shift register (vocabulary words are at
    /// most 12 bytes; a word never contains a zero byte, so the zero padding also encodes the length).
    private static let maxWordLength = 12
    private static let tableMask = 255

    @inline(__always) private static func slot(_ w0: UInt64, _ w1: UInt64) -> Int {
        let h = (w0 &* 0x9E37_79B9_7F4A_7C15) ^ (w1 &* 0xC2B2_AE3D_27D4_EB4F)
        return Int(truncatingIfNeeded: h >> 56) & tableMask
    }

    private struct Vocabulary: Sendable {
        var low = [UInt64](repeating: 0, count: tableMask + 1)   // 0 = empty slot
        var high = [UInt64](repeating: 0, count: tableMask + 1)
        var ids = [UInt8](repeating: 0, count: tableMask + 1)

        init() {
            for (word, id) in vocabularyWords {
                var w0: UInt64 = 0, w1: UInt64 = 0
                for c in word.utf8 {
                    w1 = (w1 << 8) | (w0 >> 56)
                    w0 = (w0 << 8) | UInt64(c)
                }
                var s = slot(w0, w1)
                while low[s] != 0 { s = (s + 1) & tableMask }
                low[s] = w0
                high[s] = w1
                ids[s] = id
            }
        }
    }

    private static let vocabulary = Vocabulary()

    private static func assessBytes(_ b: Bytes) -> InjectionVerdict {
        let (tokens, roleMarker, payload) = tokenize(b)
        var override = false, extraction = false, persona = false
        tokens.withUnsafeBufferPointer { t in
            let count = t.count
            var k = 0
            while k < count {
                if t[k] != 0 {
                    if !override && matchOverride(t, k) { override = true }
                    if !extraction && matchExtraction(t, k) { extraction = true }
                    if !persona && matchPersona(t, k) { persona = true }
                    if override && extraction && persona { break }
                }
                k += 1
            }
        }
        var score = 0.0
        var signals: [String] = []
        if override { score += 0.6; signals.append("instruction_override") }
        if extraction { score += 0.5; signals.append("prompt_extraction") }
        if persona { score += 0.5; signals.append("persona_jailbreak") }
        if roleMarker { score += 0.4; signals.append("role_injection") }
        if payload { score += 0.2; signals.append("encoded_payload") }
        return InjectionVerdict(score: min(score, 1.0), signals: signals)
    }

    @inline(__always) private static func isWordByte(_ c: UInt8) -> Bool {
        c >= 0x80 || c &- 0x30 < 10 || (c | 0x20) &- 0x61 < 26
    }

    private static let wordBytes: [Bool] = (0..<256).map { isWordByte(UInt8($0)) }

    @inline(__always) private static func isBlank(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 }

    /// One pass: the vocabulary id of every word (0 = other), plus the raw-byte signals: a role/delimiter marker
    /// and a base64-looking run of >= 200 characters (single line breaks after >= 40 characters do not end it).
    private static func tokenize(_ b: Bytes) -> (tokens: [UInt8], roleMarker: Bool, payload: Bool) {
        let n = b.count
        var out: [UInt8] = []
        out.reserveCapacity(n / 4 + 1)
        var roleMarker = false
        var payload = false
        var run = 0          // current base64 run length
        var segment = 0      // ... since the last line break
        var lineStart = true
        let vocab = vocabulary
        let low = vocab.low, high = vocab.high, ids = vocab.ids
        let wordTable = wordBytes
        var i = 0
        while i < n {
            var c = b[i]
            if !wordTable[Int(c)] {
                switch c {
                case 0x2B, 0x2F, 0x3D:  // + / =  (base64, not word characters)
                    run &+= 1
                    segment &+= 1
                    if run >= 200 { payload = true }
                case 0x0D:
                    break
                case 0x0A:
                    if segment >= 40 { segment = 0 } else { run = 0; segment = 0 }
                default:
                    run = 0
                    segment = 0
                }
                if !roleMarker && (c == 0x3C || c == 0x5B || c == 0x23) && roleMarkerAt(b, i) { roleMarker = true }
                if c == 0x0A {
                    lineStart = true
                } else if !(isBlank(c) || c == 0x0D) {
                    lineStart = false
                }
                i += 1
                continue
            }
            if lineStart && !roleMarker && (c | 0x20) == 0x73 && systemColonAt(b, i) { roleMarker = true }
            lineStart = false
            // The last 16 bytes of the word, lower-cased, as a 128-bit shift register.
            let start = i
            var lastHigh = -1
            var w0: UInt64 = 0, w1: UInt64 = 0
            repeat {
                if c >= 0x80 { lastHigh = i } else if c &- 0x41 < 26 { c |= 0x20 }
                w1 = (w1 << 8) | (w0 >> 56)
                w0 = (w0 << 8) | UInt64(c)
                i &+= 1
                if i == n { break }
                c = b[i]
            } while wordTable[Int(c)]
            let len = i &- start
            if lastHigh < 0 {
                run &+= len
                segment &+= len
            } else {
                run = i &- lastHigh &- 1
                segment = run
            }
            if run >= 200 { payload = true }
            var id: UInt8 = 0
            if len <= maxWordLength {
                var s = slot(w0, w1)
                while low[s] != 0 {
                    if low[s] == w0 && high[s] == w1 { id = ids[s]; break }
                    s = (s + 1) & tableMask
                }
            }
            out.append(id)
        }
        return (out, roleMarker, payload)
    }

    @inline(__always) private static func at(_ t: UnsafeBufferPointer<UInt8>, _ k: Int) -> UInt8 {
        k < t.count ? t[k] : 0
    }

    private static func isNoun(_ w: UInt8) -> Bool {
        switch w {
        case W.instructions, W.instruction, W.prompts, W.prompt, W.rules, W.rule, W.directions, W.messages:
            return true
        default:
            return false
        }
    }

    private static func matchOverride(_ t: UnsafeBufferPointer<UInt8>, _ k: Int) -> Bool {
        switch t[k] {
        case W.ignore, W.disregard, W.forget, W.override: break
        default: return false
        }
        var p = k + 1
        var fillers = 0
        while fillers < 3 {
            switch at(t, p) {
            case W.all, W.any, W.the, W.your, W.of, W.these, W.those, W.my:
                p += 1
                fillers += 1
                continue
            default:
                break
            }
            break
        }
        var adjectives = 0
        while adjectives < 2 {
            switch at(t, p) {
            case W.previous, W.prior, W.above, W.earlier, W.preceding, W.system:
                p += 1
                adjectives += 1
                continue
            default:
                break
            }
            break
        }
        guard isNoun(at(t, p)) else { return false }
        if adjectives > 0 { return true }
        // "ignore the instructions above / before / previously"
        switch at(t, p + 1) {
        case W.above, W.before, W.previously: return true
        default: return false
        }
    }

    private static func matchExtraction(_ t: UnsafeBufferPointer<UInt8>, _ k: Int) -> Bool {
        switch t[k] {
        case W.reveal, W.show, W.print, W.repeat_, W.output, W.leak: break
        default: return false
        }
        var p = k + 1
        if at(t, p) == W.me || at(t, p) == W.us { p += 1 }
        if at(t, p) == W.all { p += 1 }
        guard at(t, p) == W.your || at(t, p) == W.the else { return false }
        p += 1
        let a = at(t, p), b = at(t, p + 1)
        switch a {
        case W.system, W.initial:
            return b == W.prompt || b == W.prompts || b == W.instructions || b == W.instruction
        case W.hidden:
            return b == W.instructions || b == W.instruction || b == W.prompt || b == W.prompts
        case W.instructions, W.prompt:
            return b == W.above
        default:
            return false
        }
    }

    private static func matchPersona(_ t: UnsafeBufferPointer<UInt8>, _ k: Int) -> Bool {
        switch t[k] {
        case W.jailbreak, W.jailbroken, W.unfiltered:
            return true
        case W.you:
            return at(t, k + 1) == W.are && at(t, k + 2) == W.now && at(t, k + 3) == W.dan
        case W.do_:
            return at(t, k + 1) == W.anything && at(t, k + 2) == W.now
        case W.developer:
            return at(t, k + 1) == W.mode
        case W.no:
            return at(t, k + 1) == W.restrictions
        case W.without:
            return at(t, k + 1) == W.restrictions || (at(t, k + 1) == W.any && at(t, k + 2) == W.restrictions)
        case W.act:
            guard at(t, k + 1) == W.as_ else { return false }
            let p = (at(t, k + 2) == W.an || at(t, k + 2) == W.a) ? k + 3 : k + 2
            return at(t, p) == W.unrestricted
        case W.pretend:
            let p: Int
            if at(t, k + 1) == W.you && at(t, k + 2) == W.are {
                p = k + 3
            } else if at(t, k + 1) == W.to && at(t, k + 2) == W.be {
                p = k + 3
            } else {
                return false
            }
            let limit = min(t.count, p + 12)
            var q = p
            while q < limit {
                switch t[q] {
                case W.unrestricted: return true
                case W.not: if at(t, q + 1) == W.bound { return true }
                case W.no: if at(t, q + 1) == W.rules || at(t, q + 1) == W.rule { return true }
                default: break
                }
                q += 1
            }
            return false
        default:
            return false
        }
    }

    // MARK: Raw-byte passes

    private static let markerImStart: [UInt8] = Array("<|im_start|>".utf8)
    private static let markerImEnd: [UInt8] = Array("<|im_end|>".utf8)
    private static let markerSystemTag: [UInt8] = Array("<|system|>".utf8)
    private static let markerEndOfText: [UInt8] = Array("<|endoftext|>".utf8)
    private static let markerEOS: [UInt8] = Array("</s>".utf8)
    private static let markerBracketSystem: [UInt8] = Array("[system]".utf8)
    private static let wordSystem: [UInt8] = Array("system".utf8)

    /// Case-insensitive (ASCII) comparison of `pattern` (lower case) at `i`.
    @inline(__always) private static func hasPrefixCI(_ b: Bytes, _ i: Int, _ pattern: [UInt8]) -> Bool {
        if i + pattern.count > b.count { return false }
        for k in 0..<pattern.count {
            var c = b[i + k]
            if c &- 0x41 < 26 { c |= 0x20 }
            if c != pattern[k] { return false }
        }
        return true
    }

    /// `<|im_start|>`, `<|im_end|>`, `<|system|>`, `<|endoftext|>`, `</s>`, `[system]`, or `### system` followed
    /// by `:` or the end of the line, at `i` (which is `<`, `[` or `#`).
    private static func roleMarkerAt(_ b: Bytes, _ i: Int) -> Bool {
        let n = b.count
        switch b[i] {
        case 0x3C: // <
            return hasPrefixCI(b, i, markerImStart) || hasPrefixCI(b, i, markerImEnd)
                || hasPrefixCI(b, i, markerSystemTag) || hasPrefixCI(b, i, markerEndOfText)
                || hasPrefixCI(b, i, markerEOS)
        case 0x5B: // [
            return hasPrefixCI(b, i, markerBracketSystem)
        case 0x23: // #
            guard i + 2 < n, b[i + 1] == 0x23, b[i + 2] == 0x23 else { return false }
            var j = i + 3
            while j < n && isBlank(b[j]) { j += 1 }
            guard hasPrefixCI(b, j, wordSystem) else { return false }
            j += 6
            while j < n && isBlank(b[j]) { j += 1 }
            return j == n || b[j] == 0x3A || b[j] == 0x0A || b[j] == 0x0D
        default:
            return false
        }
    }

    /// `system:` (blanks allowed before the colon) at `i`, which starts a line.
    private static func systemColonAt(_ b: Bytes, _ i: Int) -> Bool {
        guard hasPrefixCI(b, i, wordSystem) else { return false }
        var j = i + 6
        while j < b.count && isBlank(b[j]) { j += 1 }
        return j < b.count && b[j] == 0x3A
    }
}

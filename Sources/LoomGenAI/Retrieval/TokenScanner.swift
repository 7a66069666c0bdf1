/// A token's location as UTF-8 byte offsets (`start..<end`).
struct TokenSpan: Equatable {
    var start: Int
    var end: Int
}

/// The byte-level tokenizer behind ``TextTokenizer`` and the chunkers.
///
/// A token is a maximal run of Unicode letters (general category L*) and
/// decimal digits (Nd); combining marks (M*) continue a token but never start
/// one. Everything else, including invalid UTF-8 bytes, separates tokens.
enum TokenScanner {
    /// What a scalar contributes to tokenization.
    private enum Kind {
        case separator
        case lowercaseWord  // ASCII lowercase letter or digit
        case uppercaseASCII
        case otherWord  // non-ASCII letter or digit
        case mark
    }

    /// Calls `body(start, end, flags)` for every token in `bytes`, where
    /// `flags` tells whether the token contains ASCII uppercase letters
    /// (`uppercaseASCII`) and/or any non-ASCII scalar (`nonASCII`).
    @inline(__always)
    static func scan(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (_ start: Int, _ end: Int, _ uppercaseASCII: Bool, _ nonASCII: Bool) -> Void) {
        var index = 0
        let count = bytes.count
        var tokenStart = -1
        var upper = false
        var nonASCII = false
        while index < count {
            let (kind, length) = classify(bytes, at: index)
            switch kind {
            case .separator:
                if tokenStart >= 0 {
                    body(tokenStart, index, upper, nonASCII)
                    tokenStart = -1
                }
            case .mark:
                if tokenStart >= 0 { nonASCII = true }
            case .lowercaseWord, .uppercaseASCII, .otherWord:
                if tokenStart < 0 {
                    tokenStart = index
                    upper = false
                    nonASCII = false
                }
                if kind == .uppercaseASCII { upper = true }
                if kind == .otherWord { nonASCII = true }
            }
            index += length
        }
        if tokenStart >= 0 {
            body(tokenStart, count, upper, nonASCII)
        }
    }

    /// All token spans in `bytes`.
    static func spans(_ bytes: UnsafeBufferPointer<UInt8>) -> [TokenSpan] {
        var result: [TokenSpan] = []
        scan(bytes) { start, end, _, _ in result.append(TokenSpan(start: start, end: end)) }
        return result
    }

    /// The number of tokens in `bytes`.
    static func count(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var result = 0
        scan(bytes) { _, _, _, _ in result += 1 }
        return result
    }

    /// Classifies the scalar starting at `index`; returns its kind and byte length.
    @inline(__always)
    private static func classify(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> (Kind, Int) {
        let lead = bytes[index]
        if lead < 0x80 {
            switch lead {
            case 97...122, 48...57: return (.lowercaseWord, 1)
            case 65...90: return (.uppercaseASCII, 1)
            default: return (.separator, 1)
            }
        }
        guard let (scalar, length) = decodeMultiByte(bytes, at: index) else { return (.separator, 1) }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter, .decimalNumber:
            return (.otherWord, length)
        case .nonspacingMark, .spacingMark, .enclosingMark:
            return (.mark, length)
        default:
            return (.separator, length)
        }
    }

    /// Decodes a 2–4 byte UTF-8 sequence, rejecting overlong forms,
    /// surrogates and truncated sequences.
    @inline(__always)
    private static func decodeMultiByte(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> (Unicode.Scalar, Int)? {
        let lead = UInt32(bytes[index])
        let length: Int
        var value: UInt32
        switch lead {
        case 0xC2...0xDF: length = 2; value = lead & 0x1F
        case 0xE0...0xEF: length = 3; value = lead & 0x0F
        case 0xF0...0xF4: length = 4; value = lead & 0x07
        default: return nil
        }
        guard index + length <= bytes.count else { return nil }
        for offset in 1..<length {
            let byte = UInt32(bytes[index + offset])
            guard byte & 0xC0 == 0x80 else { return nil }
            value = (value << 6) | (byte & 0x3F)
        }
        let minimum: UInt32 = length == 2 ? 0x80 : (length == 3 ? 0x800 : 0x10000)
        guard value >= minimum, let scalar = Unicode.Scalar(value) else { return nil }
        return (scalar, length)
    }
}

extension String {
    /// Runs `body` over the string's UTF-8 bytes without copying when possible.
    func withUTF8Bytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let result = utf8.withContiguousStorageIfAvailable(body) {
            return result
        }
        return Array(utf8).withUnsafeBufferPointer(body)
    }
}

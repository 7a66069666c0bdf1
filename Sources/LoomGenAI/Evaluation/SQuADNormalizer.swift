/// SQuAD answer normalisation, as in the official SQuAD v1.1/v2.0 evaluation
/// script (`normalize_answer`): lowercase, delete ASCII punctuation
/// (Python's `string.punctuation`), replace the whole words `a`, `an`, `the`
/// (regex `\b(a|an|the)\b`) by a space, then collapse whitespace.
///
/// Works on Unicode scalars like Python's `str`. A "word" character is a
/// letter, a number or `_`, as in Python's `\w`.
public enum SQuADNormalizer: Sendable {
    /// The normalised string, tokens joined by single spaces.
    public static func normalize(_ text: String) -> String {
        tokens(text).joined(separator: " ")
    }

    /// The normalised tokens (`normalize(text).split()`).
    public static func tokens(_ text: String) -> [String] {
        let withoutPunctuation = text.lowercased().unicodeScalars.filter { !isASCIIPunctuation($0) }
        let withoutArticles = removeArticles(Array(withoutPunctuation))
        return splitOnWhitespace(withoutArticles)
    }

    private static func isASCIIPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E: true
        default: false
        }
    }

    static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "_" { return true }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .decimalNumber, .letterNumber, .otherNumber:
            return true
        default:
            return false
        }
    }

    /// Replaces maximal runs of word scalars equal to a/an/the with a space.
    private static func removeArticles(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var output: [Unicode.Scalar] = []
        output.reserveCapacity(scalars.count)
        var index = 0
        while index < scalars.count {
            guard isWordScalar(scalars[index]) else {
                output.append(scalars[index])
                index += 1
                continue
            }
            var end = index
            while end < scalars.count, isWordScalar(scalars[end]) { end += 1 }
            let word = scalars[index..<end]
            if word.elementsEqual("a".unicodeScalars) || word.elementsEqual("an".unicodeScalars)
                || word.elementsEqual("the".unicodeScalars) {
                output.append(" ")
            } else {
                output.append(contentsOf: word)
            }
            index = end
        }
        return output
    }

    private static func splitOnWhitespace(_ scalars: [Unicode.Scalar]) -> [String] {
        var tokens: [String] = []
        var current = String.UnicodeScalarView()
        for scalar in scalars {
            if scalar.properties.isWhitespace {
                if !current.isEmpty { tokens.append(String(current)) }
                current = String.UnicodeScalarView()
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { tokens.append(String(current)) }
        return tokens
    }
}

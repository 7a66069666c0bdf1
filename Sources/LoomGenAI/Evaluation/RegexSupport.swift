import Foundation

/// Thin, non-throwing wrapper over `NSRegularExpression` (ICU syntax).
enum RegexSupport {
    struct CompileError: Error, Sendable {
        let message: String
    }

    /// Compiles `pattern`; the failure message reads
    /// `invalid regular expression: '<pattern>' (<reason>)`.
    static func compile(_ pattern: String, caseSensitive: Bool = true) -> Result<NSRegularExpression, CompileError> {
        let options: NSRegularExpression.Options = caseSensitive ? [] : [.caseInsensitive]
        do {
            return .success(try NSRegularExpression(pattern: pattern, options: options))
        } catch {
            let reason = (error as NSError).localizedDescription
            return .failure(CompileError(message: "invalid regular expression: '\(pattern)' (\(reason))"))
        }
    }

    /// All matches of `regex` anywhere in `text`.
    static func matches(_ regex: NSRegularExpression, in text: String) -> [NSTextCheckingResult] {
        regex.matches(in: text, range: NSRange(text.startIndex..., in: text))
    }

    /// Whether `regex` matches anywhere in `text` (unanchored search).
    static func hasMatch(_ regex: NSRegularExpression, in text: String) -> Bool {
        regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    /// The text of capture group `group` of `match`, or `nil` if it did not participate.
    static func group(_ group: Int, of match: NSTextCheckingResult, in text: String) -> String? {
        guard group < match.numberOfRanges else { return nil }
        let range = match.range(at: group)
        guard range.location != NSNotFound, let swiftRange = Range(range, in: text) else { return nil }
        return String(text[swiftRange])
    }
}

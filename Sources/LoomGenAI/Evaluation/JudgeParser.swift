import Foundation

/// Turns a judge model's free-form reply into a score (phase 2 of `llm_judge`).
public enum JudgeParser: Sendable {
    /// Parses `reply`, trying these shapes in order and using the first that
    /// yields a score:
    /// 1. a JSON object anywhere in the reply (bare, inside a fenced block, or
    ///    with text around it, possibly nested) with a `score`/`rating` key
    ///    (number, or numeric string); the reason comes from
    ///    `reason`/`explanation`/`rationale`/`justification`;
    /// 2. a labeled score: `Score: 4`, `**Rating:** 4/5`, `score = 4`; the
    ///    reason is a `Reason:` (or `Explanation:`, ...) section if present,
    ///    otherwise the text after the score;
    /// 3. a fraction anywhere: `4/5 — because ...`, `4 out of 5`; the reason is
    ///    the text after it;
    /// 4. a reply that starts with a number: `4`, `4. Clear answer`.
    ///
    /// The score must be a whole number (`4.0` is accepted, `4.5` is not) in
    /// `[min, max]`; otherwise, or when nothing matches, the result is a failure.
    public static func parse(_ reply: String, min: Int, max: Int) -> Result<JudgeVerdict, JudgeParseError> {
        guard min < max else { return .failure(.invalidRange(min: min, max: max)) }
        guard let (rawScore, reason) = JudgeJSONScan.verdict(in: reply) ?? labeled(reply) ?? fraction(reply) ?? leading(reply) else {
            return .failure(.noScore)
        }
        guard let value = Double(rawScore), value.isFinite, value.rounded() == value else {
            return .failure(.notInteger(rawScore))
        }
        guard value >= Double(min), value <= Double(max) else {
            let clamped = value < Double(min) ? Swift.max(value, -1e9) : Swift.min(value, 1e9)
            return .failure(.outOfRange(score: Int(clamped), min: min, max: max))
        }
        return .success(JudgeVerdict(score: Int(value), reason: reason))
    }

    private static let number = #"(-?\d+(?:\.\d+)?)"#

    private static func labeled(_ reply: String) -> (String, String)? {
        let pattern = #"(?i)\b(?:score|rating)\b[\s*:=\-"']*?"# + number + #"(?:\s*(?:/|out\s+of)\s*\d+)?"#
        guard let (score, tail) = firstMatch(pattern, in: reply) else { return nil }
        let reasonPattern = #"(?is)\b(?:reason|explanation|rationale|justification)\b[\s*"']*[:\-–—]\s*(.+)"#
        if let (reason, _) = firstMatch(reasonPattern, in: reply) {
            return (score, clean(reason))
        }
        return (score, clean(tail))
    }

    private static func fraction(_ reply: String) -> (String, String)? {
        guard let (score, tail) = firstMatch(number + #"\s*(?:/|out\s+of)\s*\d+"#, in: reply) else { return nil }
        return (score, clean(tail))
    }

    private static func leading(_ reply: String) -> (String, String)? {
        guard let (score, tail) = firstMatch(#"^[\s*]*"# + number + #"(?![\d])"#, in: reply) else { return nil }
        return (score, clean(tail))
    }

    /// Group 1 of the first match and the text after the whole match.
    private static func firstMatch(_ pattern: String, in text: String) -> (String, String)? {
        guard case .success(let regex) = RegexSupport.compile(pattern),
              let match = RegexSupport.matches(regex, in: text).first,
              let group = RegexSupport.group(1, of: match, in: text),
              let whole = Range(match.range, in: text)
        else { return nil }
        return (group, String(text[whole.upperBound...]))
    }

    /// Drops leading whitespace and separators (`-`, `–`, `—`, `:`, `.`, `,`,
    /// `*`) and trailing whitespace and `*`.
    private static func clean(_ text: String) -> String {
        let leading = CharacterSet(charactersIn: "-–—:.,*").union(.whitespacesAndNewlines)
        let trailing = CharacterSet(charactersIn: "*").union(.whitespacesAndNewlines)
        let head = String(String.UnicodeScalarView(text.unicodeScalars.drop(while: { leading.contains($0) })))
        return head.trimmingCharacters(in: trailing)
    }
}

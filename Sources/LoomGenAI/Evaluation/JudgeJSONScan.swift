import Foundation

/// Finds a judge verdict inside JSON objects embedded in free text.
enum JudgeJSONScan {
    private static let scoreKeys = ["score", "rating"]
    private static let reasonKeys = ["reason", "explanation", "rationale", "justification"]
    /// Bounds the work on adversarial input (many unmatched `{`).
    private static let maxScalars = 100_000
    private static let maxAttempts = 64

    /// The raw score text and reason from the first balanced `{...}` span that
    /// parses as JSON and holds a score key (searched depth-first).
    static func verdict(in reply: String) -> (String, String)? {
        let scalars = Array(reply.unicodeScalars.prefix(maxScalars))
        var start = 0
        var attempts = 0
        while start < scalars.count, attempts < maxAttempts {
            guard scalars[start] == "{" else {
                start += 1
                continue
            }
            attempts += 1
            if let end = matchingBrace(scalars, from: start) {
                let text = String(String.UnicodeScalarView(scalars[start...end]))
                if let value = StrictJSON.parse(text) {
                    if let found = find(in: value) { return found }
                    start = end + 1
                    continue
                }
            }
            start += 1
        }
        return nil
    }

    /// Index of the `}` closing the `{` at `start`, honouring JSON strings.
    private static func matchingBrace(_ scalars: [Unicode.Scalar], from start: Int) -> Int? {
        var depth = 0
        var inString = false
        var escaped = false
        for index in start..<scalars.count {
            let scalar = scalars[index]
            if inString {
                if escaped { escaped = false } else if scalar == "\\" { escaped = true } else if scalar == "\"" { inString = false }
                continue
            }
            switch scalar {
            case "\"": inString = true
            case "{": depth += 1
            case "}":
                depth -= 1
                if depth == 0 { return index }
            default: break
            }
        }
        return nil
    }

    private static func find(in value: StrictJSON) -> (String, String)? {
        switch value {
        case .object(let members):
            let lowered = Dictionary(members.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { first, _ in first })
            if let score = scoreKeys.lazy.compactMap({ lowered[$0] }).first, let text = scoreText(score) {
                let reason = reasonKeys.lazy.compactMap { lowered[$0]?.stringValue }.first ?? ""
                return (text, reason.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            for key in members.keys.sorted() {
                if let member = members[key], let found = find(in: member) { return found }
            }
            return nil
        case .array(let items):
            return items.lazy.compactMap { find(in: $0) }.first
        default:
            return nil
        }
    }

    /// A number as text (`4`, `4.5`), or a string holding a number (`"4"`, `" 4 "`).
    private static func scoreText(_ value: StrictJSON) -> String? {
        switch value {
        case .number(let number): NumberFormatting.format(number)
        case .string(let text): Double(text.trimmingCharacters(in: .whitespaces)) != nil ? text.trimmingCharacters(in: .whitespaces) : nil
        default: nil
        }
    }
}

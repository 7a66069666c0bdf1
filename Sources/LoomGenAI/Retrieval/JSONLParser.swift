import Foundation
import LoomCore

/// Parses JSON Lines: one JSON object per non-blank line, one document each.
struct JSONLParser {
    let textField: String
    let titleField: String

    /// Each line's `textField` string becomes the text; `titleField` (when a
    /// non-blank string) the title, else the text's first line; every other
    /// scalar field (string, number, bool) becomes metadata. `source` is
    /// `"path#line"` (1-based). Bad lines are reported and skipped.
    func parse(_ bytes: [UInt8], path: String) -> DocumentParseResult {
        var result = DocumentParseResult()
        var body = bytes[...]
        if body.starts(with: [0xEF, 0xBB, 0xBF]) { body = body.dropFirst(3) }
        var lineNumber = 0
        var lineStart = body.startIndex
        while lineStart < body.endIndex {
            let lineEnd = body[lineStart...].firstIndex(of: 10) ?? body.endIndex
            lineNumber += 1
            var line = body[lineStart..<lineEnd]
            if line.last == 13 { line = line.dropLast() }
            lineStart = lineEnd < body.endIndex ? lineEnd + 1 : body.endIndex
            if line.allSatisfy({ $0 == 32 || $0 == 9 }) { continue }
            let source = "\(path)#\(lineNumber)"
            switch parseLine(line, source: source) {
            case .document(let document):
                result.documents.append(document)
            case .problem(let message):
                result.problems.append(ParseProblem(source: source, message: message))
            }
        }
        return result
    }

    private enum LineOutcome {
        case document(ParsedDocument)
        case problem(String)
    }

    private func parseLine(
        _ line: ArraySlice<UInt8>,
        source: String
    ) -> LineOutcome {
        func problem(_ message: String) -> LineOutcome { .problem(message) }
        guard String(validating: line, as: UTF8.self) != nil else {
            return problem("not valid UTF-8 text")
        }
        guard let value = try? JSONValue.parse(Array(line)) else {
            return problem("not valid JSON")
        }
        guard case .object(let fields) = value else {
            return problem("not a JSON object")
        }
        guard let field = fields[textField] else {
            return problem("missing field \"\(textField)\"")
        }
        guard case .string(let rawText) = field else {
            return problem("field \"\(textField)\" is not a string")
        }
        let text = TextScan.trimmed(rawText)
        guard !text.isEmpty else {
            return problem("field \"\(textField)\" is empty")
        }
        var metadata: [String: String] = [:]
        for (key, value) in fields where key != textField && key != titleField {
            switch value {
            case .string(let text): metadata[key] = text
            case .bool(let flag): metadata[key] = flag ? "true" : "false"
            case .number: metadata[key] = FlowValues.text(value)
            default: break
            }
        }
        var title: String?
        if case .string(let rawTitle)? = fields[titleField], !TextScan.isBlank(rawTitle) {
            title = TextScan.clampTitle(rawTitle)
        }
        let fallbackTitle = TextScan.firstNonBlankLine(text).map(TextScan.clampTitle) ?? source
        return .document(ParsedDocument(
            source: source,
            title: title ?? fallbackTitle,
            text: String(text),
            metadata: metadata
        ))
    }
}

/// Rule-based sentence segmentation over UTF-8 bytes.
///
/// A sentence ends after `.`, `!` or `?` (plus any further terminators and
/// closing quotes/brackets) when followed by whitespace or the end of the
/// text, and at a blank line (paragraph end). A `.` does not end a sentence
/// after a known abbreviation (`e.g.`, `i.e.`, `Mr.`, `Dr.`, …) or a single
/// capital initial (`J. Smith`); decimals such as `3.14` never split because
/// the `.` is not followed by whitespace.
enum SentenceSplitter {
    /// Lowercased abbreviations (without their final `.`) that do not end a sentence.
    static let abbreviations: Set<String> = [
        "e.g", "i.e", "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "cf", "fig",
        "approx", "dept", "inc", "ltd", "vol", "pp", "al",
    ]

    /// Byte ranges of the sentences, trimmed of surrounding whitespace.
    static func sentences(_ bytes: [UInt8]) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var start = -1
        var index = 0
        let count = bytes.count
        func close(_ end: Int) {
            if start >= 0 {
                var trimmedEnd = end
                while trimmedEnd > start, isASCIIWhitespace(bytes[trimmedEnd - 1]) { trimmedEnd -= 1 }
                if trimmedEnd > start { result.append(start..<trimmedEnd) }
            }
            start = -1
        }
        while index < count {
            let byte = bytes[index]
            if byte == 10 {
                if endsParagraph(bytes, newlineAt: index) { close(index) }
                index += 1
                continue
            }
            if start < 0 {
                if !isASCIIWhitespace(byte) { start = index }
            }
            if byte == 46 || byte == 33 || byte == 63 {  // . ! ?
                let end = terminatorEnd(bytes, from: index)
                let atBoundary = end == count || isASCIIWhitespace(bytes[end])
                let singleDot = byte == 46 && end == index + 1
                if atBoundary, !(singleDot && isAbbreviation(bytes, dotAt: index)) {
                    close(end)
                    index = end
                    continue
                }
                index = end
                continue
            }
            index += 1
        }
        close(count)
        return result
    }

    /// `true` if the line after the newline at `index` is blank (or absent).
    private static func endsParagraph(_ bytes: [UInt8], newlineAt index: Int) -> Bool {
        var next = index + 1
        while next < bytes.count, bytes[next] == 32 || bytes[next] == 9 || bytes[next] == 13 { next += 1 }
        return next == bytes.count || bytes[next] == 10
    }

    /// End of a run of terminators and closing punctuation starting at `index`.
    private static func terminatorEnd(_ bytes: [UInt8], from index: Int) -> Int {
        var end = index
        while end < bytes.count {
            switch bytes[end] {
            case 46, 33, 63, 34, 39, 41, 93:  // . ! ? " ' ) ]
                end += 1
            case 0xE2 where end + 2 < bytes.count && bytes[end + 1] == 0x80
                && (bytes[end + 2] == 0x9D || bytes[end + 2] == 0x99):  // ” ’
                end += 3
            default:
                return end
            }
        }
        return end
    }

    /// `true` if the word ending at the `.` at `dotAt` is a known abbreviation
    /// or a single capital letter.
    private static func isAbbreviation(_ bytes: [UInt8], dotAt: Int) -> Bool {
        var start = dotAt
        while start > 0 {
            let byte = bytes[start - 1]
            let isLetter = (byte >= 97 && byte <= 122) || (byte >= 65 && byte <= 90)
            guard isLetter || byte == 46 else { break }
            start -= 1
        }
        guard start < dotAt else { return false }
        let word = bytes[start..<dotAt]
        if word.count == 1, let letter = word.first, letter >= 65, letter <= 90 { return true }
        let lowered = String(decoding: word.map { ($0 >= 65 && $0 <= 90) ? $0 + 32 : $0 }, as: UTF8.self)
        return abbreviations.contains(lowered)
    }
}

/// The `headings` strategy: Markdown sections, split further when too long.
enum HeadingChunker {
    /// A section: its byte range (heading line included) and heading path.
    private struct Section {
        var range: Range<Int>
        var path: String?
    }

    /// Splits at ATX headings outside fenced code. Each section becomes one
    /// chunk when it has at most `maxTokens` tokens; otherwise its paragraphs
    /// (blank-line separated, fenced blocks kept whole) are packed greedily
    /// up to `maxTokens`, and a paragraph that alone exceeds `maxTokens` is
    /// cut into token windows.
    static func pieces(_ source: ChunkSource, maxTokens: Int) -> [ChunkPiece] {
        var result: [ChunkPiece] = []
        for section in sections(source) {
            let range = source.trimmed(section.range)
            let tokens = source.tokens(in: range)
            if tokens.count <= maxTokens {
                result.append(ChunkPiece(
                    start: range.lowerBound, end: range.upperBound,
                    tokenCount: tokens.count, heading: section.path))
            } else {
                result += packParagraphs(source, section: range, path: section.path, maxTokens: maxTokens)
            }
        }
        return result
    }

    /// Cuts the text into sections at headings, tracking the heading path.
    private static func sections(_ source: ChunkSource) -> [Section] {
        var result: [Section] = []
        var fences = MarkdownSyntax.FenceTracker()
        var stack: [MarkdownSyntax.Heading] = []
        var sectionStart = 0
        var path: String?
        for line in source.lines(in: 0..<source.bytes.count) {
            let text = source.line(line)
            if fences.consume(text) { continue }
            guard let heading = MarkdownSyntax.heading(text) else { continue }
            if sectionStart < line.lowerBound {
                result.append(Section(range: sectionStart..<line.lowerBound, path: path))
            }
            while let last = stack.last, last.level >= heading.level { stack.removeLast() }
            stack.append(heading)
            let names = stack.map(\.text).filter { !$0.isEmpty }
            path = names.isEmpty ? nil : names.joined(separator: " > ")
            sectionStart = line.lowerBound
        }
        if sectionStart < source.bytes.count {
            result.append(Section(range: sectionStart..<source.bytes.count, path: path))
        }
        return result
    }

    /// Blank-line separated paragraphs of a section; blank lines inside fenced
    /// code do not split.
    private static func paragraphs(_ source: ChunkSource, in range: Range<Int>) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var fences = MarkdownSyntax.FenceTracker()
        var current: Range<Int>?
        for line in source.lines(in: range) {
            let wasInsideFence = fences.isInsideFence
            _ = fences.consume(source.line(line))
            if !wasInsideFence, source.isBlank(line) {
                if let paragraph = current { result.append(paragraph) }
                current = nil
            } else {
                current = (current?.lowerBound ?? line.lowerBound)..<line.upperBound
            }
        }
        if let paragraph = current { result.append(paragraph) }
        return result
    }

    /// Packs paragraphs into pieces of at most `maxTokens` tokens.
    private static func packParagraphs(
        _ source: ChunkSource, section: Range<Int>, path: String?, maxTokens: Int
    ) -> [ChunkPiece] {
        var result: [ChunkPiece] = []
        var group: ChunkPiece?
        for paragraph in paragraphs(source, in: section) {
            let tokens = source.tokens(in: paragraph)
            if tokens.count > maxTokens {
                if let pending = group { result.append(pending) }
                group = nil
                result += TokenWindows.pieces(source, tokens: tokens, size: maxTokens, overlap: 0, heading: path)
            } else if var pending = group, pending.tokenCount + tokens.count <= maxTokens {
                pending.end = paragraph.upperBound
                pending.tokenCount += tokens.count
                group = pending
            } else {
                if let pending = group { result.append(pending) }
                group = ChunkPiece(
                    start: paragraph.lowerBound, end: paragraph.upperBound,
                    tokenCount: tokens.count, heading: path)
            }
        }
        if let pending = group { result.append(pending) }
        return result
    }
}

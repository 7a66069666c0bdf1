import Foundation
import Testing
import LoomGenAI

@Suite struct ChunkerTests {
    @Test func tokenWindowsWithOverlap() {
        let chunks = Chunker.chunk("a b c d e f g", strategy: .tokens(size: 3, overlap: 1))
        #expect(chunks.map(\.text) == ["a b c", "c d e", "e f g"])
        #expect(chunks.map(\.tokenCount) == [3, 3, 3])
        #expect(chunks.map(\.ordinal) == [0, 1, 2])
        #expect(chunks.allSatisfy { $0.heading == nil })
    }

    @Test func tokenWindowsPreserveOriginalText() {
        let chunks = Chunker.chunk("  Hello,  world! Foo-bar baz.  ", strategy: .tokens(size: 2, overlap: 0))
        #expect(chunks.map(\.text) == ["Hello,  world", "Foo-bar", "baz"])
        let last = Chunker.chunk("one two three four five", strategy: .tokens(size: 4, overlap: 2))
        #expect(last.map(\.text) == ["one two three four", "three four five"])
    }

    @Test func headingPathsAndFencedCode() {
        let text = """
            Preamble text.

            # Install

            Intro.

            ## Linux

            Run apt.

            ```sh
            # not a heading
            ```

            ## macOS

            Use brew.

            # Usage
            Go.
            """
        let chunks = Chunker.chunk(text, strategy: .headings(maxTokens: 100))
        #expect(chunks.map(\.heading) == [nil, "Install", "Install > Linux", "Install > macOS", "Usage"])
        #expect(chunks.map(\.text) == [
            "Preamble text.",
            "# Install\n\nIntro.",
            "## Linux\n\nRun apt.\n\n```sh\n# not a heading\n```",
            "## macOS\n\nUse brew.",
            "# Usage\nGo.",
        ])
        #expect(chunks[2].tokenCount == 7)
    }

    @Test func longSectionsSplitByParagraphThenWindows() {
        let text = "# Big\n\none two three\n\nfour five six\n\na b c d e f g h"
        let chunks = Chunker.chunk(text, strategy: .headings(maxTokens: 5))
        #expect(chunks.map(\.text) == ["# Big\n\none two three", "four five six", "a b c d e", "f g h"])
        #expect(chunks.map(\.tokenCount) == [4, 3, 5, 3])
        #expect(chunks.allSatisfy { $0.heading == "Big" })
    }

    @Test func sentencePackingRespectsAbbreviationsDecimalsAndOverlap() {
        let text = "Dr. Smith paid 3.14 dollars, e.g. for tea. He said hi! Is it true? Yes.\n\n"
            + "New paragraph without period\nsame para. Last"
        let chunks = Chunker.chunk(text, strategy: .sentences(maxTokens: 10, overlapSentences: 1))
        #expect(chunks.map(\.text) == [
            "Dr. Smith paid 3.14 dollars, e.g. for tea.",
            "He said hi! Is it true? Yes.",
            "Yes.\n\nNew paragraph without period\nsame para. Last",
        ])
        #expect(chunks.map(\.tokenCount) == [10, 7, 8])
    }

    @Test func sentencesWithoutOverlapAndParagraphBreaks() {
        let text = "First line without stop\n\nSecond one. Third?"
        let chunks = Chunker.chunk(text, strategy: .sentences(maxTokens: 4, overlapSentences: 0))
        #expect(chunks.map(\.text) == ["First line without stop", "Second one. Third?"])
    }

    @Test func overlongSentenceBecomesTokenWindows() {
        let text = "one two three four five six seven. Short one."
        let chunks = Chunker.chunk(text, strategy: .sentences(maxTokens: 3, overlapSentences: 1))
        #expect(chunks.map(\.text) == ["one two three", "four five six", "seven", "Short one."])
    }

    @Test func blankTextGivesNoChunks() {
        let strategies: [ChunkingStrategy] = [
            .tokens(size: 3, overlap: 1), .headings(maxTokens: 5), .sentences(maxTokens: 5, overlapSentences: 1),
        ]
        for strategy in strategies {
            #expect(Chunker.chunk("", strategy: strategy).isEmpty)
            #expect(Chunker.chunk(" \n\t\n  ", strategy: strategy).isEmpty)
            #expect(Chunker.chunk("... !!! ---", strategy: strategy).isEmpty)
        }
    }

    @Test func randomTextNeverYieldsEmptyChunksAndCountsMatch() {
        var random = TestRandom(seed: 11)
        let pieces = ["word", "Other", "é", "3.14", ".", "!", "?", " ", " ", "\n", "\n\n", "# ", "## ", "```",
                      "e.g.", "Mr.", "—", "\t", "x\u{301}", "日本語"]
        let strategies: [ChunkingStrategy] = [
            .tokens(size: 4, overlap: 2), .tokens(size: 1, overlap: 0), .headings(maxTokens: 6),
            .headings(maxTokens: 1), .sentences(maxTokens: 5, overlapSentences: 2),
            .sentences(maxTokens: 1, overlapSentences: 0),
        ]
        for _ in 0..<200 {
            let length = Int(random.next() % 80)
            let text = (0..<length).map { _ in pieces[Int(random.next() % UInt64(pieces.count))] }.joined()
            for strategy in strategies {
                let chunks = Chunker.chunk(text, strategy: strategy)
                for chunk in chunks {
                    #expect(!chunk.text.isEmpty)
                    #expect(chunk.tokenCount >= 1)
                    #expect(TextTokenizer.count(chunk.text) == chunk.tokenCount)
                    #expect(text.contains(chunk.text))
                }
                #expect(chunks.map(\.ordinal) == Array(chunks.indices))
            }
        }
    }

    @Test func validationRejectsBadValues() {
        #expect(throws: ValidationError.self) { try ChunkingStrategy.tokens(size: 0, overlap: 0).validate() }
        #expect(throws: ValidationError.self) { try ChunkingStrategy.tokens(size: 5, overlap: 5).validate() }
        #expect(throws: ValidationError.self) { try ChunkingStrategy.tokens(size: 5, overlap: -1).validate() }
        #expect(throws: ValidationError.self) { try ChunkingStrategy.headings(maxTokens: 0).validate() }
        #expect(throws: ValidationError.self) {
            try ChunkingStrategy.sentences(maxTokens: 10, overlapSentences: -1).validate()
        }
        #expect(throws: Never.self) { try ChunkingStrategy.tokens(size: 5, overlap: 4).validate() }
        do {
            try ChunkingStrategy.tokens(size: 5, overlap: 7).validate()
            Issue.record("expected a validation error")
        } catch let error as ValidationError {
            #expect(error.message == "tokens chunking: overlap (7) must be smaller than size (5)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func strategyJSONRoundTrip() throws {
        let decoder = JSONDecoder()
        let cases: [(String, ChunkingStrategy)] = [
            (#"{"kind":"tokens","size":200,"overlap":40}"#, .tokens(size: 200, overlap: 40)),
            (#"{"kind":"headings","max_tokens":400}"#, .headings(maxTokens: 400)),
            (#"{"kind":"sentences","max_tokens":200,"overlap_sentences":1}"#,
             .sentences(maxTokens: 200, overlapSentences: 1)),
            (#"{"kind":"tokens","size":10}"#, .tokens(size: 10, overlap: 0)),
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        for (json, expected) in cases {
            let decoded = try decoder.decode(ChunkingStrategy.self, from: Data(json.utf8))
            #expect(decoded == expected)
            let reencoded = try decoder.decode(ChunkingStrategy.self, from: encoder.encode(decoded))
            #expect(reencoded == expected)
        }
        #expect(String(decoding: try encoder.encode(ChunkingStrategy.headings(maxTokens: 400)), as: UTF8.self)
            == #"{"kind":"headings","max_tokens":400}"#)
        #expect(throws: DecodingError.self) {
            try decoder.decode(ChunkingStrategy.self, from: Data(#"{"kind":"words","size":3}"#.utf8))
        }
        #expect(throws: DecodingError.self) {
            try decoder.decode(ChunkingStrategy.self, from: Data(#"{"kind":"tokens","size":10,"overlap":10}"#.utf8))
        }
    }
}

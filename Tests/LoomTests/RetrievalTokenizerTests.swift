import Testing
import LoomGenAI

@Suite struct TokenizerTests {
    @Test func splitsOnNonLetterDigitsAndLowercases() {
        let text = "Hello, World! café 3.14 snake_case ÉCOLE Straße x2"
        let expected = ["hello", "world", "café", "3", "14", "snake", "case", "école", "straße", "x2"]
        #expect(TextTokenizer.terms(text) == expected)
        #expect(TextTokenizer.count(text) == expected.count)
    }

    @Test func combiningMarksStayInsideTokens() {
        #expect(TextTokenizer.terms("Cafe\u{301} au lait") == ["cafe\u{301}", "au", "lait"])
        #expect(TextTokenizer.terms("\u{301}x") == ["x"])
    }

    @Test func emptyAndSeparatorOnlyText() {
        #expect(TextTokenizer.terms("").isEmpty)
        #expect(TextTokenizer.terms("  ...!!! \n\t —").isEmpty)
        #expect(TextTokenizer.count("") == 0)
    }

    @Test func hugeLineIsCounted() {
        let line = String(repeating: "word ", count: 100_000)
        #expect(TextTokenizer.count(line) == 100_000)
    }
}

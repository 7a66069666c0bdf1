import Testing
@testable import LoomGenAI

private func texts(_ list: Blocklist, _ text: String) -> [String] {
    let bytes = Array(text.utf8)
    return list.matches(in: text).map { String(decoding: bytes[$0], as: UTF8.self) }
}

@Suite("Blocklist")
struct BlocklistTests {
    @Test func wholeWordsOnly() {
        let list = Blocklist(["class"])
        #expect(list.matches(in: "a classic example").isEmpty)
        #expect(list.matches(in: "subclass").isEmpty)
        #expect(list.matches(in: "class_name").isEmpty)
        #expect(list.matches(in: "class2").isEmpty)
        #expect(list.matches(in: "a class act") == [2..<7])
        #expect(list.matches(in: "class") == [0..<5])
        #expect(list.matches(in: "(class).") == [1..<6])
        #expect(list.matches(in: "class class") == [0..<5, 6..<11])
    }

    @Test func caseInsensitive() {
        let list = Blocklist(["Bad Word", "evil"])
        #expect(texts(list, "This is a BAD WORD here, and EvIl too") == ["BAD WORD", "EvIl"])
        #expect(texts(list, "bad words") == [])
        #expect(texts(list, "bad  word") == [])   // exact inner spacing
    }

    @Test func multiWordPhraseAndLongestFirst() {
        let list = Blocklist(["bad", "bad word", "word"])
        #expect(texts(list, "a bad word!") == ["bad word"])
        #expect(texts(list, "a bad day, a word") == ["bad", "word"])
        let nested = Blocklist(["new york", "york city", "new york city"])
        #expect(texts(nested, "in New York City today") == ["New York City"])
        #expect(texts(nested, "in new york, city") == ["new york"])
    }

    @Test func exactByteRangesWithNonASCIIBefore() {
        let list = Blocklist(["secret"])
        let text = "Größe — 日本 secret!"
        let r = list.matches(in: text)
        // "Größe" = 7 bytes, " — " = 5, "日本" = 6, " " = 1 → "secret" at 19..<25
        #expect(r == [19..<25])
        #expect(texts(list, text) == ["secret"])
    }

    @Test func unicodeBoundariesAndFolding() {
        let list = Blocklist(["class", "école", "straße", "привет"])
        #expect(texts(list, "“class”") == ["class"])                // curly quotes are not letters
        #expect(texts(list, "class—ok") == ["class"])
        #expect(texts(list, "classé").isEmpty)                       // é is a letter
        #expect(texts(list, "éclass").isEmpty)
        #expect(texts(list, "ÉCOLE") == ["ÉCOLE"])                   // 2-byte Latin folding
        #expect(texts(list, "STRAßE") == ["STRAßE"])
        #expect(texts(list, "ПРИВЕТ, мир") == ["ПРИВЕТ"])            // Cyrillic folding
        #expect(texts(list, "приветствую").isEmpty)
        let upperTerm = Blocklist(["ÉCOLE"])
        #expect(texts(upperTerm, "une école") == ["école"])
    }

    @Test func punctuationInTerms() {
        let list = Blocklist(["c++", "@admin", "  padded  "])
        #expect(texts(list, "I like c++11 and c++.") == ["c++", "c++"])
        #expect(texts(list, "ping @admin now") == ["@admin"])
        #expect(texts(list, "x@admin") == ["@admin"])              // left edge is not a word char
        #expect(texts(list, "a padded b") == ["padded"])
        #expect(texts(list, "@adminx").isEmpty)
    }

    @Test func emptyAndDegenerate() {
        #expect(Blocklist([]).matches(in: "anything").isEmpty)
        #expect(Blocklist(["", "   "]).matches(in: "anything").isEmpty)
        #expect(Blocklist(["a"]).matches(in: "").isEmpty)
        #expect(Blocklist(["a", "a"]).matches(in: "a b a") == [0..<1, 4..<5])
    }

    @Test func termsCoveringEveryByteValue() {
        // Non-ASCII terms whose UTF-8 uses every lead/continuation byte, plus all printable ASCII.
        var terms = (0x20...0x7E).map { String(UnicodeScalar(UInt8($0))) }
        terms += stride(from: 0x80, to: 0x2000, by: 7).compactMap { Unicode.Scalar($0).map { String($0) } }
        terms += ["日本", "🙂", "\u{10FFFF}"]
        let list = Blocklist(terms)
        #expect(texts(list, "x 日本 y").contains("日本"))
        #expect(texts(list, "🙂") == ["🙂"])
    }

    @Test func manyTerms() {
        let terms = (0..<500).map { "term\($0)" }
        let list = Blocklist(terms)
        #expect(texts(list, "x term42 term499 term500 term4") == ["term42", "term499", "term4"])
    }
}

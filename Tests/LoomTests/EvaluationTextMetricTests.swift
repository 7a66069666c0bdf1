import Testing
@testable import LoomGenAI

@Suite struct SQuADNormalizerTests {
    @Test func lowercasesStripsPunctuationArticlesAndWhitespace() {
        #expect(SQuADNormalizer.normalize("The  Quick, brown fox!") == "quick brown fox")
        #expect(SQuADNormalizer.normalize("An apple a day") == "apple day")
        // Only whole words are articles; punctuation is deleted, not spaced.
        #expect(SQuADNormalizer.normalize("Theater isn't anathema") == "theater isnt anathema")
        #expect(SQuADNormalizer.normalize("") == "")
        #expect(SQuADNormalizer.normalize("  the  ") == "")
    }
}

@Suite struct ExactMatchTests {
    @Test func normalisedComparison() {
        // "The Cat!" → "cat"; "cat" → "cat".
        #expect(evalRun(.exactMatch(), evalRow("The Cat!", expected: "cat")).score == 1)
        #expect(evalRun(.exactMatch(), evalRow("The Cat!", expected: "cat")).passed == true)
        #expect(evalRun(.exactMatch(), evalRow("a dog", expected: "cat")).score == 0)
    }

    @Test func rawComparisonHonoursCase() {
        #expect(evalRun(.exactMatch(normalize: false), evalRow(" Cat\n", expected: "Cat")).score == 1)
        #expect(evalRun(.exactMatch(normalize: false), evalRow("Cat", expected: "cat")).score == 0)
        #expect(evalRun(.exactMatch(normalize: false, caseSensitive: false), evalRow("Cat", expected: "cat")).score == 1)
    }

    @Test func missingExpectedIsAnError() {
        let result = evalRun(.exactMatch(), evalRow("x"))
        #expect(result.score == nil)
        #expect(result.error == "row has no expected answer")
    }
}

@Suite struct TokenF1Tests {
    @Test func partialOverlap() {
        // prediction → [paris, is, capital, of, france] (5), reference → [paris] (1).
        // overlap 1: P = 1/5, R = 1, F1 = 2·0.2·1 / 1.2 = 1/3.
        let result = evalRun(.tokenF1, evalRow("Paris is the capital of France.", expected: "Paris"))
        #expect(evalApprox(result.score, 1.0 / 3.0))
        #expect(evalApprox(result.details["precision"], 0.2))
        #expect(evalApprox(result.details["recall"], 1))
    }

    @Test func equalLengthsAndArticles() {
        // [cat, sat, on, mat] vs [cat, lay, on, mat]: overlap 3 → P = R = F1 = 3/4.
        let prf = TokenF1.compute(prediction: "The cat sat on the mat", reference: "A cat lay on a mat")
        #expect(evalApprox(prf.f1, 0.75))
        #expect(evalApprox(prf.precision, 0.75))
    }

    @Test func duplicatesUseMultisetIntersection() {
        // [cat, cat, cat] vs [cat, dog, cat]: overlap min(3, 2) = 2 → P = R = 2/3.
        let prf = TokenF1.compute(prediction: "the the cat cat cat", reference: "cat dog cat")
        #expect(evalApprox(prf.f1, 2.0 / 3.0))
    }

    @Test func emptySides() {
        // SQuAD: both empty → 1, one empty → 0.
        #expect(TokenF1.compute(prediction: "the", reference: "").f1 == 1)
        #expect(TokenF1.compute(prediction: "cat", reference: "a").f1 == 0)
    }
}

@Suite struct RougeLTests {
    @Test func tokenizerMatchesRougeScore() {
        #expect(RougeL.tokenize("Hello, World! It's 2024.") == ["hello", "world", "it", "s", "2024"])
        // Non-ASCII letters become separators.
        #expect(RougeL.tokenize("Café déjà-vu") == ["caf", "d", "j", "vu"])
        #expect(RougeL.tokenize("  ...  ").isEmpty)
    }

    @Test func oneWordSubstituted() {
        // target [the cat sat on the mat], prediction [the cat lay on the mat]:
        // LCS = the cat on the mat = 5 → P = R = F = 5/6.
        let result = evalRun(.rougeL, evalRow("the cat lay on the mat", expected: "the cat sat on the mat"))
        #expect(evalApprox(result.score, 5.0 / 6.0))
        #expect(evalApprox(result.details["precision"], 5.0 / 6.0))
        #expect(evalApprox(result.details["recall"], 5.0 / 6.0))
    }

    @Test func reorderedWordsAndUnequalLengths() {
        // target [the quick brown fox], prediction [brown fox the quick]: LCS 2 → P = R = 0.5.
        #expect(evalApprox(RougeL.score(target: "the quick brown fox", prediction: "brown fox the quick").f1, 0.5))
        // target [a b c d e] (5), prediction [b d f] (3): LCS [b d] = 2 →
        // P = 2/3, R = 2/5, F = 2·(2/3)·(2/5) / (2/3 + 2/5) = 0.5.
        let prf = RougeL.score(target: "a b c d e", prediction: "b, d; f")
        #expect(evalApprox(prf.precision, 2.0 / 3.0))
        #expect(evalApprox(prf.recall, 0.4))
        #expect(evalApprox(prf.f1, 0.5))
    }

    @Test func emptyTokensScoreZero() {
        #expect(RougeL.score(target: "", prediction: "cat").f1 == 0)
        #expect(RougeL.score(target: "!!!", prediction: "!!!").f1 == 0)
    }
}

@Suite struct ContainsAndRegexTests {
    let answer = "Paris is the capital of France"

    @Test func anyAndAll() {
        let any = evalRun(.contains(values: ["paris", "berlin"]), evalRow(answer))
        #expect(any.score == 1)
        #expect(any.details["matched"] == 1)
        #expect(any.details["total"] == 2)
        let all = evalRun(.contains(values: ["paris", "berlin"], mode: .all), evalRow(answer))
        #expect(all.score == 0)
        #expect(all.passed == false)
        #expect(all.reason == "missing 'berlin'")
        #expect(evalRun(.contains(values: ["paris", "france"], mode: .all), evalRow(answer)).score == 1)
    }

    @Test func caseSensitivity() {
        #expect(evalRun(.contains(values: ["paris"], caseSensitive: true), evalRow(answer)).score == 0)
        #expect(evalRun(.contains(values: ["Paris"], caseSensitive: true), evalRow(answer)).score == 1)
    }

    @Test func defaultsToExpectedAnswer() {
        #expect(evalRun(.contains(), evalRow(answer, expected: "capital of france")).score == 1)
        #expect(evalRun(.contains(), evalRow(answer, expected: "Lyon")).score == 0)
        #expect(evalRun(.contains(), evalRow(answer)).error == "row has no expected answer")
        #expect(evalRun(.contains(), evalRow(answer, expected: "")).error == "expected answer is empty")
    }

    @Test func regexSearchesAnywhere() {
        #expect(evalRun(.regex(pattern: #"\b\d{4}\b"#), evalRow("released in 1999.")).score == 1)
        #expect(evalRun(.regex(pattern: #"\b\d{4}\b"#), evalRow("released in '99.")).score == 0)
        #expect(evalRun(.regex(pattern: "^yes$"), evalRow("YES")).score == 0)
        #expect(evalRun(.regex(pattern: "^yes$", caseSensitive: false), evalRow("YES")).score == 1)
    }

    @Test func invalidRegexBuiltInCodeIsAnErrorNotACrash() {
        let result = evalRun(.regex(pattern: "(unclosed"), evalRow("x"))
        #expect(result.score == nil)
        #expect(result.error?.hasPrefix("invalid regular expression") == true)
    }
}

import Testing
@testable import LoomGenAI

@Suite struct StrictJSONParserTests {
    @Test func acceptsRFC8259Documents() {
        #expect(StrictJSON.parse(#" {"a": [1, -2.5e1, true, false, null], "b": {}} "#)
            == .object(["a": .array([.number(1), .number(-25), .bool(true), .bool(false), .null]), "b": .object([:])]))
        #expect(StrictJSON.parse("0") == .number(0))
        #expect(StrictJSON.parse(#""tab\t quote\" slash\/ \u00e9 \ud83d\ude00""#) == .string("tab\t quote\" slash/ é 😀"))
        #expect(StrictJSON.parse(#""\ud800x""#) == .string("\u{FFFD}x"))
        #expect(StrictJSON.parse(#"{"a": 1, "a": 2}"#) == .object(["a": .number(2)]))
        #expect(StrictJSON.parse("1e400") == .number(.infinity))
    }

    @Test func rejectsLenientExtensions() {
        for text in ["[1,]", #"{"a": 1,}"#, "{a: 1}", "'a'", "01", "1.", ".5", "-", "+1", "NaN", "// c\n1",
                     "[1] x", "", "  ", "\"a\tb\"", #""\x""#, #""\u12""#, "tru", "[", "{\"a\"}", "1 2"] {
            #expect(StrictJSON.parse(text) == nil, "\(text.debugDescription) should be rejected")
        }
    }

    @Test func deepNestingIsRejectedNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(StrictJSON.parse(deep) == nil)
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(StrictJSON.parse(fine) != nil)
    }
}

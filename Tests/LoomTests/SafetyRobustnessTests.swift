import Testing
@testable import LoomGenAI

/// Deterministic SplitMix64.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private let alphabet: [String] = [
    "0", "1", "2", "4", "5", "9", "a", "f", "x", "A", "B", "C", "G", "Z", " ", " ", "-", ".", ":", "::", "+", "(",
    ")", "@", "_", "/", "=", "\n", "<|", "|>", "[", "]", "#", "é", "É", "ß", "日", "🙂", "system", "ignore",
    "previous", "instructions", "4111", "GB82", "WEST", "555", "415", "fe80", "192.168.", "example.com",
]

private func randomText(_ rng: inout SplitMix64) -> String {
    let length = Int(rng.next() % 60)
    var s = ""
    for _ in 0..<length { s += alphabet[Int(rng.next() % UInt64(alphabet.count))] }
    return s
}

/// UTF-8 offsets that start a scalar (plus the end).
private func scalarBoundaries(_ text: String) -> Set<Int> {
    var set: Set<Int> = [0]
    var offset = 0
    for u in text.unicodeScalars {
        offset += UTF8.width(u)
        set.insert(offset)
    }
    return set
}

@Suite("Robustness")
struct RobustnessTests {
    @Test func randomInputsKeepInvariants() {
        var rng = SplitMix64(state: 42)
        let list = Blocklist(["system", "ignore previous", "é", "日", "a", "4111", "c++", "🙂"])
        for _ in 0..<3000 {
            let text = randomText(&rng)
            let n = text.utf8.count
            let bounds = scalarBoundaries(text)

            let findings = PIIScanner.scan(text)
            var last = 0
            for f in findings {
                #expect(f.range.lowerBound >= last && f.range.upperBound <= n && !f.range.isEmpty, "\(text)")
                #expect(bounds.contains(f.range.lowerBound) && bounds.contains(f.range.upperBound), "\(text)")
                last = f.range.upperBound
            }
            for kind in PIIKind.allCases {
                for f in PIIScanner.scan(text, kinds: [kind]) { #expect(f.kind == kind) }
            }
            let redacted = PIIScanner.redact(text, findings)
            #expect(findings.isEmpty ? redacted == text : redacted != text)

            let v = InjectionHeuristics.assess(text)
            #expect(v.score >= 0 && v.score <= 1)
            #expect(Set(v.signals).count == v.signals.count)

            last = 0
            for r in list.matches(in: text) {
                #expect(r.lowerBound >= last && r.upperBound <= n && !r.isEmpty, "\(text)")
                #expect(bounds.contains(r.lowerBound) && bounds.contains(r.upperBound), "\(text)")
                last = r.upperBound
            }
        }
    }

    @Test func pathologicalInputsStayLinear() {
        let inputs = [
            String(repeating: "1", count: 20_000),
            String(repeating: "1 ", count: 10_000),
            String(repeating: "1-", count: 10_000),
            String(repeating: "a@", count: 10_000),
            String(repeating: "a.", count: 10_000) + "@" + String(repeating: "b.", count: 10_000),
            String(repeating: "1.", count: 10_000),
            String(repeating: "a:", count: 10_000),
            String(repeating: "::1 ", count: 5_000),
            String(repeating: "AB12 ", count: 5_000),
            String(repeating: "4111 ", count: 5_000),
            String(repeating: "+1 ", count: 5_000),
            String(repeating: "ignore ", count: 5_000),
            String(repeating: "é", count: 10_000),
        ]
        let clock = ContinuousClock()
        for text in inputs {
            let d = clock.measure {
                _ = PIIScanner.scan(text)
                _ = InjectionHeuristics.assess(text)
                _ = Blocklist(["aa", "a a", "11"]).matches(in: text)
            }
            // Debug build, 20 KB: generous bound that only a quadratic blow-up would exceed.
            #expect(d < .seconds(2), "\(text.prefix(10))…")
        }
    }
}

import Testing

@testable import LoomCore

/// Key and name checks that mirror MLflow's, including the shortcut for ordinary names.
@Suite("Validation")
struct ValidationTests {
    static let names = [
        "loss", "a/b", "a.b", "a..b", "a/..b", "..foo", "..", ".", "./a", "a/.", "a/./b", "a/../b",
        "/a", "a/", "a//b", ".hidden", "a/.b", "...", "a/...", "x:y z", "b0",
    ]

    @Test func theShortcutAgreesWithNormalization() {
        for name in Self.names {
            #expect(Validate.isUniquePath(name) == Validate.normalizedIsUnique(name), "\(name)")
        }
    }

    /// The byte-level shortcut of `Validate.key` accepts a name only if the full check does.
    @Test func thePlainASCIIShortcutNeverAcceptsWhatTheFullCheckRefuses() {
        let extra = ["", "a b", "a\\b", "a\tb", "é", "a/é", "a:b", "a/.../b", "...", ".../a", "a/..", "a/.", "x" + String(repeating: "y", count: 250)]
        for name in Self.names + extra {
            let full = Validate.isUniquePath(name) && !name.isEmpty && name.unicodeScalars.count <= Limits.maxEntityKeyLength
                && name.unicodeScalars.allSatisfy { $0.isASCIIAlnum || "_-./ :".unicodeScalars.contains($0) || $0.properties.isAlphabetic }
            if Validate.isPlainASCIIKey(name, limit: Limits.maxEntityKeyLength) {
                #expect(full, "\(name)")
            } else if full {
                // Declining is fine only for non-ASCII names, which the full check handles.
                #expect(!name.utf8.allSatisfy { $0 < 0x80 }, "\(name)")
            }
        }
    }

    @Test func keysThatWouldResolveToOtherNamesAreRefused() {
        for bad in ["..foo", "..", ".", "./a", "a/./b", "a/../b", "/a", "a/", "a//b"] {
            #expect(throws: LoomError.self, "\(bad)") { try Validate.key(bad) }
        }
        for good in ["loss", "a/b", "a..b", "a/..b", ".hidden", "train/acc:top 1"] {
            #expect(throws: Never.self, "\(good)") { try Validate.key(good) }
        }
    }
}

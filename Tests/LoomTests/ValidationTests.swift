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

    @Test func keysThatWouldResolveToOtherNamesAreRefused() {
        for bad in ["..foo", "..", ".", "./a", "a/./b", "a/../b", "/a", "a/", "a//b"] {
            #expect(throws: LoomError.self, "\(bad)") { try Validate.key(bad) }
        }
        for good in ["loss", "a/b", "a..b", "a/..b", ".hidden", "train/acc:top 1"] {
            #expect(throws: Never.self, "\(good)") { try Validate.key(good) }
        }
    }
}

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

    /// Errors name the field as MLflow does (`metrics[3].name`), and a valid entry never makes
    /// that path (it is built per point, on the hot path, only for an error).
    @Test func fieldPathsAreMadeOnlyForErrors() {
        final class Counter { var made = 0 }
        let counter = Counter()
        func path(_ p: String) -> String { counter.made += 1; return p }
        func message(_ body: () throws -> Void) -> String? {
            do { try body(); return nil } catch let error as LoomError { return error.message } catch { return "\(error)" }
        }
        #expect(message { try Validate.metric(Metric(key: "loss", value: 1, timestamp: 1), path: path("metrics[3]")) } == nil)
        #expect(message { _ = try Validate.param(Param(key: "lr", value: "1"), path: path("params[1]")) } == nil)
        #expect(message { _ = try Validate.runTag(Tag(key: "t", value: "x"), path: path("tags[0]")) } == nil)
        #expect(counter.made == 0)
        #expect(message { try Validate.metric(Metric(key: "a/../b", value: 1, timestamp: 1), path: path("metrics[3]")) }?.contains("'metrics[3].name'") == true)
        #expect(message { try Validate.metric(Metric(key: "m", value: 1, timestamp: -1), path: path("metrics[3]")) }?.contains("'metrics[3].timestamp'") == true)
        #expect(message { _ = try Validate.param(Param(key: "a\\b", value: "1"), path: path("params[1]")) }?.contains("'params[1].key'") == true)
        #expect(message { _ = try Validate.runTag(Tag(key: "", value: "x"), path: path("tags[0]")) }?.contains("'tags[0].key'") == true)
        #expect(message { try Validate.length(String(repeating: "é", count: 6), path: path("v"), limit: 5) } == "'v' exceeds the maximum length of 5 characters")
        #expect(message { try Validate.length(String(repeating: "é", count: 5), path: path("v"), limit: 5) } == nil)
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

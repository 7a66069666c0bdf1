import Foundation
import LoomCore
import LoomData
import Testing

@Suite("Data expectations")
struct ExpectationTests {
    static func validate(_ csv: String, _ yaml: String, now: Date = Date()) throws -> ValidationReport {
        let dir = try DataFiles.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try DataFiles.write(dir, "d.csv", csv)
        var validator = Validator(suite: try ExpectationSuite.parse(yaml: yaml), now: now)
        _ = try TableReader.read(try TableFiles.list(path), into: &validator)
        return validator.report()
    }

    static let people = """
        id,name,age,country,email,seen
        1,ann,31,NO,ann@example.com,2026-11-20T08:00:00Z
        2,bob,,SE,bob-at-example,2026-11-24
        3,cy,140,DK,cy@example.com,1764000000
        3,dee,27,FI,dee@example.com,
        5,eve,-1,NO,,2026-11-25 09:30:00+01:00

        """

    @Test("each rule counts its failures and keeps the failing rows")
    func rules() throws {
        let r = try Self.validate(Self.people, """
            expectations:
              - {rule: not_null, column: age}
              - {rule: unique, column: id}
              - {rule: range, column: age, min: 0, max: 120}
              - {rule: allowed_values, column: country, values: [NO, SE, DK]}
              - {rule: regex, column: email, pattern: '^[^@ ]+@[^@ ]+$'}
              - {rule: row_count, min: 1, max: 5}
              - {rule: unique, column: name}
            """)
        let byName = Dictionary(uniqueKeysWithValues: r.results.map { ($0.name, $0) })
        #expect(r.rows == 5 && !r.passed)
        #expect(byName["not_null(age)"]?.failures == 1 && byName["not_null(age)"]?.checked == 5)
        #expect(byName["not_null(age)"]?.samples.map(\.line) == [3])
        #expect(byName["not_null(age)"]?.samples.first?.values["name"] == .some("bob"))
        #expect(byName["not_null(age)"]?.samples.first?.values["age"] == .some(nil))
        #expect(byName["unique(id)"]?.failures == 1 && byName["unique(id)"]?.samples.first?.values["name"] == .some("dee"))
        // Missing values are skipped by every rule but not_null.
        #expect(byName["range(age)"]?.checked == 4 && byName["range(age)"]?.failures == 2)
        #expect(byName["range(age)"]?.message == "2 of 4 values (50.00%) are not numbers >= 0 and <= 120")
        #expect(byName["allowed_values(country)"]?.failures == 1)
        // YAML's NO is the text NO here, not false.
        #expect(byName["allowed_values(country)"]?.samples.first?.values["country"] == .some("FI"))
        #expect(byName["regex(email)"]?.checked == 4 && byName["regex(email)"]?.failures == 1)
        #expect(byName["row_count"]?.passed == true)
        #expect(byName["unique(name)"]?.passed == true)
    }

    @Test("mostly allows a share of failures")
    func mostly() throws {
        let yaml = { (m: Double) in "expectations:\n  - {rule: not_null, column: age, mostly: \(m)}\n" }
        #expect(try Self.validate(Self.people, yaml(0.8)).passed)
        let strict = try Self.validate(Self.people, yaml(0.85))
        #expect(!strict.passed && strict.results[0].message?.hasSuffix("at most 0 may") == true)
    }

    @Test("schema: types must fit (integers are numbers), exact refuses other columns; an unknown column fails")
    func schema() throws {
        var r = try Self.validate(Self.people, "expectations:\n  - {rule: schema, columns: {id: number, name: string, age: integer}}\n")
        #expect(r.passed)
        r = try Self.validate(Self.people, "expectations:\n  - {rule: schema, exact: true, columns: {id: string, age: integer, zip: string}}\n")
        #expect(r.results[0].message == "id is integer, not string; zip is missing; name is not expected; country is not expected; email is not expected; seen is not expected")
        r = try Self.validate(Self.people, "expectations:\n  - {rule: not_null, column: nope}\n")
        #expect(!r.passed && r.results[0].message == "no column named nope")
    }

    @Test("freshness: the newest timestamp against max_age; values that are not timestamps fail")
    func freshness() throws {
        // The newest is 2026-11-25 08:30 UTC (09:30 at +01:00).
        let newest = try #require(ISO8601DateFormatter().date(from: "2026-11-25T08:30:00Z"))
        let yaml = "expectations:\n  - {rule: freshness, column: seen, max_age: 2h}\n"
        #expect(try Self.validate(Self.people, yaml, now: newest.addingTimeInterval(3600)).passed)
        let stale = try Self.validate(Self.people, yaml, now: newest.addingTimeInterval(3 * 3600))
        #expect(!stale.passed && stale.results[0].message == "the newest value is 3.0h old, more than 2.0h")
        let fixed = "expectations:\n  - {rule: freshness, column: seen, max_age: 1d, now: 2026-11-26T08:00:00Z}\n"
        #expect(try Self.validate(Self.people, fixed).passed)
        let garbled = try Self.validate("t\nyesterday\n2026-11-25\n", "expectations:\n  - {rule: freshness, column: t, max_age: 100000d}\n")
        #expect(!garbled.passed && garbled.results[0].failures == 1)
    }

    @Test("timestamps read as ISO 8601 or epoch numbers", arguments: [
        ("2026-11-25", "2026-11-25T00:00:00Z"),
        ("2026-11-25T10:30:00Z", "2026-11-25T10:30:00Z"),
        ("2026-11-25 10:30:00", "2026-11-25T10:30:00Z"),
        ("2026-11-25T10:30:00+02:00", "2026-11-25T08:30:00Z"),
        ("2026-11-25T10:30-0130", "2026-11-25T12:00:00Z"),
        ("1795602600", "2026-11-25T10:30:00Z"),
        ("1795602600000", "2026-11-25T10:30:00Z"),
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
        ("1969-12-31T23:00:00Z", "1969-12-31T23:00:00Z"),
    ])
    func timestamps(text: String, iso: String) throws {
        let expected = try #require(ISO8601DateFormatter().date(from: iso)).timeIntervalSince1970
        #expect(Timestamps.seconds(text) == expected)
    }

    @Test("not timestamps", arguments: ["2026-13-01", "2026-11-25T25:00", "25/11/2026", "2026-11-25Tx", "2026-11-25T10:30:00Zjunk", ""])
    func notTimestamps(text: String) {
        #expect(Timestamps.seconds(text) == nil)
    }

    @Test("unique over many values finds the one repeat")
    func uniqueAtScale() throws {
        var csv = "k\n"
        for i in 0..<200_000 { csv += "key-\(i)\n" }
        csv += "key-123456\n"
        let r = try Self.validate(csv, "expectations:\n  - {rule: unique, column: k}\n")
        #expect(r.results[0].failures == 1 && r.results[0].samples.first?.line == 200_002)
    }

    @Test("a malformed suite is an error naming the expectation", arguments: [
        ("expectations:\n  - {rule: nonsense, column: a}\n", "Expectation 1: unknown rule 'nonsense'"),
        ("expectations:\n  - {rule: range, column: a, mni: 3}\n", "Expectation 1 (range): unknown key 'mni'"),
        ("expectations:\n  - {rule: not_null}\n", "Expectation 1 (not_null) needs a 'column'"),
        ("expectations:\n  - {rule: row_count, column: a, min: 1}\n", "it takes no 'column'"),
        ("expectations:\n  - {rule: regex, column: a, pattern: '(['}\n", "the pattern does not compile"),
        ("expectations:\n  - {rule: range, column: a, min: 5, max: 1}\n", "'min' is above 'max'"),
        ("expectations:\n  - {rule: range, column: a}\n", "needs 'min', 'max' or both"),
        ("expectations:\n  - {rule: freshness, column: a, max_age: soon}\n", "'max_age' must be a number"),
        ("expectations:\n  - {rule: not_null, column: a, mostly: 2}\n", "'mostly' must be above 0"),
        ("expectations:\n  - {rule: schema, columns: {a: text}}\n", "the type of a must be one of"),
        ("expectations: []\n", "The expectations list is empty"),
        ("rules:\n  - {rule: unique, column: a}\n", "needs a list under 'expectations:'"),
        ("expectations: [\n", "not valid YAML"),
    ])
    func malformedSuites(yaml: String, message: String) {
        let error = #expect(throws: LoomError.self) { try ExpectationSuite.parse(yaml: yaml) }
        #expect(error?.code == .invalidParameter)
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }
}

@Suite("Validating on every core")
struct ParallelValidateTests {
    @Test("the parallel report equals the one-thread report, samples included", arguments: [2, 3])
    func sameReport(lanes: Int) throws {
        let dir = try DataFiles.folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SplitMix64(seed: 21)
        for f in 0..<2 {
            var csv = f == 0 ? "id,score,cat,when\n" : "cat,id,score,when\n"
            for i in 0..<25_000 {
                let id = i % 9_999 == 0 ? 1 : f * 100_000 + i
                let score = rng.next() % 50 == 0 ? "" : String(Double(rng.next() % 2_000) / 10 - 50)
                let cat = ["a", "b", "c", "zz"][Int(rng.next() % 4)]
                csv += f == 0 ? "\(id),\(score),\(cat),2026-11-\(10 + i % 10)\n" : "\(cat),\(id),\(score),2026-11-\(10 + i % 10)\n"
            }
            _ = try DataFiles.write(dir, "p\(f).csv", csv)
        }
        let suite = try ExpectationSuite.parse(yaml: """
            expectations:
              - {rule: unique, column: id}
              - {rule: not_null, column: score, mostly: 0.97}
              - {rule: range, column: score, min: -40, max: 140}
              - {rule: allowed_values, column: cat, values: [a, b, c]}
              - {rule: regex, column: cat, pattern: '^[a-c]$'}
              - {rule: row_count, min: 50000, max: 50000}
              - {rule: schema, columns: {id: integer, score: number, cat: string}}
              - {rule: freshness, column: when, max_age: 2d, now: 2026-11-20T12:00:00Z}
            """)
        let files = try TableFiles.list(dir.path)
        var sequential = Validator(suite: suite)
        _ = try TableReader.read(files, into: &sequential)
        let expected = sequential.report()
        let parallel = try ParallelValidate.run(files, suite: suite, lanes: lanes)
        #expect(parallel == expected)
        #expect(expected.rows == 50_000 && !expected.passed)
        #expect(expected.results.map(\.passed) == [false, true, false, false, false, true, true, true])
    }
}

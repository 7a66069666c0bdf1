import Foundation
import Testing
import LoomGenAI

@Suite struct FusionTests {
    @Test func reciprocalRankFusionScoresAndOrder() {
        let fused = ReciprocalRankFusion.fuse([[1, 2, 3], [3, 1, 4]], limit: 3)
        #expect(fused.map(\.id) == [1, 3, 2])
        #expect(abs(fused[0].score - (1.0 / 61 + 1.0 / 62)) < 1e-15)
        #expect(abs(fused[1].score - (1.0 / 63 + 1.0 / 61)) < 1e-15)
        #expect(abs(fused[2].score - 1.0 / 62) < 1e-15)
    }

    @Test func tiesBreakByIdAndDuplicatesCountOnce() {
        #expect(ReciprocalRankFusion.fuse([[7], [5]], k: 1, limit: 10).map(\.id) == [5, 7])
        let duplicated = ReciprocalRankFusion.fuse([[2, 2, 9]], k: 0, limit: 10)
        #expect(duplicated == [ScoredHit(id: 2, score: 1), ScoredHit(id: 9, score: 1.0 / 3)])
        #expect(ReciprocalRankFusion.fuse([[1]], limit: 0).isEmpty)
        #expect(ReciprocalRankFusion.fuse([], limit: 5).isEmpty)
    }
}

@Suite struct MetadataFilterTests {
    private func decode(_ json: String) throws -> MetadataFilter {
        try JSONDecoder().decode(MetadataFilter.self, from: Data(json.utf8))
    }

    @Test func decodesAndMatches() throws {
        let filter = try decode(#"{"lang": "en", "section": {"in": ["a","b"]}, "draft": {"ne": "true"}}"#)
        #expect(filter.conditions == [
            "lang": .equals("en"), "section": .oneOf(["a", "b"]), "draft": .notEquals("true"),
        ])
        #expect(filter.matches(["lang": "en", "section": "a"]))
        #expect(filter.matches(["lang": "en", "section": "b", "draft": "false"]))
        #expect(!filter.matches(["lang": "en", "section": "b", "draft": "true"]))
        #expect(!filter.matches(["lang": "de", "section": "a"]))
        #expect(!filter.matches(["lang": "en", "section": "c"]))
        #expect(!filter.matches(["lang": "en"]))
        #expect(MetadataFilter().matches([:]))
    }

    @Test func scalarValuesAndExplicitEq() throws {
        let filter = try decode(#"{"draft": false, "year": {"eq": 2024}}"#)
        #expect(filter.matches(["draft": "false", "year": "2024"]))
        #expect(!filter.matches(["draft": "true", "year": "2024"]))
    }

    @Test func rejectsUnknownOperatorsWithClearError() throws {
        do {
            _ = try decode(#"{"year": {"gt": 3}}"#)
            Issue.record("expected an error")
        } catch DecodingError.dataCorrupted(let context) {
            #expect(context.debugDescription.contains(#"unknown filter operator "gt" for "year""#))
        }
        #expect(throws: DecodingError.self) { try decode(#"{"a": {"ne": "x", "in": ["y"]}}"#) }
        #expect(throws: DecodingError.self) { try decode(#"{"a": {}}"#) }
        #expect(throws: DecodingError.self) { try decode(#"{"a": [1, 2]}"#) }
        #expect(throws: DecodingError.self) { try decode(#"["a"]"#) }
    }

    @Test func encodingRoundTrip() throws {
        let filter = MetadataFilter(["a": .equals("1"), "b": .notEquals("2"), "c": .oneOf(["3", "4"])])
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = try encoder.encode(filter)
        #expect(String(decoding: data, as: UTF8.self) == #"{"a":"1","b":{"ne":"2"},"c":{"in":["3","4"]}}"#)
        #expect(try JSONDecoder().decode(MetadataFilter.self, from: data) == filter)
    }
}

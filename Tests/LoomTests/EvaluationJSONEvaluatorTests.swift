import Testing
@testable import LoomGenAI

@Suite struct JSONValidTests {
    @Test func acceptsJSONAndWholeAnswerFences() {
        #expect(evalRun(.jsonValid, evalRow(#"{"a": [1, 2, null]}"#)).score == 1)
        #expect(evalRun(.jsonValid, evalRow("  [true]\n")).score == 1)
        #expect(evalRun(.jsonValid, evalRow("```json\n{\"a\": 1}\n```")).score == 1)
        #expect(evalRun(.jsonValid, evalRow("```\n[1]\n```")).score == 1)
    }

    @Test func rejectsInvalidJSON() {
        let result = evalRun(.jsonValid, evalRow("{a: 1}"))
        #expect(result.score == 0)
        #expect(result.reason == "answer is not valid JSON")
        #expect(evalRun(.jsonValid, evalRow("")).score == 0)
        #expect(evalRun(.jsonValid, evalRow("Sure! ```json\n{\"a\": 1}\n```")).score == 0)
        #expect(evalRun(.jsonValid, evalRow("```json\n{\"a\": 1,}\n```")).score == 0)
        #expect(evalRun(.jsonValid, evalRow("``````")).score == 0)
    }
}

@Suite struct JSONSchemaTests {
    static let orderSchema = StrictJSON.parse("""
    {
      "type": "object",
      "required": ["items"],
      "additionalProperties": false,
      "properties": {
        "items": {
          "type": "array",
          "maxItems": 3,
          "items": {
            "type": "object",
            "required": ["name", "price"],
            "properties": {
              "name": {"type": "string", "minLength": 1, "pattern": "^[a-z]+$"},
              "price": {"type": "number", "minimum": 0},
              "qty": {"type": "integer", "exclusiveMinimum": 0}
            }
          }
        },
        "status": {"enum": ["open", "closed"]},
        "note": {"type": ["string", "null"]}
      }
    }
    """)!

    func reason(_ answer: String) -> String? {
        let result = evalRun(.jsonSchema(schema: Self.orderSchema), evalRow(answer))
        #expect(result.error == nil)
        return result.score == 1 ? nil : result.reason
    }

    @Test func validDocumentPasses() {
        let result = evalRun(.jsonSchema(schema: Self.orderSchema), evalRow(#"{"items": [{"name": "tea", "price": 2.5, "qty": 2.0}], "note": null}"#))
        #expect(result.score == 1)
        #expect(result.passed == true)
    }

    @Test func failuresNameTheFirstPath() {
        #expect(reason(#"{"items": [{"name":"a","price":1},{"name":"b","price":2},{"name":"c","price":"3"}]}"#)
            == "$.items[2].price: expected number")
        #expect(reason(#"{"items": [{"name": "a"}]}"#) == "$.items[0].price: required property missing")
        #expect(reason(#"{"items": [], "extra": 1}"#) == "$.extra: additional property not allowed")
        #expect(reason(#"{"items": [{"name": "a", "price": -1}]}"#) == "$.items[0].price: must be >= 0, got -1")
        #expect(reason(#"{"items": [{"name": "a", "price": 1, "qty": 1.5}]}"#) == "$.items[0].qty: expected integer")
        #expect(reason(#"{"items": [{"name": "a", "price": 1, "qty": 0}]}"#) == "$.items[0].qty: must be > 0, got 0")
        #expect(reason(#"{"items": [{"name": "", "price": 1}]}"#) == "$.items[0].name: must have at least 1 characters, got 0")
        #expect(reason(#"{"items": [{"name": "Tea", "price": 1}]}"#) == "$.items[0].name: does not match pattern '^[a-z]+$'")
        #expect(reason(#"{"items": [], "status": "lost"}"#) == #"$.status: must be one of ["open","closed"]"#)
        #expect(reason(#"{"items": [], "note": 3}"#) == "$.note: expected string or null")
        #expect(reason(#"{"items": [{},{},{},{}]}"#) == "$.items: must have at most 3 items, got 4")
        #expect(reason(#"{}"#) == "$.items: required property missing")
        #expect(reason(#"[]"#) == "$: expected object")
        #expect(reason("not json") == "answer is not valid JSON")
    }

    @Test func combinatorsConstAndOddKeys() {
        let schema = StrictJSON.parse("""
        {"properties": {
           "my key": {"const": 1},
           "id": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
           "n": {"oneOf": [{"type": "number"}, {"type": "integer"}]},
           "s": {"allOf": [{"type": "string"}, {"maxLength": 2}]},
           "max": {"exclusiveMaximum": 10, "maximum": 5}
        }}
        """)!
        func check(_ json: String) -> String? {
            JSONSchemaValidator.firstViolation(of: StrictJSON.parse(json)!, against: schema)?.description
        }
        #expect(check(#"{"my key": 2}"#) == #"$["my key"]: must equal 1"#)
        #expect(check(#"{"id": 1.5}"#) == "$.id: does not match any schema in anyOf")
        #expect(check(#"{"id": 7}"#) == nil)
        // 3 is both a number and an integer → matches 2 branches.
        #expect(check(#"{"n": 3}"#) == "$.n: matches 2 schemas in oneOf, expected exactly 1")
        #expect(check(#"{"n": 3.5}"#) == nil)
        #expect(check(#"{"s": "abc"}"#) == "$.s: must have at most 2 characters, got 3")
        #expect(check(#"{"max": 6}"#) == "$.max: must be <= 5, got 6")
        #expect(check(#"{"max": 5}"#) == nil)
    }

    @Test func booleanSchemasAndUnknownKeywords() {
        #expect(JSONSchemaValidator.firstViolation(of: .number(1), against: .bool(true)) == nil)
        #expect(JSONSchemaValidator.firstViolation(of: .number(1), against: .bool(false))?.description
            == "$: not allowed (schema is false)")
        let schema = StrictJSON.object(["format": .string("email"), "$ref": .string("#/x")])
        #expect(JSONSchemaValidator.firstViolation(of: .string("nope"), against: schema) == nil)
    }
}

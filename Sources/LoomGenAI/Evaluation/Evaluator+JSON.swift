extension Evaluator {
    /// `json_valid`: 1 when the answer (or the single fenced block that is the
    /// whole answer) parses as a JSON document; see `JSONText.parseAnswer`.
    static func jsonValid(row: EvaluationRow) -> Scored {
        let ok = JSONText.parseAnswer(row.answer) != nil
        return .binary(ok, reason: ok ? nil : "answer is not valid JSON")
    }

    /// `json_schema`: 1 when the answer parses as JSON and satisfies `schema`;
    /// otherwise 0 with the first violation as reason
    /// (e.g. `$.items[2].price: expected number`).
    static func jsonSchema(row: EvaluationRow, schema: StrictJSON) -> Scored {
        guard let instance = JSONText.parseAnswer(row.answer) else {
            return .binary(false, reason: "answer is not valid JSON")
        }
        if let violation = JSONSchemaValidator.firstViolation(of: instance, against: schema) {
            return .binary(false, reason: violation.description)
        }
        return .binary(true)
    }
}

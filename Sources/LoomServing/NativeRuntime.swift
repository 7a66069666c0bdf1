import LoomCore
import LoomModels
import NIOCore

/// Serves a Loom model (logistic, linear, gradient-boosted trees) in the server's own process:
/// each request's rows are checked against the model's signature and predicted as one batch.
public struct NativeRuntime: DeploymentRuntime {
    public let model: LoomModel
    /// The columns a request must give, with their MLflow types.
    public let signature: [(name: String, type: String)]
    /// Class labels as they are written in answers: JSON numbers when the label is an integer.
    let labels: [String]

    public init(model: LoomModel) {
        self.model = model
        self.signature = model.signatureInputs.map { ($0["name"] ?? "", $0["type"] ?? "string") }
        self.labels = (model.classes ?? []).map { c in
            if let i = Int64(c), String(i) == c { return c }
            return JSONValue.quoted(c)
        }
    }

    public func invoke(_ request: ServingRequest, timeout: Duration) async throws -> ServingAnswer {
        let table = try request.body.withUnsafeReadableBytes { raw throws(LoomError) in try ScoringTable.parse(raw) }
        let frame = try self.frame(table)
        let prediction = try model.predict(frame)
        return ServingAnswer(status: 200, body: answer(prediction))
    }

    static func isNumeric(_ type: String) -> Bool { ["double", "float", "long", "integer"].contains(type) }

    /// The request's rows as the model's columns; a missing column, a wrong type or a row of
    /// the wrong length is an `invalidParameter` naming it.
    public func frame(_ table: ScoringTable) throws(LoomError) -> Frame {
        guard !table.rows.isEmpty else { throw LoomError.invalidParameter("The request has no rows to score") }
        var position: [Int] = []
        if table.columns.isEmpty {
            // Positional rows: values in the signature's order.
            for (i, row) in table.rows.enumerated() where row.count != signature.count {
                throw LoomError.invalidParameter(
                    "Row \(i) has \(row.count) value\(row.count == 1 ? "" : "s"); the model takes \(signature.count) (\(describeSignature()))")
            }
            position = Array(0..<signature.count)
        } else {
            let index = Dictionary(table.columns.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
            let missing = signature.filter { index[$0.name] == nil }.map(\.name)
            guard missing.isEmpty else {
                throw LoomError.invalidParameter(
                    "The request is missing input column\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", ")) (the model takes \(describeSignature()))")
            }
            position = signature.map { index[$0.name]! }
        }
        var columns: [Frame.Column] = []
        columns.reserveCapacity(signature.count)
        for (c, input) in signature.enumerated() {
            let at = position[c]
            if Self.isNumeric(input.type) {
                var values = [Double](repeating: .nan, count: table.rows.count)
                for (r, row) in table.rows.enumerated() {
                    switch row[at] {
                    case .number(let d, _):
                        guard d.isFinite else { throw LoomError.invalidParameter("Column \(input.name), row \(r): \(d) is not a finite number") }
                        if input.type == "long" || input.type == "integer", d != d.rounded() {
                            throw LoomError.invalidParameter("Column \(input.name), row \(r): expected an integer (\(input.type)), got \(d)")
                        }
                        values[r] = d
                    case .null: continue
                    case let other:
                        throw LoomError.invalidParameter("Column \(input.name), row \(r): expected a number (\(input.type)), got \(Self.describe(other))")
                    }
                }
                columns.append(.numbers(values))
            } else {
                var codes = [Int32](repeating: -1, count: table.rows.count)
                var levels: [String] = []
                var levelIndex: [String: Int32] = [:]
                for (r, row) in table.rows.enumerated() {
                    let text: String
                    switch row[at] {
                    case .string(let s): text = s
                    case .bool(let b): text = b ? "true" : "false"
                    case .number(let d, let raw): text = raw ?? Frame.text(of: d)
                    case .null: continue
                    case let other:
                        throw LoomError.invalidParameter("Column \(input.name), row \(r): expected a \(input.type) value, got \(Self.describe(other))")
                    }
                    if let code = levelIndex[text] {
                        codes[r] = code
                    } else {
                        let code = Int32(levels.count)
                        levelIndex[text] = code
                        levels.append(text)
                        codes[r] = code
                    }
                }
                columns.append(.categories(codes: codes, levels: levels))
            }
        }
        return Frame(names: signature.map(\.name), columns: columns, rowCount: table.rows.count)
    }

    func describeSignature() -> String { signature.map { "\($0.name): \($0.type)" }.joined(separator: ", ") }

    static func describe(_ value: JSONValue) -> String {
        switch value {
        case .string(let s): return "the string \(JSONValue.quoted(String(s.prefix(40))))"
        default: return "a JSON \(value.typeName)"
        }
    }

    /// `{"predictions": [...]}`: values for regression, class labels for classifiers (as the
    /// MLflow scoring server answers).
    func answer(_ prediction: Prediction) -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(16 + prediction.count * 8)
        out.writeStaticString("{\"predictions\":[")
        if prediction.task == .regression {
            for (i, v) in prediction.values.enumerated() {
                if i > 0 { out.writeStaticString(",") }
                if v.isFinite { out.writeString(v.description) } else { out.writeStaticString("null") }
            }
        } else {
            for (i, label) in prediction.labels.enumerated() {
                if i > 0 { out.writeStaticString(",") }
                out.writeString(labels[Int(label)])
            }
        }
        out.writeStaticString("]}")
        return out
    }
}

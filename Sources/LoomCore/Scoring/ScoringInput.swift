
/// The rows of a scoring request, in any of the MLflow scoring server's JSON input formats:
///
/// - `{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`
/// - `{"dataframe_records": [{"col": value, ...}, ...]}`
/// - `{"instances": [...]}`: records, or rows of values in the signature's column order
/// - `{"inputs": {"col": [values], ...}}` (by column) or `{"inputs": [...]}` (as `instances`)
///
/// A `params` member is allowed and ignored.
public struct ScoringTable: Sendable, Equatable {
    /// Column names; empty when the rows are positional (values in the signature's order).
    public var columns: [String]
    /// One array of values per row, each as long as `columns` (positional rows: any length,
    /// checked against the signature).
    public var rows: [[JSONValue]]

    public init(columns: [String], rows: [[JSONValue]]) {
        self.columns = columns
        self.rows = rows
    }

    public static let formats = ["dataframe_split", "dataframe_records", "instances", "inputs"]

    /// Reads a request body; every mistake is a `badRequest` or `invalidParameter` naming it.
    public static func parse(_ body: UnsafeRawBufferPointer) throws(LoomError) -> ScoringTable {
        try read(try JSONValue.parse(body))
    }

    /// The rows of a request body already parsed as JSON.
    public static func read(_ body: JSONValue) throws(LoomError) -> ScoringTable {
        guard case .object(let top) = body else {
            throw LoomError.badRequest("The body must be a JSON object with one of \(formats.joined(separator: ", "))")
        }
        let given = formats.filter { top[$0] != nil }
        let unknown = top.keys.filter { !formats.contains($0) && $0 != "params" }.sorted()
        guard given.count == 1, unknown.isEmpty else {
            if given.count > 1 { throw LoomError.badRequest("The body has \(given.joined(separator: " and ")): give exactly one input format") }
            if !unknown.isEmpty {
                throw LoomError.badRequest("Unknown member\(unknown.count == 1 ? "" : "s") \(unknown.joined(separator: ", ")): the body takes one of \(formats.joined(separator: ", ")) (and params)")
            }
            throw LoomError.badRequest("The body must have one of \(formats.joined(separator: ", "))")
        }
        switch given[0] {
        case "dataframe_split": return try split(top["dataframe_split"]!)
        case "dataframe_records": return try records(top["dataframe_records"]!, "dataframe_records")
        case "instances": return try instances(top["instances"]!, "instances")
        default:
            let inputs = top["inputs"]!
            if case .object(let columns) = inputs { return try columnar(columns) }
            return try instances(inputs, "inputs")
        }
    }

    static func split(_ value: JSONValue) throws(LoomError) -> ScoringTable {
        guard case .object(let split) = value else { throw LoomError.badRequest("dataframe_split must be an object with columns and data") }
        guard case .array(let names)? = split["columns"] else { throw LoomError.badRequest("dataframe_split.columns must be an array of column names") }
        var columns: [String] = []
        for (i, name) in names.enumerated() {
            guard case .string(let s) = name else { throw LoomError.badRequest("dataframe_split.columns[\(i)] must be a string") }
            columns.append(s)
        }
        try unique(columns, "dataframe_split.columns")
        guard case .array(let data)? = split["data"] else { throw LoomError.badRequest("dataframe_split.data must be an array of rows") }
        var rows: [[JSONValue]] = []
        rows.reserveCapacity(data.count)
        for (i, row) in data.enumerated() {
            guard case .array(let values) = row else { throw LoomError.badRequest("dataframe_split.data[\(i)] must be an array of values") }
            guard values.count == columns.count else {
                throw LoomError.badRequest("dataframe_split.data[\(i)] has \(values.count) value\(values.count == 1 ? "" : "s"); columns names \(columns.count)")
            }
            rows.append(values)
        }
        return ScoringTable(columns: columns, rows: rows)
    }

    static func records(_ value: JSONValue, _ what: String) throws(LoomError) -> ScoringTable {
        guard case .array(let list) = value else { throw LoomError.badRequest("\(what) must be an array of records") }
        var columns: [String] = []
        var index: [String: Int] = [:]
        var objects: [[String: JSONValue]] = []
        objects.reserveCapacity(list.count)
        for (i, item) in list.enumerated() {
            guard case .object(let record) = item else { throw LoomError.badRequest("\(what)[\(i)] must be an object of column values") }
            for key in record.keys.sorted() where index[key] == nil {
                index[key] = columns.count
                columns.append(key)
            }
            objects.append(record)
        }
        let rows = objects.map { record in columns.map { record[$0] ?? .null } }
        return ScoringTable(columns: columns, rows: rows)
    }

    static func instances(_ value: JSONValue, _ what: String) throws(LoomError) -> ScoringTable {
        guard case .array(let list) = value else { throw LoomError.badRequest("\(what) must be an array") }
        guard let first = list.first else { return ScoringTable(columns: [], rows: []) }
        if case .object = first { return try records(value, what) }
        var rows: [[JSONValue]] = []
        rows.reserveCapacity(list.count)
        for (i, item) in list.enumerated() {
            guard case .array(let values) = item else {
                throw LoomError.badRequest("\(what)[\(i)] must be an array of values like \(what)[0] (or every item an object)")
            }
            rows.append(values)
        }
        return ScoringTable(columns: [], rows: rows)
    }

    static func columnar(_ columns: [String: JSONValue]) throws(LoomError) -> ScoringTable {
        let names = columns.keys.sorted()
        var lists: [[JSONValue]] = []
        var count: Int?
        for name in names {
            guard case .array(let values) = columns[name]! else { throw LoomError.badRequest("inputs.\(name) must be an array of values") }
            if let count, values.count != count {
                throw LoomError.badRequest("inputs.\(name) has \(values.count) values; inputs.\(names[0]) has \(count)")
            }
            count = values.count
            lists.append(values)
        }
        let n = count ?? 0
        var rows: [[JSONValue]] = []
        rows.reserveCapacity(n)
        for r in 0..<n { rows.append(lists.map { $0[r] }) }
        return ScoringTable(columns: names, rows: rows)
    }

    static func unique(_ names: [String], _ what: String) throws(LoomError) {
        var seen: Set<String> = []
        for name in names where !seen.insert(name).inserted { throw LoomError.badRequest("\(what) names \(name) twice") }
    }
}

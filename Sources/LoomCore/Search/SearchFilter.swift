/// The kind of thing a filter clause or an ordering key refers to.
public enum SearchEntity: String, Sendable, Hashable {
    case metric, param, tag, attribute, dataset
}

/// A comparison operator in MLflow's filter grammar.
public enum SearchComparator: String, Sendable, Hashable, CaseIterable {
    case equal = "="
    case notEqual = "!="
    case greater = ">"
    case greaterOrEqual = ">="
    case less = "<"
    case lessOrEqual = "<="
    case like = "LIKE"
    case ilike = "ILIKE"
    case `in` = "IN"
    case notIn = "NOT IN"
    case isNull = "IS NULL"
    case isNotNull = "IS NOT NULL"

    /// Comparators that compare numbers.
    public static let numeric: Set<SearchComparator> = [.equal, .notEqual, .greater, .greaterOrEqual, .less, .lessOrEqual]
}

/// A literal on the right-hand side of a comparison.
public enum SearchValue: Sendable, Hashable {
    case number(Double)
    case string(String)
    case list([String])
    case none

    public var stringValue: String? {
        switch self {
        case .string(let s): return s
        case .number(let d): return d.formattedForSearch
        default: return nil
        }
    }
}

extension Double {
    var formattedForSearch: String {
        if self == rounded(), abs(self) < 1e15 { return String(Int64(self)) }
        return String(self)
    }
}

/// One `identifier comparator value` clause. Clauses in a filter are AND-ed.
public struct SearchClause: Sendable, Hashable {
    public var entity: SearchEntity
    public var key: String
    public var comparator: SearchComparator
    public var value: SearchValue

    public init(entity: SearchEntity, key: String, comparator: SearchComparator, value: SearchValue) {
        self.entity = entity
        self.key = key
        self.comparator = comparator
        self.value = value
    }
}

/// One `key [ASC|DESC]` ordering term.
public struct SearchOrder: Sendable, Hashable {
    public var entity: SearchEntity
    public var key: String
    public var ascending: Bool

    public init(entity: SearchEntity, key: String, ascending: Bool) {
        self.entity = entity
        self.key = key
        self.ascending = ascending
    }
}

/// Parses MLflow's search filter grammar: `metrics.acc > 0.9 and params.lr = '0.01' and tags.x LIKE '%y%'`.
///
/// The parser is generic; each search (runs, experiments, models, ...) then checks the clauses
/// against what it supports with a ``SearchGrammar``.
public enum SearchFilterParser {
    /// Parses a whole filter string into AND-ed clauses. An empty or blank filter yields no clauses.
    public static func parse(_ filter: String?, grammar: SearchGrammar) throws(LoomError) -> [SearchClause] {
        guard let filter, !filter.allSatisfy(\.isWhitespace) else { return [] }
        var lexer = SearchLexer(filter)
        let tokens = try lexer.tokenize()
        var parser = ClauseParser(tokens: tokens, source: filter, grammar: grammar)
        return try parser.parseAll()
    }

    /// Parses one `order_by` term such as `metrics.acc DESC` or `` tags.`my tag` ``.
    public static func parseOrder(_ term: String, grammar: SearchGrammar) throws(LoomError) -> SearchOrder {
        var lexer = SearchLexer(term)
        let tokens = try lexer.tokenize()
        guard case .identifier(let raw)? = tokens.first else {
            throw .invalidParameter("Invalid order_by clause '\(term)'. Could not be parsed.")
        }
        var ascending = true
        if tokens.count == 2 {
            guard case .word(let w) = tokens[1], ["ASC", "DESC"].contains(w.uppercased()) else {
                throw .invalidParameter("Invalid ordering key in order_by clause '\(term)'.")
            }
            ascending = w.uppercased() == "ASC"
        } else if tokens.count > 2 {
            throw .invalidParameter("Invalid order_by clause '\(term)'. Could not be parsed.")
        }
        let (entity, key) = try grammar.resolve(identifier: raw, forOrdering: true)
        return SearchOrder(entity: entity, key: key, ascending: ascending)
    }
}

/// What a particular search accepts: entity prefixes, attribute names, and which attributes are numeric.
public struct SearchGrammar: Sendable {
    public var entities: Set<SearchEntity>
    /// Attribute keys accepted in filters, after alias translation.
    public var attributes: Set<String>
    /// Attribute keys accepted in `order_by`.
    public var orderableAttributes: Set<String>
    public var numericAttributes: Set<String>
    /// Attributes that accept `IN (...)` lists.
    public var listAttributes: Set<String>
    /// Alternative spellings mapped to canonical attribute names.
    public var aliases: [String: String]
    /// The entity an unprefixed identifier refers to.
    public var defaultEntity: SearchEntity

    public init(
        entities: Set<SearchEntity>, attributes: Set<String>, orderableAttributes: Set<String>? = nil,
        numericAttributes: Set<String>, listAttributes: Set<String> = [], aliases: [String: String] = [:],
        defaultEntity: SearchEntity = .attribute
    ) {
        self.entities = entities
        self.attributes = attributes
        self.orderableAttributes = orderableAttributes ?? attributes
        self.numericAttributes = numericAttributes
        self.listAttributes = listAttributes
        self.aliases = aliases
        self.defaultEntity = defaultEntity
    }

    /// The grammar of `runs/search`.
    public static let runs = SearchGrammar(
        entities: [.metric, .param, .tag, .attribute, .dataset],
        attributes: ["run_id", "run_name", "user_id", "status", "start_time", "end_time", "artifact_uri"],
        numericAttributes: ["start_time", "end_time"],
        listAttributes: ["run_id"],
        aliases: ["created": "start_time", "Created": "start_time", "run name": "run_name", "Run name": "run_name", "Run Name": "run_name"]
    )

    /// The grammar of `experiments/search`.
    public static let experiments = SearchGrammar(
        entities: [.tag, .attribute],
        attributes: ["name", "experiment_id", "creation_time", "last_update_time"],
        orderableAttributes: ["name", "experiment_id", "creation_time", "last_update_time"],
        numericAttributes: ["creation_time", "last_update_time"],
        listAttributes: ["experiment_id"]
    )

    /// The grammar of `registered-models/search`.
    public static let registeredModels = SearchGrammar(
        entities: [.tag, .attribute],
        attributes: ["name"],
        orderableAttributes: ["name", "timestamp", "last_updated_timestamp", "creation_timestamp"],
        numericAttributes: ["timestamp", "last_updated_timestamp", "creation_timestamp"],
        listAttributes: ["name"],
        aliases: ["creation_timestamp": "timestamp"]
    )

    /// The grammar of `model-versions/search`.
    public static let modelVersions = SearchGrammar(
        entities: [.tag, .attribute],
        attributes: ["name", "version_number", "run_id", "source_path", "model_id"],
        orderableAttributes: ["name", "version_number", "timestamp", "last_updated_timestamp", "creation_timestamp", "run_id", "source_path"],
        numericAttributes: ["version_number", "timestamp", "last_updated_timestamp", "creation_timestamp"],
        listAttributes: ["run_id", "name", "model_id"],
        aliases: ["creation_timestamp": "timestamp", "version": "version_number"]
    )

    /// The grammar of `logged-models/search`.
    public static let loggedModels = SearchGrammar(
        entities: [.metric, .param, .tag, .attribute],
        attributes: ["name", "model_id", "model_type", "status", "source_run_id", "creation_timestamp", "creation_time", "last_updated_timestamp"],
        numericAttributes: ["creation_timestamp", "creation_time", "last_updated_timestamp"],
        listAttributes: ["model_id", "name", "source_run_id"],
        aliases: ["creation_time": "creation_timestamp"]
    )

    func resolve(identifier raw: String, forOrdering: Bool) throws(LoomError) -> (SearchEntity, String) {
        let (prefix, key) = Self.split(raw)
        let entity: SearchEntity
        if let prefix {
            guard let e = Self.entity(named: prefix) else {
                throw .invalidParameter("Invalid entity type '\(prefix)'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']")
            }
            entity = e
        } else {
            entity = defaultEntity
        }
        guard entities.contains(entity) else {
            throw .invalidParameter("Invalid entity type '\(prefix ?? entity.rawValue)' for this search")
        }
        var resolvedKey = key
        if entity == .attribute {
            resolvedKey = aliases[key] ?? key
            let allowed = forOrdering ? orderableAttributes : attributes
            guard allowed.contains(resolvedKey) else {
                throw .invalidParameter("Invalid attribute key '\(key)' specified. Valid keys are '\(allowed.sorted())'")
            }
        } else if entity == .dataset {
            guard ["name", "digest", "context"].contains(key) else {
                throw .invalidParameter("Invalid dataset key '\(key)' specified. Valid keys are '['name', 'digest', 'context']'")
            }
        }
        guard !resolvedKey.isEmpty else { throw .invalidParameter("Invalid identifier '\(raw)': the key is empty") }
        return (entity, resolvedKey)
    }

    static func entity(named name: String) -> SearchEntity? {
        switch name {
        case "metric", "metrics": return .metric
        case "param", "params", "parameter", "parameters": return .param
        case "tag", "tags": return .tag
        case "attribute", "attributes", "attr", "run": return .attribute
        case "dataset", "datasets": return .dataset
        default: return nil
        }
    }

    /// Splits `tags.`a.b`` into (`tags`, `a.b`) and `name` into (nil, `name`). Each part may be
    /// quoted with backticks or double quotes; the split is at the first unquoted dot.
    static func split(_ raw: String) -> (String?, String) {
        func unquote(_ s: Substring) -> String {
            if s.count >= 2, let f = s.first, let l = s.last, f == l, f == "`" || f == "\"" || f == "'" {
                return String(s.dropFirst().dropLast())
            }
            return String(s)
        }
        var quote: Character?
        var index = raw.startIndex
        while index < raw.endIndex {
            let c = raw[index]
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "`" || c == "\"" {
                quote = c
            } else if c == "." {
                return (unquote(raw[raw.startIndex..<index]), unquote(raw[raw.index(after: index)...]))
            }
            index = raw.index(after: index)
        }
        return (nil, unquote(Substring(raw)))
    }
}

// MARK: - Lexer

enum SearchToken: Equatable {
    case identifier(String)
    case word(String)  // keywords such as AND, LIKE, IN, IS, NOT, NULL, ASC, DESC
    case string(String)
    case number(Double, String)
    case op(String)
    case lparen, rparen, comma
}

struct SearchLexer {
    let scalars: [Character]
    var index = 0
    let source: String

    init(_ source: String) {
        self.source = source
        self.scalars = Array(source)
    }

    static let keywords: Set<String> = ["AND", "LIKE", "ILIKE", "IN", "IS", "NOT", "NULL", "ASC", "DESC", "OR"]

    mutating func tokenize() throws(LoomError) -> [SearchToken] {
        var out: [SearchToken] = []
        while index < scalars.count {
            let c = scalars[index]
            if c.isWhitespace { index += 1; continue }
            switch c {
            case "(": out.append(.lparen); index += 1
            case ")": out.append(.rparen); index += 1
            case ",": out.append(.comma); index += 1
            case "'": out.append(.string(try quoted("'")))
            case "\"":
                // A double-quoted token is a string value after an operator, a key otherwise.
                let text = try quoted("\"")
                if case .op? = out.last { out.append(.string(text)) }
                else if case .word(let w)? = out.last, ["LIKE", "ILIKE"].contains(w) { out.append(.string(text)) }
                else if case .lparen? = out.last { out.append(.string(text)) }
                else if case .comma? = out.last { out.append(.string(text)) }
                else { out.append(.identifier("\"" + text + "\"")) }
            case "=", "!", "<", ">":
                var op = String(c)
                index += 1
                if index < scalars.count, scalars[index] == "=" || (c == "<" && scalars[index] == ">") {
                    op.append(scalars[index]); index += 1
                }
                guard op != "!" else { throw .invalidParameter("Invalid comparator '!' in filter '\(source)'") }
                out.append(.op(op == "<>" ? "!=" : op))
            case "-", "+", ".", "0"..."9":
                if c == "." || c.isNumber || (index + 1 < scalars.count && (scalars[index + 1].isNumber || scalars[index + 1] == ".")) {
                    out.append(try number())
                } else {
                    throw .invalidParameter("Unexpected character '\(c)' in filter '\(source)'")
                }
            default:
                if c.isLetter || c == "_" || c == "`" {
                    let ident = try identifier()
                    if Self.keywords.contains(ident.uppercased()) {
                        out.append(.word(ident.uppercased()))
                    } else {
                        out.append(.identifier(ident))
                    }
                } else {
                    throw .invalidParameter("Unexpected character '\(c)' in filter '\(source)'")
                }
            }
        }
        return out
    }

    mutating func quoted(_ q: Character) throws(LoomError) -> String {
        index += 1
        var text = ""
        while index < scalars.count {
            let c = scalars[index]
            if c == q {
                // SQL-style doubled quote inside a string.
                if index + 1 < scalars.count, scalars[index + 1] == q { text.append(q); index += 2; continue }
                index += 1
                return text
            }
            if c == "\\", index + 1 < scalars.count, scalars[index + 1] == q { text.append(q); index += 2; continue }
            text.append(c)
            index += 1
        }
        throw .invalidParameter("Unterminated string in filter '\(source)'")
    }

    mutating func number() throws(LoomError) -> SearchToken {
        let start = index
        if scalars[index] == "-" || scalars[index] == "+" { index += 1 }
        while index < scalars.count, scalars[index].isNumber || scalars[index] == "." || scalars[index] == "e" || scalars[index] == "E"
            || ((scalars[index] == "-" || scalars[index] == "+") && (scalars[index - 1] == "e" || scalars[index - 1] == "E")) {
            index += 1
        }
        let text = String(scalars[start..<index])
        guard let value = Double(text), value.isFinite else {
            throw .invalidParameter("Invalid number '\(text)' in filter '\(source)'")
        }
        return .number(value, text)
    }

    /// An identifier: a run of letters, digits, `_`, `.`, `-`, `:`, `/` and backtick- or double-quoted segments.
    mutating func identifier() throws(LoomError) -> String {
        var text = ""
        while index < scalars.count {
            let c = scalars[index]
            if c == "`" || (c == "\"" && text.last == ".") {
                let q = c
                text.append(q)
                index += 1
                var closed = false
                while index < scalars.count {
                    let d = scalars[index]
                    index += 1
                    if d == q { closed = true; break }
                    text.append(d)
                }
                guard closed else { throw .invalidParameter("Unterminated quoted identifier in filter '\(source)'") }
                text.append(q)
            } else if c.isLetter || c.isNumber || c == "_" || c == "." || c == "-" || c == ":" || c == "/" {
                text.append(c)
                index += 1
            } else {
                break
            }
        }
        return text
    }
}

// MARK: - Clause parser

struct ClauseParser {
    let tokens: [SearchToken]
    let source: String
    let grammar: SearchGrammar
    var index = 0

    init(tokens: [SearchToken], source: String, grammar: SearchGrammar) {
        self.tokens = tokens
        self.source = source
        self.grammar = grammar
    }

    var current: SearchToken? { index < tokens.count ? tokens[index] : nil }

    mutating func parseAll() throws(LoomError) -> [SearchClause] {
        var clauses: [SearchClause] = []
        while true {
            clauses.append(try parseClause())
            guard let t = current else { break }
            if t == .word("AND") {
                index += 1
                guard current != nil else { throw invalid("a clause after AND") }
                continue
            }
            if t == .word("OR") {
                throw .invalidParameter("Invalid clause(s) in filter string: 'OR'. Only AND-ed clauses are supported")
            }
            throw invalid("AND")
        }
        return clauses
    }

    func invalid(_ expected: String) -> LoomError {
        .invalidParameter("Invalid filter '\(source)': expected \(expected)")
    }

    mutating func parseClause() throws(LoomError) -> SearchClause {
        guard case .identifier(let raw)? = current else { throw invalid("an identifier such as metrics.acc, params.lr or tags.name") }
        index += 1
        let (entity, key) = try grammar.resolve(identifier: raw, forOrdering: false)
        let comparator = try parseComparator()
        let value: SearchValue
        switch comparator {
        case .isNull, .isNotNull:
            guard entity == .tag || entity == .param else {
                throw .invalidParameter("IS NULL / IS NOT NULL is only supported for tags and params, not for '\(entity.rawValue)' '\(key)'")
            }
            value = .none
        case .in, .notIn:
            value = .list(try parseList())
        default:
            value = try parseScalar()
        }
        try validate(entity: entity, key: key, comparator: comparator, value: value)
        return SearchClause(entity: entity, key: key, comparator: comparator, value: value)
    }

    mutating func parseComparator() throws(LoomError) -> SearchComparator {
        guard let t = current else { throw invalid("a comparator") }
        index += 1
        switch t {
        case .op(let o):
            guard let c = SearchComparator(rawValue: o) else { throw invalid("a comparator") }
            return c
        case .word("LIKE"): return .like
        case .word("ILIKE"): return .ilike
        case .word("IN"): return .in
        case .word("NOT"):
            guard current == .word("IN") else { throw invalid("IN after NOT") }
            index += 1
            return .notIn
        case .word("IS"):
            if current == .word("NULL") { index += 1; return .isNull }
            if current == .word("NOT") {
                index += 1
                guard current == .word("NULL") else { throw invalid("NULL") }
                index += 1
                return .isNotNull
            }
            throw invalid("NULL or NOT NULL after IS")
        default:
            throw invalid("a comparator (=, !=, >, >=, <, <=, LIKE, ILIKE, IN, NOT IN, IS NULL)")
        }
    }

    mutating func parseScalar() throws(LoomError) -> SearchValue {
        guard let t = current else { throw invalid("a value") }
        index += 1
        switch t {
        case .string(let s): return .string(s)
        case .number(let d, _): return .number(d)
        default: throw invalid("a quoted string or a number")
        }
    }

    mutating func parseList() throws(LoomError) -> [String] {
        guard current == .lparen else { throw invalid("'(' to start a list") }
        index += 1
        var items: [String] = []
        while true {
            guard case .string(let s)? = current else { throw invalid("a quoted string in the list") }
            items.append(s)
            index += 1
            if current == .comma { index += 1; continue }
            if current == .rparen { index += 1; break }
            throw invalid("',' or ')' in the list")
        }
        return items
    }

    func validate(entity: SearchEntity, key: String, comparator: SearchComparator, value: SearchValue) throws(LoomError) {
        switch entity {
        case .metric:
            guard SearchComparator.numeric.contains(comparator) else {
                throw .invalidParameter("Invalid comparator '\(comparator.rawValue)' not one of '{'=', '!=', '>', '>=', '<', '<='}'")
            }
            guard case .number = value else { throw .invalidParameter("Expected numeric value type for metric. Found \(value.description)") }
        case .param, .tag:
            guard [.equal, .notEqual, .like, .ilike, .isNull, .isNotNull].contains(comparator) else {
                throw .invalidParameter("Invalid comparator '\(comparator.rawValue)' not one of '{'!=', '=', 'LIKE', 'ILIKE', 'IS NULL', 'IS NOT NULL'}'")
            }
            if comparator != .isNull && comparator != .isNotNull {
                guard case .string = value else {
                    throw .invalidParameter("Expected a quoted string value for \(entity == .param ? "param" : "tag") (e.g. 'my-value'). Got value \(value.description)")
                }
            }
        case .attribute:
            if grammar.numericAttributes.contains(key) {
                guard SearchComparator.numeric.contains(comparator) else {
                    throw .invalidParameter("Invalid comparator '\(comparator.rawValue)' not one of '{'=', '!=', '>', '>=', '<', '<='}'")
                }
                guard case .number = value else {
                    throw .invalidParameter("Expected numeric value type for numeric attribute: \(key). Found \(value.description)")
                }
            } else {
                guard [.equal, .notEqual, .like, .ilike, .in, .notIn].contains(comparator) else {
                    throw .invalidParameter("Invalid comparator '\(comparator.rawValue)' not one of '{'!=', '=', 'LIKE', 'ILIKE', 'IN', 'NOT IN'}'")
                }
                if comparator == .in || comparator == .notIn {
                    guard grammar.listAttributes.contains(key) else {
                        throw .invalidParameter("Only \(grammar.listAttributes.sorted()) attributes support comparison with a list of quoted string values.")
                    }
                } else if case .string = value {
                } else {
                    throw .invalidParameter("Expected a quoted string value for attributes. Got value \(value.description)")
                }
            }
        case .dataset:
            guard [.equal, .notEqual, .like, .ilike, .in, .notIn].contains(comparator) else {
                throw .invalidParameter("Invalid comparator '\(comparator.rawValue)' not one of '{'!=', '=', 'LIKE', 'ILIKE', 'IN', 'NOT IN'}'")
            }
            if comparator != .in && comparator != .notIn {
                guard case .string = value else { throw .invalidParameter("Expected a quoted string value for dataset attributes. Got value \(value.description)") }
            }
        }
    }
}

extension SearchValue: CustomStringConvertible {
    public var description: String {
        switch self {
        case .number(let d): return d.formattedForSearch
        case .string(let s): return s
        case .list(let l): return "(" + l.map { "'\($0)'" }.joined(separator: ", ") + ")"
        case .none: return "NULL"
        }
    }
}

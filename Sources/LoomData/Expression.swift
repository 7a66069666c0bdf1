import Foundation
import LoomCore

/// A value in a transform: what a field holds, or what an expression makes.
public enum Value: Sendable, Hashable {
    case null
    case number(Double)
    case text(String)
    case bool(Bool)
    /// CSV text not yet typed: a number where an expression needs one and it parses as one;
    /// written back unchanged.
    case field(String)

    /// The value of a record's field.
    static func of(_ row: Row, _ i: Int) -> Value {
        switch row.kind(i) {
        case .null: return .null
        case .string: return .text(row.string(i) ?? "")
        case .bool: return .bool(row.string(i) == "true")
        case .number: return row.double(i).map(Value.number) ?? .null
        case .text: return .field(row.string(i) ?? "")
        }
    }

    /// As a number: a number, or text that parses as one.
    public var number: Double? {
        switch self {
        case .number(let v): return v
        case .field(let t): return t.utf8.withContiguousStorageIfAvailable { NumberText.double($0) } ?? NumberText.double(Array(t.utf8).withUnsafeBufferPointer { $0 })
        default: return nil
        }
    }

    public var isNull: Bool { if case .null = self { return true } else { return false } }

    /// Text as written to a CSV file; nil for null.
    public var written: String? {
        switch self {
        case .null: return nil
        case .number(let v):
            if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
            return v.isFinite ? String(v) : (v.isNaN ? nil : (v > 0 ? "inf" : "-inf"))
        case .text(let t), .field(let t): return t
        case .bool(let b): return b ? "true" : "false"
        }
    }

    var description: String {
        switch self {
        case .null: return "null"
        case .number(let v): return Value.number(v).written ?? "nan"
        case .text(let t): return "'\(t)'"
        case .field(let t): return "'\(t)'"
        case .bool(let b): return b ? "true" : "false"
        }
    }
}

/// An expression over a record's columns, as `filter` and `derive` take them:
///
/// - literals: `12`, `3.5e-2`, `'text'` or `"text"`, `true`, `false`, `null`;
/// - columns by name (`age`, `order_total`) or in backquotes (`` `unit price` ``);
/// - arithmetic `+ - * / %` and `^` (power), comparisons `= == != <> < <= > >=`,
///   `and`, `or`, `not`, parentheses;
/// - functions: `abs sqrt exp log log10 floor ceil round(x[, digits]) pow min max if(c, a, b)
///   coalesce is_null lower upper trim length concat`.
///
/// Missing values: arithmetic and functions on a null give null (except `coalesce`, `is_null`,
/// `if`); a comparison with a null is false; `and`/`or` treat null as false. Arithmetic on text
/// that is not a number is an error naming the line.
public struct Expression: Sendable {
    public let text: String
    let root: Node

    indirect enum Node: Sendable {
        case literal(Value)
        case column(String)
        case unary(String, Node)
        case binary(String, Node, Node)
        case call(String, [Node])
    }

    public init(_ text: String) throws(LoomError) {
        self.text = text
        var parser = ExpressionParser(text: text)
        root = try parser.parseAll()
    }

    /// Resolves column names against `columns` (an unknown one is an error).
    public func compile(columns: [String]) throws(LoomError) -> CompiledExpression {
        let index = Dictionary(columns.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        func resolve(_ n: Node) throws(LoomError) -> CompiledExpression.Op {
            switch n {
            case .literal(let v): return .literal(v)
            case .column(let c):
                guard let i = index[c] else {
                    throw LoomError.invalidParameter("expression '\(text)': no column \(c) (columns: \(columns.prefix(20).joined(separator: ", ")))")
                }
                return .column(i, c)
            case .unary(let op, let a): return .unary(op, try resolve(a))
            case .binary(let op, let a, let b): return .binary(op, try resolve(a), try resolve(b))
            case .call(let f, let args):
                guard let arity = CompiledExpression.functions[f] else {
                    throw LoomError.invalidParameter("expression '\(text)': unknown function \(f)")
                }
                guard arity.contains(args.count) else {
                    throw LoomError.invalidParameter("expression '\(text)': \(f) takes \(arity.lowerBound == arity.upperBound ? "\(arity.lowerBound)" : "\(arity.lowerBound) to \(arity.upperBound == Int.max ? "any number of" : "\(arity.upperBound)")") arguments, not \(args.count)")
                }
                var resolved: [CompiledExpression.Op] = []
                for a in args { resolved.append(try resolve(a)) }
                return .call(f, resolved)
            }
        }
        return CompiledExpression(text: text, op: try resolve(root))
    }
}

/// An expression bound to column positions, evaluated per record.
public struct CompiledExpression: Sendable {
    let text: String
    let op: Op

    indirect enum Op: Sendable {
        case literal(Value)
        case column(Int, String)
        case unary(String, Op)
        case binary(String, Op, Op)
        case call(String, [Op])
    }

    static let functions: [String: ClosedRange<Int>] = [
        "abs": 1...1, "sqrt": 1...1, "exp": 1...1, "log": 1...1, "log10": 1...1, "floor": 1...1, "ceil": 1...1,
        "round": 1...2, "pow": 2...2, "min": 1...Int.max, "max": 1...Int.max, "if": 3...3, "coalesce": 1...Int.max,
        "is_null": 1...1, "lower": 1...1, "upper": 1...1, "trim": 1...1, "length": 1...1, "concat": 1...Int.max,
    ]

    /// The value for one record (`values` in the compiled columns' order); `line` names the
    /// record in errors.
    public func evaluate(_ values: [Value], line: Int) throws(LoomError) -> Value {
        try eval(op, values, line)
    }

    /// Whether a record passes (a filter): true only for `true` (null and false drop it).
    public func passes(_ values: [Value], line: Int) throws(LoomError) -> Bool {
        if case .bool(true) = try eval(op, values, line) { return true }
        return false
    }

    private func fail(_ line: Int, _ message: String) -> LoomError {
        .invalidParameter("line \(line): expression '\(text)': \(message)")
    }

    private func number(_ v: Value, _ line: Int, _ what: String) throws(LoomError) -> Double? {
        if v.isNull { return nil }
        guard let n = v.number else { throw fail(line, "\(what) needs a number, got \(v.description)") }
        return n
    }

    private func truth(_ v: Value) -> Bool {
        if case .bool(let b) = v { return b }
        return false
    }

    private func text(_ v: Value) -> String? {
        switch v {
        case .null: return nil
        default: return v.written
        }
    }

    /// Orders two values: numbers by value (fields that parse as numbers count as numbers),
    /// text by text; nil when they cannot be compared (a null, or a number and text).
    private func compare(_ a: Value, _ b: Value) -> Int? {
        if a.isNull || b.isNull { return nil }
        if case .bool(let x) = a, case .bool(let y) = b { return x == y ? 0 : (x ? 1 : -1) }
        if let x = a.number, let y = b.number { return x < y ? -1 : (x > y ? 1 : 0) }
        let textual: (Value) -> String? = { v in
            switch v {
            case .text(let t), .field(let t): return t
            default: return nil
            }
        }
        if let x = textual(a), let y = textual(b) { return x < y ? -1 : (x > y ? 1 : 0) }
        return nil
    }

    private func eval(_ op: Op, _ values: [Value], _ line: Int) throws(LoomError) -> Value {
        switch op {
        case .literal(let v): return v
        case .column(let i, _): return i < values.count ? values[i] : .null
        case .unary(let o, let a):
            let v = try eval(a, values, line)
            if o == "not" { return v.isNull ? .null : .bool(!truth(v)) }
            guard let n = try number(v, line, "-") else { return .null }
            return .number(-n)
        case .binary(let o, let a, let b):
            switch o {
            case "and":
                guard truth(try eval(a, values, line)) else { return .bool(false) }
                return .bool(truth(try eval(b, values, line)))
            case "or":
                if truth(try eval(a, values, line)) { return .bool(true) }
                return .bool(truth(try eval(b, values, line)))
            default: break
            }
            let x = try eval(a, values, line)
            let y = try eval(b, values, line)
            switch o {
            case "==", "!=":
                if x.isNull || y.isNull { return .bool(false) }
                let equal = compare(x, y) == 0
                return .bool(o == "==" ? equal : !equal)
            case "<", "<=", ">", ">=":
                guard let c = compare(x, y) else { return .bool(false) }
                switch o {
                case "<": return .bool(c < 0)
                case "<=": return .bool(c <= 0)
                case ">": return .bool(c > 0)
                default: return .bool(c >= 0)
                }
            default:
                guard let p = try number(x, line, o), let q = try number(y, line, o) else { return .null }
                switch o {
                case "+": return .number(p + q)
                case "-": return .number(p - q)
                case "*": return .number(p * q)
                case "/": return q == 0 ? .null : .number(p / q)
                case "%": return q == 0 ? .null : .number(p.truncatingRemainder(dividingBy: q))
                default: return .number(pow(p, q))
                }
            }
        case .call(let f, let args):
            switch f {
            case "if":
                return truth(try eval(args[0], values, line)) ? try eval(args[1], values, line) : try eval(args[2], values, line)
            case "coalesce":
                for a in args {
                    let v = try eval(a, values, line)
                    if !v.isNull { return v }
                }
                return .null
            case "is_null":
                return .bool(try eval(args[0], values, line).isNull)
            default: break
            }
            var vs: [Value] = []
            for a in args { vs.append(try eval(a, values, line)) }
            switch f {
            case "lower", "upper", "trim", "length":
                guard let t = text(vs[0]) else { return .null }
                switch f {
                case "lower": return .text(t.lowercased())
                case "upper": return .text(t.uppercased())
                case "trim": return .text(t.trimmingCharacters(in: .whitespaces))
                default: return .number(Double(t.count))
                }
            case "concat":
                var out = ""
                for v in vs {
                    guard let t = text(v) else { return .null }
                    out += t
                }
                return .text(out)
            case "min", "max":
                var best: Double?
                for v in vs {
                    guard let n = try number(v, line, f) else { return .null }
                    best = best.map { f == "min" ? Swift.min($0, n) : Swift.max($0, n) } ?? n
                }
                return best.map(Value.number) ?? .null
            default:
                var ns: [Double] = []
                for v in vs {
                    guard let n = try number(v, line, f) else { return .null }
                    ns.append(n)
                }
                let x = ns[0]
                let result: Double
                switch f {
                case "abs": result = Swift.abs(x)
                case "sqrt": result = x >= 0 ? x.squareRoot() : .nan
                case "exp": result = Foundation.exp(x)
                case "log": result = x > 0 ? Foundation.log(x) : .nan
                case "log10": result = x > 0 ? Foundation.log10(x) : .nan
                case "floor": result = x.rounded(.down)
                case "ceil": result = x.rounded(.up)
                case "round":
                    let scale = Foundation.pow(10, ns.count > 1 ? ns[1].rounded() : 0)
                    result = (x * scale).rounded(.toNearestOrAwayFromZero) / scale
                default: result = Foundation.pow(x, ns[1])
                }
                return result.isNaN ? .null : .number(result)
            }
        }
    }
}

/// Recursive descent over the expression grammar (lowest precedence first: or, and, not,
/// comparison, + -, * / %, unary -, ^).
struct ExpressionParser {
    enum Token: Equatable {
        case number(Double)
        case string(String)
        case name(String)
        case symbol(String)
        case end
    }

    let text: String
    var tokens: [Token] = []
    var position = 0

    init(text: String) { self.text = text }

    func error(_ message: String) -> LoomError { .invalidParameter("expression '\(text)': \(message)") }

    mutating func tokenize() throws(LoomError) {
        let chars = Array(text.unicodeScalars)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == " " || c == "\t" || c == "\n" { i += 1; continue }
            if CharacterSet.decimalDigits.contains(c) || (c == "." && i + 1 < chars.count && CharacterSet.decimalDigits.contains(chars[i + 1])) {
                var j = i
                while j < chars.count, CharacterSet.decimalDigits.contains(chars[j]) || chars[j] == "." { j += 1 }
                if j < chars.count, chars[j] == "e" || chars[j] == "E" {
                    var k = j + 1
                    if k < chars.count, chars[k] == "+" || chars[k] == "-" { k += 1 }
                    if k < chars.count, CharacterSet.decimalDigits.contains(chars[k]) {
                        j = k
                        while j < chars.count, CharacterSet.decimalDigits.contains(chars[j]) { j += 1 }
                    }
                }
                let literal = String(String.UnicodeScalarView(chars[i..<j]))
                guard let v = Double(literal) else { throw error("bad number \(literal)") }
                tokens.append(.number(v))
                i = j
                continue
            }
            if c == "'" || c == "\"" || c == "`" {
                var j = i + 1
                var out = String.UnicodeScalarView()
                while true {
                    guard j < chars.count else { throw error("\(c) never closed") }
                    if chars[j] == c {
                        if j + 1 < chars.count, chars[j + 1] == c { out.append(c); j += 2; continue }
                        break
                    }
                    out.append(chars[j])
                    j += 1
                }
                tokens.append(c == "`" ? .name(String(out)) : .string(String(out)))
                i = j + 1
                continue
            }
            if CharacterSet.letters.contains(c) || c == "_" {
                var j = i
                while j < chars.count, CharacterSet.alphanumerics.contains(chars[j]) || chars[j] == "_" || chars[j] == "." { j += 1 }
                tokens.append(.name(String(String.UnicodeScalarView(chars[i..<j]))))
                i = j
                continue
            }
            let two = i + 1 < chars.count ? String(String.UnicodeScalarView([c, chars[i + 1]])) : ""
            if ["==", "!=", "<>", "<=", ">="].contains(two) {
                tokens.append(.symbol(two == "<>" ? "!=" : two))
                i += 2
                continue
            }
            let one = String(c)
            guard ["+", "-", "*", "/", "%", "^", "(", ")", ",", "<", ">", "="].contains(one) else {
                throw error("unexpected character \(one)")
            }
            tokens.append(.symbol(one == "=" ? "==" : one))
            i += 1
        }
        tokens.append(.end)
    }

    var peek: Token { tokens[position] }

    mutating func keyword(_ word: String) -> Bool {
        if case .name(let n) = peek, n.lowercased() == word {
            position += 1
            return true
        }
        return false
    }

    mutating func symbol(_ s: String) -> Bool {
        if peek == .symbol(s) {
            position += 1
            return true
        }
        return false
    }

    mutating func parseAll() throws(LoomError) -> Expression.Node {
        try tokenize()
        guard tokens.count > 1 else { throw error("empty") }
        let node = try parseOr()
        guard peek == .end else { throw error("unexpected \(describe(peek))") }
        return node
    }

    func describe(_ t: Token) -> String {
        switch t {
        case .number(let v): return "number \(v)"
        case .string(let s): return "'\(s)'"
        case .name(let n): return n
        case .symbol(let s): return s
        case .end: return "end"
        }
    }

    mutating func parseOr() throws(LoomError) -> Expression.Node {
        var left = try parseAnd()
        while keyword("or") { left = .binary("or", left, try parseAnd()) }
        return left
    }

    mutating func parseAnd() throws(LoomError) -> Expression.Node {
        var left = try parseNot()
        while keyword("and") { left = .binary("and", left, try parseNot()) }
        return left
    }

    mutating func parseNot() throws(LoomError) -> Expression.Node {
        if keyword("not") { return .unary("not", try parseNot()) }
        return try parseComparison()
    }

    mutating func parseComparison() throws(LoomError) -> Expression.Node {
        let left = try parseAdditive()
        for op in ["==", "!=", "<=", ">=", "<", ">"] where symbol(op) {
            return .binary(op, left, try parseAdditive())
        }
        return left
    }

    mutating func parseAdditive() throws(LoomError) -> Expression.Node {
        var left = try parseMultiplicative()
        while true {
            if symbol("+") { left = .binary("+", left, try parseMultiplicative()) }
            else if symbol("-") { left = .binary("-", left, try parseMultiplicative()) }
            else { return left }
        }
    }

    mutating func parseMultiplicative() throws(LoomError) -> Expression.Node {
        var left = try parseUnary()
        while true {
            if symbol("*") { left = .binary("*", left, try parseUnary()) }
            else if symbol("/") { left = .binary("/", left, try parseUnary()) }
            else if symbol("%") { left = .binary("%", left, try parseUnary()) }
            else { return left }
        }
    }

    mutating func parseUnary() throws(LoomError) -> Expression.Node {
        if symbol("-") { return .unary("-", try parseUnary()) }
        if symbol("+") { return try parseUnary() }
        return try parsePower()
    }

    mutating func parsePower() throws(LoomError) -> Expression.Node {
        let base = try parsePrimary()
        if symbol("^") { return .binary("^", base, try parseUnary()) }
        return base
    }

    mutating func parsePrimary() throws(LoomError) -> Expression.Node {
        let t = peek
        position += 1
        switch t {
        case .number(let v): return .literal(.number(v))
        case .string(let s): return .literal(.text(s))
        case .symbol("("):
            let inner = try parseOr()
            guard symbol(")") else { throw error("missing )") }
            return inner
        case .name(let n):
            switch n.lowercased() {
            case "true": return .literal(.bool(true))
            case "false": return .literal(.bool(false))
            case "null": return .literal(.null)
            default: break
            }
            if symbol("(") {
                var args: [Expression.Node] = []
                if !symbol(")") {
                    repeat { args.append(try parseOr()) } while symbol(",")
                    guard symbol(")") else { throw error("missing ) after the arguments of \(n)") }
                }
                return .call(n.lowercased(), args)
            }
            return .column(n)
        default:
            throw error("unexpected \(describe(t))")
        }
    }
}

import Foundation
import LoomCore

/// How flow values are checked, shown as text, tested and compared.
public enum FlowValues {
    static func conforms(_ v: JSONValue, to type: FlowSpec.ValueType) -> Bool {
        switch (type, v) {
        case (.any, _): true
        case (.string, .string): true
        case (.integer, .number(let d, _)): d.rounded() == d
        case (.number, .number): true
        case (.boolean, .bool): true
        case (.list, .array), (.messages, .array): true
        case (.object, .object): true
        default: false
        }
    }

    /// A value as it goes into a text: strings as they are, the rest as JSON.
    public static func text(_ v: JSONValue) -> String {
        switch v {
        case .string(let s): s
        case .null: ""
        case .number(let d, let raw): raw ?? (d.rounded() == d && abs(d) < 1e15 ? String(Int64(d)) : String(d))
        default: v.jsonString
        }
    }

    static func truthy(_ v: JSONValue) -> Bool {
        switch v {
        case .null: false
        case .bool(let b): b
        case .number(let d, _): d != 0
        case .string(let s): !s.isEmpty
        case .array(let a): !a.isEmpty
        case .object(let o): !o.isEmpty
        }
    }

    static func holds(_ c: FlowSpec.Condition, left: JSONValue, right: JSONValue?) -> Bool {
        let result: Bool
        if let op = c.op, let right {
            switch op {
            case .equal: result = equal(left, right)
            case .notEqual: result = !equal(left, right)
            case .contains:
                switch left {
                case .string(let s): result = s.localizedStandardContains(text(right))
                case .array(let a): result = a.contains { equal($0, right) }
                case .object(let o): result = o[text(right)] != nil
                default: result = false
                }
            default:
                guard let a = left.doubleValue ?? Double(text(left)), let b = right.doubleValue ?? Double(text(right)) else {
                    result = false
                    break
                }
                switch op {
                case .greater: result = a > b
                case .greaterOrEqual: result = a >= b
                case .less: result = a < b
                default: result = a <= b
                }
            }
        } else {
            result = truthy(left)
        }
        return c.negated ? !result : result
    }

    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.doubleValue, let y = b.doubleValue { return x == y }
        switch (a, b) {
        case (.string(let x), .string(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.null, .null): return true
        default: return a.jsonString == b.jsonString
        }
    }
}

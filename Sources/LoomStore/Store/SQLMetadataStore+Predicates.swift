import LoomCore
import SQLKit

/// SQL fragments for the filter grammar's comparisons, the same on both engines where possible.
struct PredicateBuilder {
    let engine: SQLEngine

    /// `column <op> value` for string-valued columns, with MLflow's case-sensitive LIKE.
    func string(_ column: String, _ comparator: SearchComparator, _ value: SearchValue) -> SQLQueryString {
        switch comparator {
        case .equal: return "\(unsafeRaw: column) = \(bind: value.stringValue ?? "")"
        case .notEqual: return "\(unsafeRaw: column) != \(bind: value.stringValue ?? "")"
        case .like:
            let pattern = value.stringValue ?? ""
            if engine == .sqlite {
                // SQLite's LIKE ignores case; GLOB does not.
                return "\(unsafeRaw: column) GLOB \(bind: Self.globPattern(fromLike: pattern))"
            }
            return "\(unsafeRaw: column) LIKE \(bind: pattern)"
        case .ilike:
            if engine == .sqlite {
                return "LOWER(\(unsafeRaw: column)) LIKE LOWER(\(bind: value.stringValue ?? ""))"
            }
            return "\(unsafeRaw: column) ILIKE \(bind: value.stringValue ?? "")"
        case .in, .notIn:
            guard case .list(let items) = value, !items.isEmpty else {
                return comparator == .in ? "1 = 0" : "1 = 1"
            }
            let binds: [any Encodable & Sendable] = items
            return "\(unsafeRaw: column) \(unsafeRaw: comparator == .in ? "IN" : "NOT IN") (\(binds: binds))"
        case .isNull: return "\(unsafeRaw: column) IS NULL"
        case .isNotNull: return "\(unsafeRaw: column) IS NOT NULL"
        case .greater: return "\(unsafeRaw: column) > \(bind: value.stringValue ?? "")"
        case .greaterOrEqual: return "\(unsafeRaw: column) >= \(bind: value.stringValue ?? "")"
        case .less: return "\(unsafeRaw: column) < \(bind: value.stringValue ?? "")"
        case .lessOrEqual: return "\(unsafeRaw: column) <= \(bind: value.stringValue ?? "")"
        }
    }

    /// `column <op> number` for numeric columns.
    func number(_ column: String, _ comparator: SearchComparator, _ value: Double, integer: Bool = false) -> SQLQueryString {
        let op: String
        switch comparator {
        case .equal: op = "="
        case .notEqual: op = "!="
        case .greater: op = ">"
        case .greaterOrEqual: op = ">="
        case .less: op = "<"
        case .lessOrEqual: op = "<="
        default: op = "="
        }
        if integer, value == value.rounded(), abs(value) < 9e18 {
            return "\(unsafeRaw: column) \(unsafeRaw: op) \(bind: Int64(value))"
        }
        return "\(unsafeRaw: column) \(unsafeRaw: op) \(bind: value)"
    }

    /// Converts a SQL LIKE pattern to a GLOB pattern with the same meaning.
    static func globPattern(fromLike like: String) -> String {
        var out = ""
        for c in like {
            switch c {
            case "%": out.append("*")
            case "_": out.append("?")
            case "*": out.append("[*]")
            case "?": out.append("[?]")
            case "[": out.append("[[]")
            default: out.append(c)
            }
        }
        return out
    }

    /// `ORDER BY` direction with NULLs last in both directions, as MLflow sorts.
    func order(_ expression: String, ascending: Bool) -> String {
        "(\(expression) IS NULL), \(expression) \(ascending ? "ASC" : "DESC")"
    }
}

extension SQLMetadataStore {
    var predicates: PredicateBuilder { PredicateBuilder(engine: backend.engine) }

    /// Predicate on a key/value tag table joined by `ownerColumn`, e.g. experiment tags.
    func tagPredicate(table: String, ownerColumn: String, outerColumn: String, clause: SearchClause) -> SQLQueryString {
        let p = predicates
        switch clause.comparator {
        case .isNull:
            return "NOT EXISTS (SELECT 1 FROM \(unsafeRaw: table) t WHERE t.\(unsafeRaw: ownerColumn) = \(unsafeRaw: outerColumn) AND t.key = \(bind: clause.key))"
        case .isNotNull:
            return "EXISTS (SELECT 1 FROM \(unsafeRaw: table) t WHERE t.\(unsafeRaw: ownerColumn) = \(unsafeRaw: outerColumn) AND t.key = \(bind: clause.key))"
        default:
            return "EXISTS (SELECT 1 FROM \(unsafeRaw: table) t WHERE t.\(unsafeRaw: ownerColumn) = \(unsafeRaw: outerColumn) AND t.key = \(bind: clause.key) AND \(p.string("t.value", clause.comparator, clause.value)))"
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension JSONValue {
    /// Parses one JSON document (RFC 8259, strict: no comments, no trailing commas) in a single
    /// pass over its bytes: the scoring path's parser, several times faster than decoding
    /// `JSONValue` through `JSONDecoder`. Numbers are read with `strtod` (correctly rounded);
    /// nesting deeper than `maxDepth` is refused.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 64) throws(LoomError) -> JSONValue {
        var parser = JSONByteParser(bytes: bytes, maxDepth: maxDepth)
        return try parser.document()
    }

    public static func parse(_ bytes: [UInt8], maxDepth: Int = 64) throws(LoomError) -> JSONValue {
        var repeated = false
        return try parse(bytes, maxDepth: maxDepth, repeatedNames: &repeated)
    }

    /// Parses as `parse` does and says whether any object, at any depth, names a member more
    /// than once (the last one is kept; other readers of the same text may keep the first, so a
    /// caller that passes the text on as written must not when this is true).
    public static func parse(_ bytes: [UInt8], maxDepth: Int = 64, repeatedNames: inout Bool) throws(LoomError) -> JSONValue {
        var repeated = false
        do {
            let value = try bytes.withUnsafeBytes { raw in
                var parser = JSONByteParser(bytes: raw, maxDepth: maxDepth)
                let value = try parser.document()
                repeated = parser.repeatedNames
                return value
            }
            repeatedNames = repeated
            return value
        } catch let e as LoomError {
            throw e
        } catch {
            throw LoomError.badRequest("Malformed JSON")
        }
    }
}

struct JSONByteParser {
    let bytes: UnsafeRawBufferPointer
    let maxDepth: Int
    var at = 0
    /// An object named a member more than once.
    var repeatedNames = false

    init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    func error(_ what: String) -> LoomError { .badRequest("Malformed JSON at byte \(at): \(what)") }

    /// The one value the bytes hold, with nothing but blanks around it.
    mutating func document() throws(LoomError) -> JSONValue {
        skipSpace()
        let value = try value(depth: 0)
        skipSpace()
        guard at == bytes.count else { throw error("unexpected text after the JSON value") }
        return value
    }

    mutating func skipSpace() {
        while at < bytes.count {
            let c = bytes[at]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            at += 1
        }
    }

    mutating func value(depth: Int) throws(LoomError) -> JSONValue {
        guard at < bytes.count else { throw error("unexpected end") }
        switch bytes[at] {
        case UInt8(ascii: "{"):
            guard depth < maxDepth else { throw error("nested deeper than \(maxDepth)") }
            at += 1
            skipSpace()
            if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return .object([:]) }
            // Room for a few members at once: growing from empty reallocates at every few.
            var object = [String: JSONValue](minimumCapacity: 4)
            while true {
                skipSpace()
                guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw error("expected a member name") }
                let key = try string()
                skipSpace()
                guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { throw error("expected ':'") }
                at += 1
                skipSpace()
                if object.updateValue(try value(depth: depth + 1), forKey: key) != nil { repeatedNames = true }
                skipSpace()
                guard at < bytes.count else { throw error("unexpected end") }
                if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                if bytes[at] == UInt8(ascii: "}") { at += 1; return .object(object) }
                throw error("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            guard depth < maxDepth else { throw error("nested deeper than \(maxDepth)") }
            at += 1
            skipSpace()
            if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return .array([]) }
            var array: [JSONValue] = []
            array.reserveCapacity(4)
            while true {
                skipSpace()
                array.append(try value(depth: depth + 1))
                skipSpace()
                guard at < bytes.count else { throw error("unexpected end") }
                if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                if bytes[at] == UInt8(ascii: "]") { at += 1; return .array(array) }
                throw error("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try number()
        default:
            throw error("unexpected character")
        }
    }

    mutating func literal(_ word: StaticString) throws(LoomError) {
        let n = word.utf8CodeUnitCount
        guard at + n <= bytes.count else { throw error("unexpected end") }
        for i in 0..<n where bytes[at + i] != word.utf8Start[i] { throw error("unexpected character") }
        at += n
    }

    mutating func number() throws(LoomError) -> JSONValue {
        let start = at
        let integral = try scanNumber()
        let count = at - start
        // Short integers without a round trip through text.
        if integral, count <= 18 {
            var v: Int64 = 0
            var i = bytes[start] == UInt8(ascii: "-") ? start + 1 : start
            while i < at { v = v * 10 + Int64(bytes[i] - UInt8(ascii: "0")); i += 1 }
            if bytes[start] == UInt8(ascii: "-") { v = -v }
            return .number(Double(v), raw: String(v))
        }
        var text = [CChar](repeating: 0, count: count + 1)
        for i in 0..<count { text[i] = CChar(bitPattern: bytes[start + i]) }
        let d = strtod(text, nil)
        let raw: String? = integral ? String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self) : nil
        return .number(d, raw: raw)
    }

    mutating func string() throws(LoomError) -> String {
        at += 1  // the opening quote
        let start = at
        // Fast path: no escapes.
        while at < bytes.count {
            let c = bytes[at]
            if c == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self)
                at += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            guard c >= 0x20 else { throw error("a control character in a string") }
            at += 1
        }
        var out = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<at]))
        while at < bytes.count {
            let c = bytes[at]
            if c == UInt8(ascii: "\"") {
                at += 1
                return String(decoding: out, as: UTF8.self)
            }
            guard c >= 0x20 else { throw error("a control character in a string") }
            if c != UInt8(ascii: "\\") {
                out.append(c)
                at += 1
                continue
            }
            at += 1
            guard at < bytes.count else { break }
            let e = bytes[at]
            at += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    // A surrogate pair.
                    guard at + 1 < bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u") else { throw error("a lone surrogate") }
                    at += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw error("a lone surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw error("a lone surrogate")
                }
                guard let u = Unicode.Scalar(scalar) else { throw error("an invalid escape") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw error("an invalid escape")
            }
        }
        throw error("an unterminated string")
    }

    mutating func hex4() throws(LoomError) -> UInt32 {
        guard at + 4 <= bytes.count else { throw error("unexpected end") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[at]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw error("an invalid \\u escape")
            }
            v = v * 16 + d
            at += 1
        }
        return v
    }
}

extension JSONValue {
    /// What `members(_:_:)` does with a member of the top-level object it is asked about.
    public enum MemberMode: Sendable {
        /// Parse the member's value.
        case value
        /// Count an array's elements without parsing them (`.int(n)`; any other value is skipped).
        case count
    }

    /// A member of a top-level object, read by `members(_:_:)`.
    public struct Member: Sendable {
        /// The value (for `.count`, the array's length; `.null` when it was not an array).
        public var value: JSONValue
        /// Where the value's text is in the bytes.
        public var range: Range<Int>
        /// How many times the member's name appears (the last one wins, as in `parse`).
        public var occurrences: Int
    }

    /// Reads the members named in `wanted` of the JSON object in `bytes`, checking the whole
    /// document as strictly as `parse` does but building no values for the other members:
    /// for callers that need `usage` from a provider's answer, or where the `model` of a
    /// request is, not the whole tree.
    public static func members(_ bytes: UnsafeRawBufferPointer, _ wanted: [String: MemberMode], maxDepth: Int = 64) throws(LoomError) -> [String: Member] {
        var parser = JSONByteParser(bytes: bytes, maxDepth: maxDepth)
        var found: [String: Member] = [:]
        parser.skipSpace()
        guard parser.at < bytes.count, bytes[parser.at] == UInt8(ascii: "{") else { throw parser.error("expected an object") }
        parser.at += 1
        parser.skipSpace()
        if parser.at < bytes.count, bytes[parser.at] == UInt8(ascii: "}") {
            parser.at += 1
        } else {
            while true {
                parser.skipSpace()
                guard parser.at < bytes.count, bytes[parser.at] == UInt8(ascii: "\"") else { throw parser.error("expected a member name") }
                let key = try parser.string()
                parser.skipSpace()
                guard parser.at < bytes.count, bytes[parser.at] == UInt8(ascii: ":") else { throw parser.error("expected ':'") }
                parser.at += 1
                parser.skipSpace()
                let start = parser.at
                switch wanted[key] {
                case .value?:
                    let value = try parser.value(depth: 1)
                    found[key] = Member(value: value, range: start..<parser.at, occurrences: (found[key]?.occurrences ?? 0) + 1)
                case .count?:
                    let value: JSONValue = try parser.skip(depth: 1).map { .int(Int64($0)) } ?? .null
                    found[key] = Member(value: value, range: start..<parser.at, occurrences: (found[key]?.occurrences ?? 0) + 1)
                case nil:
                    try parser.skip(depth: 1)
                }
                parser.skipSpace()
                guard parser.at < bytes.count else { throw parser.error("unexpected end") }
                if bytes[parser.at] == UInt8(ascii: ",") { parser.at += 1; continue }
                if bytes[parser.at] == UInt8(ascii: "}") { parser.at += 1; break }
                throw parser.error("expected ',' or '}'")
            }
        }
        parser.skipSpace()
        guard parser.at == bytes.count else { throw parser.error("unexpected text after the JSON value") }
        return found
    }

    public static func members(_ bytes: [UInt8], _ wanted: [String: MemberMode], maxDepth: Int = 64) throws(LoomError) -> [String: Member] {
        do {
            return try bytes.withUnsafeBytes { raw in try members(raw, wanted, maxDepth: maxDepth) }
        } catch let e as LoomError {
            throw e
        } catch {
            throw LoomError.badRequest("Malformed JSON")
        }
    }
}

extension JSONByteParser {
    /// Checks and passes over one value without building it; an array's element count (nil for
    /// anything else).
    @discardableResult
    mutating func skip(depth: Int) throws(LoomError) -> Int? {
        guard at < bytes.count else { throw error("unexpected end") }
        switch bytes[at] {
        case UInt8(ascii: "{"):
            guard depth < maxDepth else { throw error("nested deeper than \(maxDepth)") }
            at += 1
            skipSpace()
            if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return nil }
            while true {
                skipSpace()
                guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw error("expected a member name") }
                try skipString()
                skipSpace()
                guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { throw error("expected ':'") }
                at += 1
                skipSpace()
                try skip(depth: depth + 1)
                skipSpace()
                guard at < bytes.count else { throw error("unexpected end") }
                if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                if bytes[at] == UInt8(ascii: "}") { at += 1; return nil }
                throw error("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            guard depth < maxDepth else { throw error("nested deeper than \(maxDepth)") }
            at += 1
            skipSpace()
            if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return 0 }
            var count = 0
            while true {
                skipSpace()
                try skip(depth: depth + 1)
                count += 1
                skipSpace()
                guard at < bytes.count else { throw error("unexpected end") }
                if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                if bytes[at] == UInt8(ascii: "]") { at += 1; return count }
                throw error("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            try skipString()
        case UInt8(ascii: "t"):
            try literal("true")
        case UInt8(ascii: "f"):
            try literal("false")
        case UInt8(ascii: "n"):
            try literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            _ = try scanNumber()
        default:
            throw error("unexpected character")
        }
        return nil
    }

    /// Passes over a string, checking its escapes as `string()` does.
    mutating func skipString() throws(LoomError) {
        at += 1  // the opening quote
        while at < bytes.count {
            let c = bytes[at]
            if c == UInt8(ascii: "\"") {
                at += 1
                return
            }
            guard c >= 0x20 else { throw error("a control character in a string") }
            at += 1
            guard c == UInt8(ascii: "\\") else { continue }
            guard at < bytes.count else { break }
            let e = bytes[at]
            at += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                break
            case UInt8(ascii: "u"):
                let scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    guard at + 1 < bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u") else { throw error("a lone surrogate") }
                    at += 2
                    guard (0xDC00..<0xE000).contains(try hex4()) else { throw error("a lone surrogate") }
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw error("a lone surrogate")
                }
            default:
                throw error("an invalid escape")
            }
        }
        throw error("an unterminated string")
    }

    /// Passes over a number, checking its form; whether it is an integer (no fraction or exponent).
    mutating func scanNumber() throws(LoomError) -> Bool {
        var integral = true
        if bytes[at] == UInt8(ascii: "-") { at += 1 }
        func digits(_ p: inout Int) -> Int {
            let s = p
            while p < bytes.count, bytes[p] >= UInt8(ascii: "0"), bytes[p] <= UInt8(ascii: "9") { p += 1 }
            return p - s
        }
        let first = at
        let whole = digits(&at)
        guard whole > 0 else { throw error("expected a digit") }
        if whole > 1, bytes[first] == UInt8(ascii: "0") { throw error("a number cannot start with 0") }
        if at < bytes.count, bytes[at] == UInt8(ascii: ".") {
            at += 1
            integral = false
            guard digits(&at) > 0 else { throw error("expected a digit after '.'") }
        }
        if at < bytes.count, bytes[at] == UInt8(ascii: "e") || bytes[at] == UInt8(ascii: "E") {
            at += 1
            integral = false
            if at < bytes.count, bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") { at += 1 }
            guard digits(&at) > 0 else { throw error("expected a digit in the exponent") }
        }
        return integral
    }
}

/// Decoding of HTML character references.
enum HTMLEntities {
    /// Named references that are decoded; others are left as literal text.
    private static let named: [String: Unicode.Scalar] = [
        "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": "\u{00A0}",
        "copy": "\u{00A9}", "reg": "\u{00AE}", "trade": "\u{2122}", "hellip": "\u{2026}",
        "mdash": "\u{2014}", "ndash": "\u{2013}", "lsquo": "\u{2018}", "rsquo": "\u{2019}",
        "ldquo": "\u{201C}", "rdquo": "\u{201D}", "laquo": "\u{00AB}", "raquo": "\u{00BB}",
        "middot": "\u{00B7}", "bull": "\u{2022}", "deg": "\u{00B0}", "times": "\u{00D7}",
        "euro": "\u{20AC}",
    ]

    /// The longest reference considered, `&` and `;` included.
    private static let maxLength = 12

    /// Decodes the character reference starting at `start` (which must be
    /// `&`). Returns the decoded scalar and the number of bytes consumed, or
    /// `nil` if the bytes there are not a recognised reference (including a
    /// missing `;`). Invalid numeric references decode to U+FFFD.
    static func decode(_ bytes: [UInt8], at start: Int) -> (scalar: Unicode.Scalar, length: Int)? {
        let limit = min(bytes.count, start + maxLength)
        var end = start + 1
        while end < limit, bytes[end] != 59 { end += 1 }
        guard end < limit, end > start + 1 else { return nil }
        let body = bytes[(start + 1)..<end]
        let length = end - start + 1
        if body.first == 35 {  // '#'
            return numeric(body.dropFirst()).map { ($0, length) }
        }
        guard body.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 65 && $0 <= 90) }) else { return nil }
        let name = String(decoding: body, as: UTF8.self)
        return named[name].map { ($0, length) }
    }

    /// Decodes the digits of `&#NN;` or `&#xHH;`.
    private static func numeric(_ digits: ArraySlice<UInt8>) -> Unicode.Scalar? {
        var radix: UInt32 = 10
        var body = digits
        if let first = body.first, first == 120 || first == 88 {  // 'x' / 'X'
            radix = 16
            body = body.dropFirst()
        }
        guard !body.isEmpty else { return nil }
        var value: UInt32 = 0
        for byte in body {
            let digit: UInt32
            switch byte {
            case 48...57: digit = UInt32(byte - 48)
            case 97...102 where radix == 16: digit = UInt32(byte - 87)
            case 65...70 where radix == 16: digit = UInt32(byte - 55)
            default: return nil
            }
            value = value &* radix &+ digit
            if value > 0x10FFFF { return replacement }
        }
        if value == 0 { return replacement }
        return Unicode.Scalar(value) ?? replacement
    }

    private static let replacement: Unicode.Scalar = "\u{FFFD}"
}

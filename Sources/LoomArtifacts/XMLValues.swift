import NIOCore

/// The text of each element of a small XML document, in document order (element name, text);
/// enough for S3's answers (`InitiateMultipartUploadResult`, `ListBucketResult`, `Error`).
///
/// A reader of its own rather than Foundation's `XMLParser`: that one lives in FoundationXML,
/// which loads libxml2 and the system's ICU into every `loom` process (about 1.2 MiB resident
/// at idle) for a handful of small answers from an object store.
///
/// Each element's text is the character data read between its start tag and its end tag after
/// its last child element, trimmed of whitespace, entities and character references decoded,
/// CDATA taken as is. The XML declaration, processing instructions, comments and `<!DOCTYPE>`
/// are skipped; attributes are ignored. A malformed document yields what was read before the
/// fault, as `XMLParser` does.
enum XMLValues {
    static func parse(_ buffer: ByteBuffer) -> [(String, String)] {
        buffer.withUnsafeReadableBytes { parse($0) }
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) -> [(String, String)] {
        var values: [(String, String)] = []
        var text: [UInt8] = []
        var i = 0
        let n = bytes.count
        func starts(_ prefix: StaticString, at j: Int) -> Bool {
            let count = prefix.utf8CodeUnitCount
            guard j + count <= n else { return false }
            let p = prefix.utf8Start
            for k in 0..<count where bytes[j + k] != p[k] { return false }
            return true
        }
        func find(_ end: StaticString, from j: Int, within limit: Int = Int.max) -> Int? {
            var k = j
            let stop = limit == Int.max ? n : min(n, j + limit)
            while k < stop {
                if starts(end, at: k) { return k }
                k += 1
            }
            return nil
        }
        while i < n {
            let byte = bytes[i]
            guard byte == UInt8(ascii: "<") else {
                if byte == UInt8(ascii: "&") {
                    guard let semicolon = find(";", from: i, within: 12), let decoded = entity(bytes, i + 1, semicolon) else {
                        return values  // malformed: what was read so far
                    }
                    text.append(contentsOf: decoded)
                    i = semicolon + 1
                } else {
                    text.append(byte)
                    i += 1
                }
                continue
            }
            if starts("<!--", at: i) {
                guard let end = find("-->", from: i + 4) else { return values }
                i = end + 3
            } else if starts("<![CDATA[", at: i) {
                guard let end = find("]]>", from: i + 9) else { return values }
                text.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[(i + 9)..<end]))
                i = end + 3
            } else if starts("<?", at: i) {
                guard let end = find("?>", from: i + 2) else { return values }
                i = end + 2
            } else if starts("<!", at: i) {
                guard let end = find(">", from: i + 2) else { return values }
                i = end + 1
            } else {
                guard let close = find(">", from: i + 1) else { return values }
                let closing = bytes[i + 1] == UInt8(ascii: "/")
                let selfClosing = !closing && close > i + 1 && bytes[close - 1] == UInt8(ascii: "/")
                let start = i + (closing ? 2 : 1)
                var end = start
                while end < close, !isSpace(bytes[end]), bytes[end] != UInt8(ascii: "/") { end += 1 }
                let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
                guard !name.isEmpty else { return values }
                if !closing {
                    values.append((name, ""))
                    text.removeAll(keepingCapacity: true)
                }
                if closing || selfClosing {
                    if let k = values.lastIndex(where: { $0.0 == name }), values[k].1.isEmpty {
                        values[k].1 = trimmed(text)
                    }
                    text.removeAll(keepingCapacity: true)
                }
                i = close + 1
            }
        }
        return values
    }

    /// `&name;` or `&#N;` / `&#xH;` between `from` and `to` (the `;`); nil when unknown.
    static func entity(_ bytes: UnsafeRawBufferPointer, _ from: Int, _ to: Int) -> [UInt8]? {
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[from..<to]), as: UTF8.self)
        switch name {
        case "amp": return [UInt8(ascii: "&")]
        case "lt": return [UInt8(ascii: "<")]
        case "gt": return [UInt8(ascii: ">")]
        case "quot": return [UInt8(ascii: "\"")]
        case "apos": return [UInt8(ascii: "'")]
        default:
            guard name.hasPrefix("#") else { return nil }
            let digits = name.dropFirst()
            let value = digits.hasPrefix("x") ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits, radix: 10)
            guard let value, let scalar = Unicode.Scalar(value) else { return nil }
            return Array(String(Character(scalar)).utf8)
        }
    }

    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    static func trimmed(_ text: [UInt8]) -> String {
        var lo = 0, hi = text.count
        while lo < hi, isSpace(text[lo]) { lo += 1 }
        while hi > lo, isSpace(text[hi - 1]) { hi -= 1 }
        return String(decoding: text[lo..<hi], as: UTF8.self)
    }

    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}

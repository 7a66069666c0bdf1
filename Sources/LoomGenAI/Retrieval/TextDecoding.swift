/// Why bytes could not be decoded as text.
enum TextDecodingFailure: Error, Equatable {
    case invalidUTF8
    case binary

    var message: String {
        switch self {
        case .invalidUTF8: return "not valid UTF-8 text"
        case .binary: return "looks like binary data (contains NUL bytes)"
        }
    }
}

/// Strict UTF-8 decoding with newline normalisation.
enum TextDecoding {
    /// Decodes `bytes` as UTF-8: drops a leading BOM, rejects invalid UTF-8
    /// and NUL bytes, and converts `\r\n` and lone `\r` to `\n`.
    static func decode(_ bytes: ArraySlice<UInt8>) -> Result<String, TextDecodingFailure> {
        var body = bytes
        if body.starts(with: [0xEF, 0xBB, 0xBF]) {
            body = body.dropFirst(3)
        }
        if body.contains(0) {
            return .failure(.binary)
        }
        let normalised = normaliseNewlines(body)
        guard let text = String(validating: normalised, as: UTF8.self) else {
            return .failure(.invalidUTF8)
        }
        return .success(text)
    }

    /// Replaces CRLF and lone CR with LF. Safe on raw UTF-8 because `\r` never
    /// occurs inside a multi-byte sequence.
    static func normaliseNewlines(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        guard bytes.contains(13) else { return Array(bytes) }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var previousWasCR = false
        for byte in bytes {
            if byte == 13 {
                out.append(10)
                previousWasCR = true
                continue
            }
            if byte == 10 && previousWasCR {
                previousWasCR = false
                continue
            }
            previousWasCR = false
            out.append(byte)
        }
        return out
    }
}

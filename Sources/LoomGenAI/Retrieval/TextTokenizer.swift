/// The tokenizer used for BM25 terms and for chunk sizes.
///
/// A token is a maximal run of Unicode letters (general category L*) and
/// decimal digits (Nd), lowercased; combining marks continue a token.
/// Everything else (spaces, punctuation, symbols, invalid bytes) separates
/// tokens. Scripts written without spaces (e.g. Chinese) therefore form one
/// token per run of letters.
///
/// "Token" in ``ChunkingStrategy`` sizes and ``TextChunk/tokenCount`` always
/// means a token in this sense.
public enum TextTokenizer: Sendable {
    /// The lowercased tokens of `text`, in order.
    public static func terms(_ text: String) -> [String] {
        text.withUTF8Bytes { bytes in
            var result: [String] = []
            TokenScanner.scan(bytes) { start, end, uppercase, nonASCII in
                let token = UnsafeBufferPointer(rebasing: bytes[start..<end])
                if nonASCII {
                    result.append(String(decoding: token, as: UTF8.self).lowercased())
                } else if uppercase {
                    result.append(String(unsafeUninitializedCapacity: token.count) { buffer in
                        for (offset, byte) in token.enumerated() {
                            buffer[offset] = (byte >= 65 && byte <= 90) ? byte + 32 : byte
                        }
                        return token.count
                    })
                } else {
                    result.append(String(decoding: token, as: UTF8.self))
                }
            }
            return result
        }
    }

    /// The number of tokens in `text` (the same tokens ``terms(_:)`` returns,
    /// without building strings). This is the "token" unit used by chunking.
    public static func count(_ text: String) -> Int {
        text.withUTF8Bytes(TokenScanner.count)
    }
}

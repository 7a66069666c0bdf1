import Foundation

/// One page of a listing plus the opaque token of the next page (nil at the end).
public struct Page<Element: Sendable>: Sendable {
    public var items: [Element]
    public var nextPageToken: String?
    public init(items: [Element], nextPageToken: String?) {
        self.items = items
        self.nextPageToken = nextPageToken
    }
}

/// An opaque page token: base64 of a small JSON object holding the offset, like MLflow's.
public enum PageToken {
    struct Payload: Codable { var offset: Int }

    public static func encode(offset: Int) -> String {
        let data = (try? JSONEncoder().encode(Payload(offset: offset))) ?? Data()
        return data.base64EncodedString()
    }

    /// Decodes a token to an offset; nil or empty means the first page.
    public static func decode(_ token: String?) throws(LoomError) -> Int {
        guard let token, !token.isEmpty else { return 0 }
        guard let data = Data(base64Encoded: token) ?? Data(base64Encoded: token + String(repeating: "=", count: (4 - token.count % 4) % 4)),
              let payload = try? JSONDecoder().decode(Payload.self, from: data), payload.offset >= 0
        else {
            throw .invalidParameter("Invalid page token, could not base64-decode")
        }
        return payload.offset
    }
}

/// Listing parameters shared by the searches.
public struct PageRequest: Sendable, Hashable {
    public var maxResults: Int
    public var offset: Int
    public init(maxResults: Int, offset: Int = 0) {
        self.maxResults = maxResults
        self.offset = offset
    }
}

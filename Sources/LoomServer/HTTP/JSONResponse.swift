import Foundation
import Hummingbird
import LoomCore
import NIOCore

/// JSON responses with one shared encoder configuration (NaN and infinities as MLflow writes them).
enum JSONResponse {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        e.outputFormatting = [.withoutEscapingSlashes]
        return e
    }()

    static let emptyObject: Response = {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "{}")))
    }()

    static func make<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try encoder.encode(value)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension Request {
    /// Reads and parses a JSON object body (bounded by the context's upload limit).
    func jsonBody(context: LoomRequestContext) async throws -> JSONBody {
        try JSONBody.parse(try await bodyData(context: context))
    }

    /// The whole body (bounded by the context's upload limit).
    func bodyData(context: LoomRequestContext) async throws -> Data {
        var request = self
        let buffer = try await request.collectBody(upTo: context.maxUploadSize)
        return Data(buffer.readableBytesView)
    }

    var query: QueryParameters { QueryParameters(uri.query) }
}

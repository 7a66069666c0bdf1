import LoomCore

/// The gateway embeds an index's chunks and queries through an embeddings route, as any
/// client's call would go: the route's limits, usage, cost and traces apply.
extension Gateway: TextEmbedder {
    public func embed(_ texts: [String], route: String, workspace: String) async throws -> [[Float]] {
        let body = JSONValue.object([
            "model": .string(route), "input": .array(texts.map { .string($0) }), "encoding_format": .string("float"),
        ])
        let answer: GatewayAnswer
        do {
            answer = try await embeddings(body.jsonBytes, caller: GatewayCaller(workspace: workspace))
        } catch {
            throw LoomError(error.status == 404 ? .notFound : .badGateway, error.message)
        }
        guard case .complete(let bytes, _) = answer, let value = try? JSONValue.parse(bytes), let data = value["data"]?.arrayValue else {
            throw LoomError(.badGateway, "route \(route) did not answer an embeddings list")
        }
        var out = [[Float]](repeating: [], count: texts.count)
        for (position, item) in data.enumerated() {
            let i = item["index"]?.doubleValue.map { Int($0) } ?? position
            guard out.indices.contains(i), let numbers = item["embedding"]?.arrayValue else {
                throw LoomError(.badGateway, "route \(route) answered an embedding that is not a list of numbers")
            }
            out[i] = numbers.compactMap { $0.doubleValue.map { Float($0) } }
            guard out[i].count == numbers.count else { throw LoomError(.badGateway, "route \(route) answered an embedding with a value that is not a number") }
        }
        guard !out.contains(where: \.isEmpty) else { throw LoomError(.badGateway, "route \(route) answered \(data.count) embeddings for \(texts.count) texts") }
        return out
    }
}

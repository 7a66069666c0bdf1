import Foundation
import LoomCore

/// Typed bodies for the hottest MLflow calls (`log-metric`, `log-batch`): decoding straight into
/// these is several times cheaper than building a generic JSON tree. When a body does not fit
/// (wrong types, odd spellings), the handlers fall back to ``JSONBody`` for a precise error.
enum FastBodies {
    static let decoder = JSONDecoder()

    /// A number given as a JSON number or a numeric string ("NaN", "Infinity" included).
    struct FlexibleDouble: Decodable {
        let value: Double
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let d = try? c.decode(Double.self) {
                value = d
                return
            }
            let s = try c.decode(String.self)
            switch s {
            case "NaN", "nan": value = .nan
            case "Infinity", "inf": value = .infinity
            case "-Infinity", "-inf": value = -.infinity
            default:
                guard let d = Double(s) else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a number") }
                value = d
            }
        }
    }

    /// A 64-bit integer given as a JSON number or a decimal string.
    struct FlexibleInt64: Decodable {
        let value: Int64
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let i = try? c.decode(Int64.self) {
                value = i
                return
            }
            guard let i = Int64(try c.decode(String.self)) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an integer")
            }
            value = i
        }
    }

    struct MetricBody: Decodable {
        let run_id: String?
        let run_uuid: String?
        let key: String
        let value: FlexibleDouble
        let timestamp: FlexibleInt64
        let step: FlexibleInt64?
        let model_id: String?
        let dataset_name: String?
        let dataset_digest: String?

        var metric: Metric {
            Metric(key: key, value: value.value, timestamp: timestamp.value, step: step?.value ?? 0,
                   modelID: model_id, datasetName: dataset_name, datasetDigest: dataset_digest)
        }
        var runID: String? { (run_id?.isEmpty == false ? run_id : nil) ?? (run_uuid?.isEmpty == false ? run_uuid : nil) }
    }

    struct KeyValue: Decodable {
        let key: String
        let value: String
    }

    struct BatchBody: Decodable {
        let run_id: String?
        let run_uuid: String?
        let metrics: [MetricBody]?
        let params: [KeyValue]?
        let tags: [KeyValue]?
        var runID: String? { (run_id?.isEmpty == false ? run_id : nil) ?? (run_uuid?.isEmpty == false ? run_uuid : nil) }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ data: Data) -> T? {
        try? decoder.decode(T.self, from: data)
    }
}

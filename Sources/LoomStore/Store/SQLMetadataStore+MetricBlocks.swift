import LoomCore
import SQLKit

/// Merged metric points on SQLite: each merge of the metric log writes, per run and key, one
/// row of `metric_blocks` holding that key's points as a packed block, instead of one B-tree
/// insert per point into `metrics` (about 6 µs each under load). History reads decode the
/// blocks and merge them with the rows of `metrics` and `metric_log`, in step order, keeping
/// identical points once (as `metrics`' unique key does).
extension SQLMetadataStore {
    /// One merged point as stored: the value already clamped (see `storedValue`).
    struct StoredPoint: Equatable {
        var step: Int64
        var timestamp: Int64
        var value: Double
        var isNaN: Bool
    }

    /// The packed form: 25 bytes per point, little-endian step, timestamp and value bits, then
    /// a NaN flag.
    enum MetricBlock {
        static let pointSize = 25

        static func encode(_ points: [StoredPoint]) -> [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(points.count * pointSize)
            for p in points {
                withUnsafeBytes(of: p.step.littleEndian) { out.append(contentsOf: $0) }
                withUnsafeBytes(of: p.timestamp.littleEndian) { out.append(contentsOf: $0) }
                withUnsafeBytes(of: p.value.bitPattern.littleEndian) { out.append(contentsOf: $0) }
                out.append(p.isNaN ? 1 : 0)
            }
            return out
        }

        /// Nil when `bytes` is not a whole number of points.
        static func decode(_ bytes: [UInt8]) -> [StoredPoint]? {
            guard bytes.count % pointSize == 0 else { return nil }
            var points: [StoredPoint] = []
            points.reserveCapacity(bytes.count / pointSize)
            bytes.withUnsafeBytes { raw in
                var o = 0
                while o < raw.count {
                    let step = Int64(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: Int64.self))
                    let timestamp = Int64(littleEndian: raw.loadUnaligned(fromByteOffset: o + 8, as: Int64.self))
                    let bits = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: o + 16, as: UInt64.self))
                    points.append(StoredPoint(step: step, timestamp: timestamp, value: Double(bitPattern: bits), isNaN: raw[o + 24] != 0))
                    o += pointSize
                }
            }
            return points
        }
    }

    private struct BlockKey: Hashable {
        let runID: String
        let key: String
    }

    /// Moves every point of `metric_log` into `metric_blocks`: one new block per run and key.
    /// SQLite only (elsewhere nothing is logged).
    static func mergeMetricLog(_ db: any SQLDatabase) async throws {
        guard let sqlite = db as? DirectSQLiteDatabase else { return }
        let handle = sqlite.handle
        var groups: [BlockKey: [StoredPoint]] = [:]
        try handle.run("SELECT run_uuid, key, step, timestamp, value, is_nan FROM metric_log", []) { row in
            let v = row.values
            guard case .text(let runID) = v[0], case .text(let key) = v[1], case .integer(let step) = v[2],
                  case .integer(let timestamp) = v[3], case .integer(let isNaN) = v[5] else {
                // Never written so; refuse to merge (and then delete) what cannot be read.
                throw LoomError.internalError("unexpected row in metric_log: \(v)")
            }
            let value: Double
            switch v[4] {
            case .real(let d): value = d
            case .integer(let i): value = Double(i)
            default: value = 0
            }
            groups[BlockKey(runID: runID, key: key), default: []].append(
                StoredPoint(step: step, timestamp: timestamp, value: value, isNaN: isNaN != 0))
        }
        guard !groups.isEmpty else { return }
        for (k, points) in groups {
            var last: Int64 = 0
            try handle.run("SELECT COALESCE(MAX(seq), 0) FROM metric_blocks WHERE run_uuid = ? AND key = ?", [.text(k.runID), .text(k.key)]) { row in
                if case .integer(let s) = row.values[0] { last = s }
            }
            let blob = MetricBlock.encode(points)
            let steps = points.map(\.step)
            try handle.runEach("""
                INSERT INTO metric_blocks (run_uuid, key, seq, first_step, last_step, points) VALUES (?, ?, ?, ?, ?, ?)
                """, CollectionOfOne(())) { _, b in
                b.bind(k.runID)
                b.bind(k.key)
                b.bind(last + 1)
                b.bind(steps.min()!)
                b.bind(steps.max()!)
                b.bind(blob)
            }
        }
        try handle.exec("DELETE FROM metric_log")
    }

    /// The points of one run and key in blocks, within `steps` when given; nil when there are no
    /// blocks (then the SQL of `pointsOf` alone answers, with LIMIT and OFFSET).
    static func blockPoints(_ db: any SQLDatabase, runID: String, key: String, steps: (start: Int64?, end: Int64?)?) async throws -> [Metric]? {
        var conds: [SQLQueryString] = ["run_uuid = \(bind: runID)", "key = \(bind: key)"]
        if let s = steps?.start { conds.append("last_step >= \(bind: s)") }
        if let e = steps?.end { conds.append("first_step <= \(bind: e)") }
        let rows = try await db.raw("SELECT points FROM metric_blocks WHERE \(conds.joined(separator: " AND "))").all()
        guard !rows.isEmpty else { return nil }
        var out: [Metric] = []
        for row in rows {
            guard let points = MetricBlock.decode(try row.decode(column: "points", as: [UInt8].self)) else {
                throw LoomError.internalError("a block of metric points is damaged")
            }
            for p in points {
                if let s = steps?.start, p.step < s { continue }
                if let e = steps?.end, p.step > e { continue }
                out.append(Metric(key: key, value: p.isNaN ? .nan : p.value, timestamp: p.timestamp, step: p.step))
            }
        }
        return out
    }

    /// `rows` (in step order, from `pointsOf`) and `blocks` together in step order, each point
    /// once; of identical points the one from `rows` is kept (it may name a model or dataset).
    static func mergeHistory(_ rows: [Metric], _ blocks: [Metric]) -> [Metric] {
        func order(_ m: Metric) -> (Int64, Int64, Double, Int) {
            m.value.isNaN ? (m.step, m.timestamp, 0, 1) : (m.step, m.timestamp, m.value, 0)
        }
        var all = rows.enumerated().map { (order($0.element), 0, $0.offset, $0.element) }
        all += blocks.enumerated().map { (order($0.element), 1, $0.offset, $0.element) }
        all.sort { a, b in
            if a.0 != b.0 { return a.0 < b.0 }
            return (a.1, a.2) < (b.1, b.2)
        }
        var out: [Metric] = []
        out.reserveCapacity(all.count)
        var previous: (Int64, Int64, Double, Int)?
        for item in all {
            if let previous, previous == item.0 { continue }
            previous = item.0
            out.append(item.3)
        }
        return out
    }
}

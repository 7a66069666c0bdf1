import LoomCore
import SQLKit

/// Metric points on SQLite outside `metrics`. A write batch appends the plain points of its
/// small metric writes to `metric_log` as one packed row per run (`MetricLogRow`), instead of
/// one row per point. Every few hundred points the writer merges the log: per run and key, one
/// row of `metric_blocks` holding that key's points as a packed block, instead of one B-tree
/// insert per point into `metrics` (about 6 µs each under load). History reads decode the log
/// and the blocks and merge them with the rows of `metrics`, in step order, keeping identical
/// points once (as `metrics`' unique key does).
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
            [UInt8](unsafeUninitializedCapacity: points.count * pointSize) { buffer, count in
                let raw = UnsafeMutableRawBufferPointer(buffer)
                for (i, p) in points.enumerated() { store(p, into: raw, at: i * pointSize) }
                count = points.count * pointSize
            }
        }

        /// Writes `p` in its packed form at `offset`.
        static func store(_ p: StoredPoint, into raw: UnsafeMutableRawBufferPointer, at offset: Int) {
            raw.storeBytes(of: p.step.littleEndian, toByteOffset: offset, as: Int64.self)
            raw.storeBytes(of: p.timestamp.littleEndian, toByteOffset: offset + 8, as: Int64.self)
            raw.storeBytes(of: p.value.bitPattern.littleEndian, toByteOffset: offset + 16, as: UInt64.self)
            raw[offset + 24] = p.isNaN ? 1 : 0
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

    /// The packed form of one row of `metric_log`: the points that one write batch logged for
    /// one run, grouped by key. Per key: the key's UTF-8 length (2 bytes, little-endian), the
    /// key, the number of points (4 bytes), then the points as in `MetricBlock`.
    enum MetricLogRow {
        typealias Section = (key: String, points: [StoredPoint])

        static func encode(_ sections: some Sequence<Section>) -> [UInt8] {
            var keys: [String] = []
            var points: [(key: Int, point: StoredPoint)] = []
            for (key, keyPoints) in sections {
                let k = keys.count
                keys.append(key)
                for p in keyPoints { points.append((k, p)) }
            }
            return encode(keys: keys, points: points, keepEmpty: true)
        }

        /// The row for points given key by key in any interleaving: `points[i].key` indexes
        /// `keys`. Each key's points keep their order; keys without points are left out unless
        /// `keepEmpty`.
        static func encode(keys: [String], points: [(key: Int, point: StoredPoint)], keepEmpty: Bool = false) -> [UInt8] {
            var counts = [Int](repeating: 0, count: keys.count)
            for p in points { counts[p.key] += 1 }
            // Where each key's section starts, then (below) where its next point goes.
            var next = [Int](repeating: 0, count: keys.count)
            var size = 0
            for k in keys.indices where keepEmpty || counts[k] > 0 {
                let length = keys[k].utf8.count
                precondition(length <= Int(UInt16.max) && counts[k] <= Int(UInt32.max))
                next[k] = size
                size += 2 + length + 4 + counts[k] * MetricBlock.pointSize
            }
            return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
                let raw = UnsafeMutableRawBufferPointer(buffer)
                for k in keys.indices where keepEmpty || counts[k] > 0 {
                    var o = next[k]
                    let length = keys[k].utf8.count
                    raw.storeBytes(of: UInt16(length).littleEndian, toByteOffset: o, as: UInt16.self)
                    o += 2
                    _ = UnsafeMutableRawBufferPointer(rebasing: raw[o..<(o + length)]).initializeMemory(as: UInt8.self, from: keys[k].utf8)
                    o += length
                    raw.storeBytes(of: UInt32(counts[k]).littleEndian, toByteOffset: o, as: UInt32.self)
                    next[k] = o + 4
                }
                for (k, p) in points {
                    MetricBlock.store(p, into: raw, at: next[k])
                    next[k] += MetricBlock.pointSize
                }
                count = size
            }
        }

        /// Nil when `bytes` does not hold whole sections. With `onlyKey`, the sections of other
        /// keys are checked but not decoded.
        static func decode(_ bytes: [UInt8], onlyKey: String? = nil) -> [Section]? {
            let wanted = onlyKey.map { Array($0.utf8) }
            var sections: [Section] = []
            var o = 0
            while o < bytes.count {
                guard o + 2 <= bytes.count else { return nil }
                let keyLength = Int(UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8)
                o += 2
                guard o + keyLength + 4 <= bytes.count else { return nil }
                let keyBytes = bytes[o..<(o + keyLength)]
                o += keyLength
                let count = Int(UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24)
                o += 4
                let size = count * MetricBlock.pointSize
                guard size <= bytes.count - o else { return nil }
                defer { o += size }
                if let wanted, !keyBytes.elementsEqual(wanted) { continue }
                guard let points = MetricBlock.decode(Array(bytes[o..<(o + size)])) else { return nil }
                sections.append((String(decoding: keyBytes, as: UTF8.self), points))
            }
            return sections
        }
    }

    /// Appends the points that a write batch logged: one row of `metric_log` per run. SQLite only.
    /// `rows` holds each run's points packed as `MetricLogRow`.
    static func appendMetricLog(_ db: any SQLDatabase, _ rows: [(runID: String, points: [UInt8])]) throws {
        guard !rows.isEmpty, let sqlite = db as? DirectSQLiteDatabase else { return }
        try sqlite.handle.runEach("INSERT INTO metric_log (run_uuid, points) VALUES (?, ?)", rows) { row, b in
            b.bind(row.runID)
            b.bind(row.points)
        }
    }

    /// Decodes one `points` value of `metric_log`, refusing what was never written so.
    private static func logSections(_ bytes: [UInt8]) throws -> [MetricLogRow.Section] {
        guard let sections = MetricLogRow.decode(bytes) else {
            throw LoomError.internalError("a row of the metric log is damaged")
        }
        return sections
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
        try handle.run("SELECT run_uuid, points FROM metric_log", []) { row in
            let v = row.values
            guard case .text(let runID) = v[0], case .blob(let bytes) = v[1] else {
                // Never written so; refuse to merge (and then delete) what cannot be read.
                throw LoomError.internalError("unexpected row in metric_log")
            }
            for (key, points) in try logSections(bytes) {
                groups[BlockKey(runID: runID, key: key), default: []].append(contentsOf: points)
            }
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

    /// The points of one run and key in the metric log and in blocks, within `steps` when given,
    /// in no particular order. Empty when there are none (then the SQL of `pointsOf` alone
    /// answers, with LIMIT and OFFSET), and always on PostgreSQL, which logs nothing. Read
    /// straight off the handle: a key of 10,000 points is 250 KB of blobs.
    static func packedPoints(_ db: any SQLDatabase, runID: String, key: String, steps: (start: Int64?, end: Int64?)?) throws -> [StoredPoint] {
        guard let sqlite = db as? DirectSQLiteDatabase else { return [] }
        var out: [StoredPoint] = []
        func keep(_ points: [StoredPoint]) {
            for p in points {
                if let s = steps?.start, p.step < s { continue }
                if let e = steps?.end, p.step > e { continue }
                out.append(p)
            }
        }
        // The log holds a few thousand points at most (see `metricLogMergePoints`): a scan.
        try sqlite.handle.run("SELECT points FROM metric_log WHERE run_uuid = ?", [.text(runID)]) { row in
            guard case .blob(let bytes) = row.values[0], let sections = MetricLogRow.decode(bytes, onlyKey: key) else {
                throw LoomError.internalError("a row of the metric log is damaged")
            }
            for section in sections { keep(section.points) }
        }
        var sql = "SELECT points FROM metric_blocks WHERE run_uuid = ? AND key = ?"
        var binds: [SQLiteValue] = [.text(runID), .text(key)]
        if let s = steps?.start { sql += " AND last_step >= ?"; binds.append(.integer(s)) }
        if let e = steps?.end { sql += " AND first_step <= ?"; binds.append(.integer(e)) }
        try sqlite.handle.run(sql, binds) { row in
            guard case .blob(let bytes) = row.values[0], let points = MetricBlock.decode(bytes) else {
                throw LoomError.internalError("a block of metric points is damaged")
            }
            keep(points)
        }
        return out
    }

    /// `rows` (from `pointsOf`) and `packed` (from `packedPoints`, for `key`) together in step
    /// order, each point once — of identical points the one from `rows` is kept (it may name a
    /// model or dataset) — as the points at `range` of that order (all when nil) and how many
    /// there are in all. Only the points returned are made into `Metric`s.
    static func mergeHistory(
        _ rows: [Metric], _ packed: [StoredPoint], key: String, runID: String?, range: Range<Int>? = nil
    ) -> (items: [Metric], total: Int) {
        struct Entry {
            let step: Int64, timestamp: Int64, value: Double, nan: Int, fromPacked: Int, index: Int
            var point: (Int64, Int64, Double, Int) { (step, timestamp, value, nan) }
        }
        var all: [Entry] = []
        all.reserveCapacity(rows.count + packed.count)
        for (i, m) in rows.enumerated() {
            let nan = m.value.isNaN
            all.append(Entry(step: m.step, timestamp: m.timestamp, value: nan ? 0 : m.value, nan: nan ? 1 : 0, fromPacked: 0, index: i))
        }
        for (i, p) in packed.enumerated() {
            all.append(Entry(step: p.step, timestamp: p.timestamp, value: p.isNaN ? 0 : p.value, nan: p.isNaN ? 1 : 0, fromPacked: 1, index: i))
        }
        all.sort { a, b in
            (a.step, a.timestamp, a.value, a.nan, a.fromPacked, a.index) < (b.step, b.timestamp, b.value, b.nan, b.fromPacked, b.index)
        }
        var items: [Metric] = []
        var total = 0
        var previous: (Int64, Int64, Double, Int)?
        for e in all {
            if let previous, previous == e.point { continue }
            previous = e.point
            defer { total += 1 }
            if let range, !range.contains(total) { continue }
            if e.fromPacked == 0 {
                items.append(rows[e.index])
            } else {
                let p = packed[e.index]
                var m = Metric(key: key, value: p.isNaN ? .nan : p.value, timestamp: p.timestamp, step: p.step)
                m.runID = runID
                items.append(m)
            }
        }
        return (items, total)
    }
}

import Foundation
import Logging

/// A swift-log handler that writes one line per message to standard error: text in the layout
/// of swift-log's `StreamLogHandler` (time, level, label, metadata, source, message), or one JSON
/// object (time, level, logger, message, metadata) for log shippers. Metadata is formatted only
/// when a line is written: Hummingbird sets a request ID on every request's logger, and
/// `StreamLogHandler` formats it each time, even when nothing is logged. Secrets never reach it:
/// the code logs none.
struct LineLogHandler: LogHandler {
    enum Format {
        case text
        case json
    }

    let label: String
    let format: Format
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, format: Format, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.format = format
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        guard let line = line(for: event, time: Self.timestamp()) else { return }
        FileHandle.standardError.write(line)
    }

    /// The line for `event`, newline included: the handler's metadata, then the provider's,
    /// then the event's (later ones win). Nil when JSON cannot be made of it.
    func line(for event: LogEvent, time: String) -> Data? {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        var line: Data
        switch format {
        case .text:
            let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line = Data("\(time) \(event.level) \(label):\(fields.isEmpty ? "" : " " + fields) [\(event.source)] \(event.message)".utf8)
        case .json:
            var object: [String: Any] = ["time": time, "level": event.level.rawValue, "logger": label, "message": event.message.description]
            for (k, v) in merged { object[k] = Self.plain(v) }
            guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return nil }
            line = data
        }
        line.append(0x0A)
        return line
    }

    /// The current time in UTC as ISO 8601 with milliseconds (`2026-11-25T21:23:37.973Z`),
    /// formatted by hand: Foundation's ISO8601DateFormatter loads ICU's data,
    /// about 3 MiB of resident memory for a server that is idle otherwise.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var t = tm()
        gmtime_r(&seconds, &t)
        func pad(_ v: Int, _ width: Int) -> String {
            let digits = String(v)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(Int(t.tm_year) + 1900, 4))-\(pad(Int(t.tm_mon) + 1, 2))-\(pad(Int(t.tm_mday), 2))T"
            + "\(pad(Int(t.tm_hour), 2)):\(pad(Int(t.tm_min), 2)):\(pad(Int(t.tm_sec), 2)).\(pad(Int(now.tv_nsec) / 1_000_000, 3))Z"
    }

    static func plain(_ v: Logger.Metadata.Value) -> Any {
        switch v {
        case .string(let s): return s
        case .stringConvertible(let c): return c.description
        case .array(let a): return a.map(plain)
        case .dictionary(let d): return d.mapValues(plain)
        }
    }
}


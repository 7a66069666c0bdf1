import Foundation
import Logging
import Testing

@testable import LoomCLI

/// `loom server --log-format text|json`: what one line holds.
@Suite("Log lines")
struct LineLogHandlerTests {
    func event(_ metadata: Logger.Metadata?) -> LogEvent {
        LogEvent(level: .warning, message: "write batch failed", metadata: metadata, source: "LoomStore", file: #fileID, function: #function, line: #line)
    }

    func handler(_ format: LineLogHandler.Format) -> LineLogHandler {
        var h = LineLogHandler(label: "loom", format: format, metadataProvider: Logger.MetadataProvider { ["from": "provider", "both": "provider"] })
        h[metadataKey: "hb.request.id"] = .stringConvertible(42)
        h[metadataKey: "both"] = "handler"
        return h
    }

    @Test func jsonLinesCarryEveryFieldAndTheEventWins() throws {
        let line = try #require(handler(.json).line(for: event(["both": "event", "n": .array(["1", "2"])]), time: "T"))
        #expect(line.last == 0x0A && !line.dropLast().contains(0x0A))
        let object = try #require(try JSONSerialization.jsonObject(with: line) as? [String: Any])
        #expect(object["time"] as? String == "T" && object["level"] as? String == "warning")
        #expect(object["logger"] as? String == "loom" && object["message"] as? String == "write batch failed")
        #expect(object["hb.request.id"] as? String == "42" && object["from"] as? String == "provider")
        #expect(object["both"] as? String == "event")
        #expect(object["n"] as? [String] == ["1", "2"])
    }

    @Test func textLinesSortTheirMetadata() throws {
        let line = try #require(handler(.text).line(for: event(["both": "event"]), time: "T"))
        #expect(String(decoding: line, as: UTF8.self)
            == "T warning loom: both=event from=provider hb.request.id=42 [LoomStore] write batch failed\n")
        let bare = LineLogHandler(label: "loom", format: .text).line(for: event(nil), time: "T")
        #expect(bare.map { String(decoding: $0, as: UTF8.self) } == "T warning loom: [LoomStore] write batch failed\n")
    }

    @Test func timestampsAreUTCWithMilliseconds() throws {
        let before = Date()
        let stamp = LineLogHandler.timestamp()
        let after = Date()
        #expect(stamp.count == 24 && stamp.hasSuffix("Z"))
        let parser = ISO8601DateFormatter()
        parser.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let parsed = try #require(parser.date(from: stamp))
        // Milliseconds are cut, not rounded.
        #expect(parsed >= before.addingTimeInterval(-0.001) && parsed <= after)
    }
}

import Foundation
import LoomCore

/// A five-field cron schedule (minute, hour, day of month, month, day of week), in UTC: `*`,
/// values, ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b`, month and weekday names (`JAN`,
/// `MON`), 7 for Sunday, and the shorthands `@hourly`, `@daily` (`@midnight`), `@weekly`,
/// `@monthly`, `@yearly` (`@annually`). As in Vixie cron, when both day fields are restricted a
/// day matches if either does.
public struct CronSchedule: Sendable, Hashable, CustomStringConvertible {
    public let expression: String
    let minutes: UInt64
    let hours: UInt64
    let days: UInt64
    let months: UInt64
    let weekdays: UInt64
    let daysRestricted: Bool
    let weekdaysRestricted: Bool

    public var description: String { expression }

    public init(parsing text: String) throws(LoomError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let shorthands = [
            "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
            "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
        ]
        let expanded = shorthands[trimmed.lowercased()] ?? trimmed
        let fields = expanded.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard fields.count == 5 else {
            throw .invalidParameter("'\(text)' is not a cron schedule: five fields (minute hour day-of-month month day-of-week) or @hourly, @daily, @weekly, @monthly, @yearly")
        }
        expression = trimmed
        minutes = try Self.field(fields[0], "minute", 0...59, names: [:])
        hours = try Self.field(fields[1], "hour", 0...23, names: [:])
        days = try Self.field(fields[2], "day of month", 1...31, names: [:])
        months = try Self.field(fields[3], "month", 1...12, names: Self.monthNames)
        var w = try Self.field(fields[4], "day of week", 0...7, names: Self.dayNames)
        if w & (1 << 7) != 0 { w = (w | 1) & ~(1 << 7) }  // 7 is Sunday too
        weekdays = w
        daysRestricted = fields[2] != "*" && fields[2] != "?"
        weekdaysRestricted = fields[4] != "*" && fields[4] != "?"
        guard Self.canMatch(days, months) else {
            throw .invalidParameter("'\(text)' never runs: no month has those days")
        }
    }

    static let monthNames = ["jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12]
    static let dayNames = ["sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6]

    private static func canMatch(_ days: UInt64, _ months: UInt64) -> Bool {
        let longest = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        for m in 1...12 where months & (1 << UInt64(m)) != 0 {
            for d in 1...longest[m] where days & (1 << UInt64(d)) != 0 { return true }
        }
        return false
    }

    private static func field(_ text: String, _ what: String, _ range: ClosedRange<Int>, names: [String: Int]) throws(LoomError) -> UInt64 {
        var bits: UInt64 = 0
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2, !part.isEmpty else { throw bad(text, what, range) }
            var step = 1
            if pieces.count == 2 {
                guard let s = Int(pieces[1]), s >= 1, s <= range.upperBound else { throw bad(text, what, range) }
                step = s
            }
            let lo: Int
            var hi: Int
            if pieces[0] == "*" || pieces[0] == "?" {
                (lo, hi) = (range.lowerBound, range.upperBound)
            } else {
                let bounds = pieces[0].split(separator: "-", omittingEmptySubsequences: false)
                guard bounds.count <= 2 else { throw bad(text, what, range) }
                func value(_ s: Substring) throws(LoomError) -> Int {
                    if let v = Int(s), range.contains(v) { return v }
                    if let v = names[s.lowercased()] { return v }
                    throw bad(text, what, range)
                }
                lo = try value(bounds[0])
                hi = bounds.count == 2 ? try value(bounds[1]) : (pieces.count == 2 ? range.upperBound : lo)
                guard lo <= hi else { throw .invalidParameter("cron \(what) field '\(text)': the range \(lo)-\(hi) runs backwards") }
            }
            hi = min(hi, range.upperBound)
            for v in stride(from: lo, through: hi, by: step) { bits |= 1 << UInt64(v) }
        }
        return bits
    }

    private static func bad(_ text: String, _ what: String, _ range: ClosedRange<Int>) -> LoomError {
        .invalidParameter("cron \(what) field '\(text)' is not valid (values \(range.lowerBound)-\(range.upperBound), *, a-b, */n, lists with commas)")
    }

    /// The first time after `date` (strictly) that the schedule matches, to the minute (UTC);
    /// nil when none within eight years (a schedule such as February 30th is refused earlier).
    public func next(after date: Date) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let start = (date.timeIntervalSince1970 / 60).rounded(.down) * 60 + 60
        var c = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: Date(timeIntervalSince1970: start))
        let limit = (c.year ?? 1970) + 8
        while let year = c.year, year <= limit {
            guard months & (1 << UInt64(c.month!)) != 0 else {
                c.month! += 1
                if c.month! > 12 { c.month = 1; c.year! += 1 }
                (c.day, c.hour, c.minute) = (1, 0, 0)
                continue
            }
            guard let day = calendar.date(from: DateComponents(year: c.year, month: c.month, day: c.day)),
                  calendar.component(.month, from: day) == c.month else {
                // Past the month's last day.
                c.month! += 1
                if c.month! > 12 { c.month = 1; c.year! += 1 }
                (c.day, c.hour, c.minute) = (1, 0, 0)
                continue
            }
            let weekday = calendar.component(.weekday, from: day) - 1
            let dayOK = days & (1 << UInt64(c.day!)) != 0
            let weekdayOK = weekdays & (1 << UInt64(weekday)) != 0
            let matches = daysRestricted && weekdaysRestricted ? (dayOK || weekdayOK) : (dayOK && weekdayOK)
            guard matches else {
                c.day! += 1
                (c.hour, c.minute) = (0, 0)
                continue
            }
            guard hours & (1 << UInt64(c.hour!)) != 0 else {
                c.hour! += 1
                c.minute = 0
                if c.hour! > 23 { c.day! += 1; c.hour = 0 }
                continue
            }
            guard minutes & (1 << UInt64(c.minute!)) != 0 else {
                c.minute! += 1
                if c.minute! > 59 { c.hour! += 1; c.minute = 0 }
                if c.hour! > 23 { c.day! += 1; c.hour = 0 }
                continue
            }
            return calendar.date(from: c)
        }
        return nil
    }
}

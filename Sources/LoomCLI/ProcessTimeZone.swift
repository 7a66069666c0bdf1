import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The time zone Foundation works in inside the long-running processes (`loom server`,
/// `loom worker`).
enum ProcessTimeZone {
    /// Pins Foundation's current time zone to GMT. These processes keep every time in UTC already
    /// (log lines, the UI, cron schedules, collection folders, the HTTP `Date` header), yet the
    /// first `Calendar` made (Hummingbird makes one for its `Date` header) looks the machine's
    /// zone up by name through ICU, which maps ICU's zone tables: about 2 MiB of resident memory
    /// in an idle server, for nothing. GMT is the one zone Foundation answers without ICU.
    ///
    /// `TZ` is set only while Foundation reads it, then put back as it was, so the processes the
    /// server starts (pipeline steps, model runtimes) keep the operator's time zone. Call it first,
    /// before other threads may read the environment.
    static func pinToGMT() {
        let previous = getenv("TZ").map { String(cString: $0) }
        setenv("TZ", "GMT", 1)
        _ = TimeZone.current
        if let previous { setenv("TZ", previous, 1) } else { unsetenv("TZ") }
    }
}

import Foundation

/// Keeps secrets out of logs and messages.
public enum Redaction {
    /// `postgresql://user:secret@host/db` → `postgresql://user:***@host/db`.
    public static func redactURL(_ url: String) -> String {
        guard var comps = URLComponents(string: url), comps.password != nil else { return url }
        comps.password = "***"
        return comps.string ?? "<redacted>"
    }
}

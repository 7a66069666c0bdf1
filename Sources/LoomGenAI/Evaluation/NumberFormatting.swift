import Foundation

/// Renders numbers for messages: integral values without a fraction
/// (`3`, not `3.0`), others with Swift's shortest round-trip form.
enum NumberFormatting {
    static func format(_ value: Double) -> String {
        if value.isFinite, value.rounded() == value, abs(value) < 1e15 {
            return String(Int64(value))
        }
        return String(value)
    }
}

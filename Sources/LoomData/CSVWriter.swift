import Foundation
import LoomCore

/// Writes CSV (RFC 4180) to a file through a buffer: a field is quoted when it holds the
/// delimiter, a quote, a line break or leading or trailing spaces; a missing value is an empty
/// field.
public final class CSVWriter {
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private let delimiter: UInt8
    /// Whether `close` closes the file (not when it was handed in open).
    private var ownsHandle = false
    public private(set) var rows: Int64 = 0

    public convenience init(path: String, columns: [String], delimiter: UInt8 = UInt8(ascii: ",")) throws {
        // Opened in place (not FileManager.createFile, which writes a new file and renames it
        // over the path: that would replace a device such as /dev/null with a regular file).
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw LoomError.invalidParameter("Cannot create \(path): \(String(cString: strerror(errno)))")
        }
        self.init(handle: FileHandle(fileDescriptor: fd, closeOnDealloc: true), columns: columns, delimiter: delimiter)
        ownsHandle = true
    }

    /// Writes to an open file (standard output, say).
    public init(handle h: FileHandle, columns: [String], delimiter: UInt8 = UInt8(ascii: ",")) {
        handle = h
        self.delimiter = delimiter
        buffer.reserveCapacity(1 << 20)
        for (i, c) in columns.enumerated() {
            if i > 0 { buffer.append(delimiter) }
            field(Array(c.utf8)[...])
        }
        buffer.append(UInt8(ascii: "\n"))
    }

    /// Appends one record; nil fields are missing.
    public func write(_ fields: [ArraySlice<UInt8>?]) throws {
        for (i, f) in fields.enumerated() {
            if i > 0 { buffer.append(delimiter) }
            if let f { field(f) }
        }
        buffer.append(UInt8(ascii: "\n"))
        rows += 1
        if buffer.count >= 1 << 20 { try flush() }
    }

    private func field(_ f: ArraySlice<UInt8>) {
        var quote = f.first == UInt8(ascii: " ") || f.last == UInt8(ascii: " ")
        if !quote {
            for b in f where b == delimiter || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r") {
                quote = true
                break
            }
        }
        guard quote else {
            buffer.append(contentsOf: f)
            return
        }
        buffer.append(UInt8(ascii: "\""))
        for b in f {
            if b == UInt8(ascii: "\"") { buffer.append(b) }
            buffer.append(b)
        }
        buffer.append(UInt8(ascii: "\""))
    }

    func flush() throws {
        guard !buffer.isEmpty else { return }
        do {
            try handle.write(contentsOf: buffer)
        } catch {
            throw LoomError.unavailable("Cannot write the output: \(error.localizedDescription)")
        }
        buffer.removeAll(keepingCapacity: true)
    }

    public func close() throws {
        try flush()
        if ownsHandle { try? handle.close() }
    }
}

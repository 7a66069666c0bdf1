/// Appends little-endian binary data; used by the index serializers.
struct BinaryWriter {
    private(set) var bytes: [UInt8] = []

    /// Starts a buffer with a 4-byte magic and a format version.
    init(magic: [UInt8], version: UInt32) {
        bytes.append(contentsOf: magic)
        write(version)
    }

    mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func write(_ value: Double) {
        write(value.bitPattern)
    }

    mutating func write(_ value: Int) {
        write(Int64(value))
    }

    /// Writes the elements (no count) in little-endian order.
    mutating func writeElements<T: FixedWidthInteger>(_ values: [T]) {
        #if _endian(little)
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }
        #else
        for value in values { write(value) }
        #endif
    }

    /// Writes the elements (no count) as little-endian IEEE-754 bit patterns.
    mutating func writeElements(_ values: [Float]) {
        #if _endian(little)
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }
        #else
        for value in values { write(value.bitPattern) }
        #endif
    }

    /// Writes a UTF-8 string prefixed with its byte length.
    mutating func write(_ string: String) {
        write(UInt32(truncatingIfNeeded: string.utf8.count))
        bytes.append(contentsOf: string.utf8)
    }

    /// Appends the checksum of everything written and returns the buffer.
    consuming func finish() -> [UInt8] {
        let checksum = bytes.withUnsafeBytes(Checksum.compute)
        write(checksum)
        return bytes
    }
}

/// Reads little-endian binary data written by ``BinaryWriter``, throwing
/// ``SerializationError`` instead of reading out of bounds.
struct BinaryReader {
    private let bytes: [UInt8]
    /// End of the payload (the trailing 8-byte checksum is excluded).
    private let end: Int
    private var offset: Int

    /// Checks the magic, the checksum and the version, and positions the
    /// reader after the header.
    init(_ bytes: [UInt8], magic: [UInt8], kind: String, version: UInt32) throws {
        let headerSize = magic.count + 4
        guard bytes.count >= headerSize + 8 else {
            if bytes.count >= magic.count, !bytes.starts(with: magic) {
                throw SerializationError.badMagic(expected: kind)
            }
            throw SerializationError.truncated
        }
        guard bytes.starts(with: magic) else { throw SerializationError.badMagic(expected: kind) }
        self.bytes = bytes
        self.end = bytes.count - 8
        self.offset = magic.count
        let stored = UInt64(littleEndian: bytes.withUnsafeBytes {
            $0.loadUnaligned(fromByteOffset: bytes.count - 8, as: UInt64.self)
        })
        let actual = bytes.withUnsafeBytes { Checksum.compute(UnsafeRawBufferPointer(rebasing: $0[..<(bytes.count - 8)])) }
        let found = try read(UInt32.self)
        guard found == version else { throw SerializationError.unsupportedVersion(found) }
        guard stored == actual else { throw SerializationError.checksumMismatch }
    }

    /// Bytes left before the checksum.
    var remaining: Int { end - offset }

    mutating func read<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw SerializationError.truncated }
        let value = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
        offset += size
        return T(littleEndian: value)
    }

    mutating func readDouble() throws -> Double {
        Double(bitPattern: try read(UInt64.self))
    }

    /// Reads a signed 64-bit integer that must lie in `range`.
    mutating func readInt(in range: ClosedRange<Int>, _ what: String) throws -> Int {
        let raw = try read(Int64.self)
        guard let value = Int(exactly: raw), range.contains(value) else {
            throw SerializationError.corrupt("\(what) out of range (\(raw))")
        }
        return value
    }

    /// Reads `count` integers; fails before allocating if the buffer is too short.
    mutating func readElements<T: FixedWidthInteger>(_ type: T.Type, count: Int) throws -> [T] {
        let size = MemoryLayout<T>.size
        guard count >= 0, count <= remaining / size else { throw SerializationError.truncated }
        let start = offset
        let result = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { raw in
                let source = UnsafeRawBufferPointer(rebasing: raw[start..<(start + count * size)])
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
            }
            initialized = count
        }
        offset += count * size
        #if _endian(little)
        return result
        #else
        return result.map { T(littleEndian: $0) }
        #endif
    }

    /// Reads `count` floats stored as little-endian bit patterns.
    mutating func readFloats(count: Int) throws -> [Float] {
        try readElements(UInt32.self, count: count).map { Float(bitPattern: $0) }
    }

    /// Reads a length-prefixed UTF-8 string, rejecting invalid UTF-8.
    mutating func readString() throws -> String {
        let length = Int(try read(UInt32.self))
        guard length <= remaining else { throw SerializationError.truncated }
        let slice = bytes[offset..<(offset + length)]
        offset += length
        guard let string = String(validating: slice, as: UTF8.self) else {
            throw SerializationError.corrupt("invalid UTF-8 in string")
        }
        return string
    }

    /// Throws unless every payload byte has been read.
    func expectEnd() throws {
        guard offset == end else { throw SerializationError.corrupt("\(remaining) unexpected trailing bytes") }
    }
}

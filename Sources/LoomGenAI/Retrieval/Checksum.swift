/// A fast 64-bit checksum used to detect corrupted serialized indexes
/// (not cryptographic). It consumes 8-byte little-endian words; every step
/// is a bijection of the running state, so any single changed word changes
/// the result.
enum Checksum {
    static func compute(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        let prime: UInt64 = 0x0000_0100_0000_01B3
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(bytes.count)
        let words = bytes.count / 8
        for word in 0..<words {
            let value = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: word * 8, as: UInt64.self))
            hash = (hash ^ value) &* prime
            hash ^= hash >> 31
        }
        for index in (words * 8)..<bytes.count {
            hash = (hash ^ UInt64(bytes[index])) &* prime
        }
        hash ^= hash >> 29
        hash = hash &* 0xBF58_476D_1CE4_E5B9
        hash ^= hash >> 32
        return hash
    }
}

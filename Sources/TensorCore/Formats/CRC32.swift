/// CRC-32 (IEEE 802.3, as zlib and PNG define it), slicing-by-8: the one CRC of the
/// project (the journal's records, PNG chunks).
public enum CRC32 {
    /// Eight 256-entry tables, flat: table k starts at k·256.
    static let table: [UInt32] = {
        var t = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[0][i] = c
        }
        for i in 0..<256 {
            for k in 1..<8 { t[k][i] = (t[k - 1][i] >> 8) ^ t[0][Int(t[k - 1][i] & 0xFF)] }
        }
        return t.flatMap { $0 }
    }()

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { finish(update(start, $0)) }
    }

    public static let start: UInt32 = 0xFFFF_FFFF

    public static func finish(_ c: UInt32) -> UInt32 { c ^ 0xFFFF_FFFF }

    /// Continues a running CRC over more bytes.
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c = crc
        bytes.withMemoryRebound(to: UInt8.self) { b in
            table.withUnsafeBufferPointer { t in
                var i = 0
                let n = b.count
                while i + 8 <= n {
                    let lo = c ^ (UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24)
                    c = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                        ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                        ^ t[3 * 256 + Int(b[i + 4])] ^ t[2 * 256 + Int(b[i + 5])]
                        ^ t[1 * 256 + Int(b[i + 6])] ^ t[Int(b[i + 7])]
                    i += 8
                }
                while i < n {
                    c = t[Int((c ^ UInt32(b[i])) & 0xFF)] ^ (c >> 8)
                    i += 1
                }
            }
        }
        return c
    }
}

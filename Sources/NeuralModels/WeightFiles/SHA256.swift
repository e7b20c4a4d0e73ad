import Crypto

/// SHA-256 (FIPS 180-4) for the content hashes of weight files, job files and results:
/// apple/swift-crypto's (BoringSSL's, with the CPU's SHA extensions where it has them),
/// behind the small interface the project uses.
public struct SHA256: Sendable {
    private var hash = Crypto.SHA256()

    public init() {}

    /// The hex digest of `bytes`.
    public static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        var s = SHA256()
        s.update(bytes)
        return s.finalizeHex()
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { hex($0) }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        hash.update(bufferPointer: bytes)
    }

    public mutating func finalizeHex() -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        for byte in hash.finalize() { text += [digits[Int(byte >> 4)], digits[Int(byte & 15)]] }
        return String(decoding: text, as: UTF8.self)
    }
}

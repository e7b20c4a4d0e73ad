import Foundation
import TensorCore

/// An 8-bit grayscale image written as PNG (zlib "stored" blocks, so no compression
/// library is needed; Adler-32 computed here, CRC-32 from TensorCore).
public struct PNGImage: Sendable {
    public var width: Int
    public var height: Int
    /// Row-major gray levels.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height)
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A grid of images (each `[1, h, w]` or `[h, w]` values in [0, 1]) with a 2-pixel gap.
    public static func grid(_ images: Tensor, columns: Int) -> PNGImage {
        let n = images.shape[0], h = images.shape[images.shape.count - 2], w = images.shape[images.shape.count - 1]
        let rows = (n + columns - 1) / columns, gap = 2
        let width = columns * (w + gap) + gap, height = rows * (h + gap) + gap
        var px = [UInt8](repeating: 40, count: width * height)
        let v = images.scalars
        for k in 0..<n {
            let ox = gap + (k % columns) * (w + gap), oy = gap + (k / columns) * (h + gap)
            for y in 0..<h {
                for x in 0..<w {
                    let s = min(max(v[k * h * w + y * w + x], 0), 1)
                    px[(oy + y) * width + ox + x] = UInt8((s * 255).rounded())
                }
            }
        }
        return PNGImage(width: width, height: height, pixels: px)
    }

    public func encoded() -> [UInt8] {
        var raw = [UInt8]()
        raw.reserveCapacity((width + 1) * height)
        for y in 0..<height {
            raw.append(0)  // filter: none
            raw += pixels[(y * width)..<((y + 1) * width)]
        }
        var z: [UInt8] = [0x78, 0x01]
        var i = 0
        repeat {
            let n = min(65535, raw.count - i)
            z.append(i + n == raw.count ? 1 : 0)
            z += [UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            z += raw[i..<(i + n)]
            i += n
        } while i < raw.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in raw { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
        z += Self.bigEndian((b << 16) | a)
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        out += Self.chunk("IHDR", Self.bigEndian(UInt32(width)) + Self.bigEndian(UInt32(height)) + [8, 0, 0, 0, 0])
        out += Self.chunk("IDAT", z)
        out += Self.chunk("IEND", [])
        return out
    }

    public func write(to path: String) throws {
        try AtomicFile.write(Data(encoded()), to: path)
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + body + bigEndian(CRC32.checksum(body))
    }
}

import Foundation

/// An n-dimensional array read from or written to NumPy's `.npy` format (v1–v3).
///
/// Only what numpy, ArviZ and ProbeFarm exchange is accepted: little-endian `float32`
/// (`<f4`) and `float64` (`<f8`) in C order. Anything else is refused with a message
/// naming the file and what to change.
public struct NumPyArray: Sendable, Equatable {
    public enum ScalarType: String, Sendable {
        case float32 = "<f4"
        case float64 = "<f8"
        var size: Int { self == .float32 ? 4 : 8 }
    }

    public enum Storage: Sendable, Equatable {
        case float32([Float])
        case float64([Double])
    }

    public var shape: [Int]
    public var storage: Storage

    public var scalarType: ScalarType {
        if case .float32 = storage { return .float32 }
        return .float64
    }

    public var count: Int { shape.reduce(1, *) }

    public init(shape: [Int], float32 values: [Float]) {
        precondition(shape.reduce(1, *) == values.count)
        self.shape = shape
        self.storage = .float32(values)
    }

    public init(shape: [Int], float64 values: [Double]) {
        precondition(shape.reduce(1, *) == values.count)
        self.shape = shape
        self.storage = .float64(values)
    }

    public init(_ tensor: Tensor) {
        self.init(shape: tensor.shape, float32: tensor.scalars)
    }

    /// The values as Float64 (converted if stored as float32).
    public var float64Values: [Double] {
        switch storage {
        case .float64(let v): return v
        case .float32(let v): return v.map(Double.init)
        }
    }

    /// The values as Float32 (rounded if stored as float64).
    public var float32Values: [Float] {
        switch storage {
        case .float32(let v): return v
        case .float64(let v): return v.map(Float.init)
        }
    }

    /// The array as a Float32 tensor of the same shape.
    public var tensor: Tensor { Tensor(shape: shape, scalars: float32Values) }
}

/// Why an `.npy` file could not be read or written.
public struct NumPyFormatError: ProbeFarmError {
    public var path: String
    public var reason: String
    public var sysexit: Sysexit

    public var description: String { "\(path): \(reason)" }
}

extension NumPyArray {
    private static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY

    /// Reads an `.npy` file.
    /// - Throws: ``NumPyFormatError`` (exit 66 if missing, 65 for bad contents).
    public static func read(contentsOf path: String) throws -> NumPyArray {
        guard FileManager.default.fileExists(atPath: path) else {
            throw NumPyFormatError(path: path, reason: "no such file", sysexit: .noInput)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NumPyFormatError(path: path, reason: "cannot be read (permissions?)", sysexit: .noInput)
        }
        return try decode([UInt8](data), path: path)
    }

    /// Decodes the bytes of an `.npy` file; `path` names it in errors.
    public static func decode(_ bytes: [UInt8], path: String) throws -> NumPyArray {
        func fail(_ why: String) -> NumPyFormatError {
            NumPyFormatError(path: path, reason: why, sysexit: .dataError)
        }
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw fail("not a NumPy .npy file (bad magic; save it with numpy.save)")
        }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
            headerStart = 12
        default:
            throw fail("unsupported .npy format version \(major)")
        }
        guard headerStart + headerLength <= bytes.count else { throw fail("truncated header") }
        guard let header = String(bytes: bytes[headerStart..<(headerStart + headerLength)], encoding: .utf8)
        else { throw fail("header is not text") }
        let dict = try parseHeader(header, fail: fail)
        guard let descr = dict["descr"] else { throw fail("header lacks 'descr'") }
        guard let fortranText = dict["fortran_order"] else { throw fail("header lacks 'fortran_order'") }
        guard let shapeText = dict["shape"] else { throw fail("header lacks 'shape'") }
        if fortranText == "True" {
            throw fail("Fortran-order array; save a C-order copy (numpy.ascontiguousarray)")
        }
        let type: ScalarType
        switch descr {
        case "<f4": type = .float32
        case "<f8": type = .float64
        case ">f4", ">f8":
            throw fail("big-endian data (\(descr)); convert with arr.astype('<f8')")
        default:
            throw fail("dtype \(descr) is not supported; use float32 or float64 (arr.astype('float64'))")
        }
        let shape = try parseShape(shapeText, fail: fail)
        var count = 1
        for d in shape {
            let (p, o) = count.multipliedReportingOverflow(by: d)
            guard !o else { throw fail("shape \(shape) is too large") }
            count = p
        }
        let dataStart = headerStart + headerLength
        let (need, o) = count.multipliedReportingOverflow(by: type.size)
        guard !o, bytes.count - dataStart >= need else {
            throw fail("truncated data: shape \(shape) needs \(need) bytes, file has \(bytes.count - dataStart)")
        }
        return bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress! + dataStart
            switch type {
            case .float32:
                var v = [Float](repeating: 0, count: count)
                v.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(start: base, count: need)) }
                return NumPyArray(shape: shape, float32: v.map { Float(bitPattern: UInt32(littleEndian: $0.bitPattern)) })
            case .float64:
                var v = [Double](repeating: 0, count: count)
                v.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(start: base, count: need)) }
                return NumPyArray(shape: shape, float64: v.map { Double(bitPattern: UInt64(littleEndian: $0.bitPattern)) })
            }
        }
    }

    /// Parses the Python dict literal of an `.npy` header into key → raw value text.
    private static func parseHeader(_ text: String, fail: (String) -> NumPyFormatError) throws -> [String: String] {
        var s = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
        guard s.first == "{", s.last == "}" else { throw fail("header is not a dict") }
        s = s.dropFirst().dropLast()
        var result: [String: String] = [:]
        while true {
            s = s.drop { $0 == " " || $0 == "," || $0 == "\n" }
            if s.isEmpty { break }
            guard let q = s.first, q == "'" || q == "\"" else { throw fail("header key is not quoted") }
            s = s.dropFirst()
            guard let end = s.firstIndex(of: q) else { throw fail("unterminated header key") }
            let key = String(s[..<end])
            s = s[s.index(after: end)...].drop { $0 == " " }
            guard s.first == ":" else { throw fail("header lacks ':' after '\(key)'") }
            s = s.dropFirst().drop { $0 == " " }
            var value = ""
            if s.first == "(" {
                guard let close = s.firstIndex(of: ")") else { throw fail("unterminated shape tuple") }
                value = String(s[...close]); s = s[s.index(after: close)...]
            } else if let q2 = s.first, q2 == "'" || q2 == "\"" {
                let rest = s.dropFirst()
                guard let close = rest.firstIndex(of: q2) else { throw fail("unterminated string") }
                value = String(rest[..<close]); s = rest[rest.index(after: close)...]
            } else {
                let end = s.firstIndex { $0 == "," || $0 == " " } ?? s.endIndex
                value = String(s[..<end]); s = s[end...]
            }
            result[key] = value
        }
        return result
    }

    private static func parseShape(_ text: String, fail: (String) -> NumPyFormatError) throws -> [Int] {
        guard text.hasPrefix("("), text.hasSuffix(")") else { throw fail("shape \(text) is not a tuple") }
        let inner = text.dropFirst().dropLast()
        return try inner.split(separator: ",").compactMap { part -> Int? in
            let t = part.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { return nil }
            guard let v = Int(t.hasSuffix("L") ? String(t.dropLast()) : t), v >= 0 else {
                throw fail("shape \(text) has a bad dimension '\(t)'")
            }
            return v
        }
    }

    /// The bytes of a version-1.0 `.npy` file holding this array.
    public func encoded() -> [UInt8] {
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var header = "{'descr': '\(scalarType.rawValue)', 'fortran_order': False, 'shape': (\(dims)), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out = NumPyArray.magic + [1, 0]
        let n = header.utf8.count
        out += [UInt8(n & 0xFF), UInt8(n >> 8)]
        out += Array(header.utf8)
        switch storage {
        case .float32(let v):
            v.map { $0.bitPattern.littleEndian }.withUnsafeBytes { out += $0 }
        case .float64(let v):
            v.map { $0.bitPattern.littleEndian }.withUnsafeBytes { out += $0 }
        }
        return out
    }

    /// Writes the array atomically: to a temporary name beside `path`, then renamed.
    public func write(to path: String) throws {
        do {
            try AtomicFile.write(Data(encoded()), to: path)
        } catch let e as AtomicFile.Failure {
            throw NumPyFormatError(path: path, reason: e.reason, sysexit: e.sysexit)
        }
    }
}

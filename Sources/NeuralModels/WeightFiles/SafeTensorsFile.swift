import Foundation
import TensorCore

/// A safetensors file, memory-mapped and validated.
///
/// Format (huggingface/safetensors): an 8-byte little-endian header length N, N bytes of
/// JSON mapping tensor names to `{dtype, shape, data_offsets: [begin, end]}` (offsets
/// relative to the data that follows the header) plus an optional `__metadata__` map of
/// strings, then the raw little-endian data.
///
/// Opening checks everything that can be checked without knowing the model: header
/// length, JSON, dtypes, shapes, offsets inside the file and sizes matching the shapes.
/// F32 tensors at 4-byte-aligned offsets are used in place (no copy); F16, BF16 and F64
/// are converted to F32 on access.
public struct SafeTensorsFile: Sendable {
    public enum DType: String, Sendable, CaseIterable {
        case F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL
        case F8_E4M3, F8_E5M2

        public var size: Int {
            switch self {
            case .F64, .I64, .U64: 8
            case .F32, .I32, .U32: 4
            case .F16, .BF16, .I16, .U16: 2
            case .I8, .U8, .BOOL, .F8_E4M3, .F8_E5M2: 1
            }
        }

        /// Whether ProbeFarm can read this dtype as a parameter (converted to F32).
        public var isFloatingPoint: Bool { self == .F64 || self == .F32 || self == .F16 || self == .BF16 }
    }

    public struct Entry: Sendable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        /// Absolute byte range in the file.
        public var range: Range<Int>
        public var count: Int { shape.reduce(1, *) }
    }

    /// Headers larger than this are refused (the safetensors reference limit).
    public static let maximumHeaderLength = 100_000_000

    public let path: String
    public let mapping: MappedFile
    public let entries: [String: Entry]
    public let metadata: [String: String]
    public let dataStart: Int

    /// Opens and validates `path`.
    /// - Throws: ``ModelError`` naming the file and the tensor or header field at fault.
    public static func open(_ path: String) throws(ModelError) -> SafeTensorsFile {
        let mapping: MappedFile
        do { mapping = try MappedFile(path: path) } catch let e as ModelError { throw e } catch {
            throw ModelError(.missing, path: path, "\(error)")
        }
        func fail(_ message: String) -> ModelError { ModelError(.malformedFile, path: path, message) }

        let n64 = mapping.base.loadUnaligned(as: UInt64.self).littleEndian
        guard n64 <= UInt64(maximumHeaderLength) else {
            throw fail("header length \(n64) bytes is absurd (limit \(maximumHeaderLength)); not a safetensors file?")
        }
        let n = Int(n64)
        guard n > 0, 8 + n <= mapping.size else {
            throw fail("header length \(n) does not fit in the \(mapping.size)-byte file (truncated?)")
        }
        let headerData = Data(bytes: mapping.base + 8, count: n)
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: headerData) } catch {
            throw fail("header is not valid JSON")
        }
        guard let header = parsed as? [String: Any] else { throw fail("header is not a JSON object") }

        let dataStart = 8 + n
        let dataSize = mapping.size - dataStart
        var metadata: [String: String] = [:]
        var entries: [String: Entry] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw fail("__metadata__ value '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any] else { throw fail("tensor '\(name)': entry is not an object") }
            guard let dtypeName = info["dtype"] as? String else { throw fail("tensor '\(name)': missing dtype") }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw fail("tensor '\(name)': unknown dtype '\(dtypeName)'")
            }
            guard let shapeValues = info["shape"] as? [Any], let shape = integers(shapeValues) else {
                throw fail("tensor '\(name)': shape is not a list of non-negative integers")
            }
            guard let offsetValues = info["data_offsets"] as? [Any], let offsets = integers(offsetValues),
                  offsets.count == 2, offsets[0] <= offsets[1]
            else { throw fail("tensor '\(name)': data_offsets is not [begin, end]") }
            guard offsets[1] <= dataSize else {
                throw fail("tensor '\(name)': data_offsets [\(offsets[0]), \(offsets[1])] lie outside the \(dataSize) data bytes (truncated file?)")
            }
            var count = 1
            for d in shape {
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard !o, p <= dataSize else { throw fail("tensor '\(name)': shape \(shape) is larger than the file") }
                count = p
            }
            guard !shape.contains(0) else { throw fail("tensor '\(name)': shape \(shape) has a dimension of size 0") }
            guard offsets[1] - offsets[0] == count * dtype.size else {
                throw fail("tensor '\(name)': \(offsets[1] - offsets[0]) bytes for shape \(shape) of \(dtypeName) (expected \(count * dtype.size))")
            }
            entries[name] = Entry(name: name, dtype: dtype, shape: shape,
                                  range: (dataStart + offsets[0])..<(dataStart + offsets[1]))
        }
        // JSON objects with a key twice parse to one entry: count the entries' descriptions.
        let described = String(decoding: headerData, as: UTF8.self).components(separatedBy: "\"data_offsets\"").count - 1
        guard described <= entries.count else { throw fail("the header names a tensor twice (\(described) tensor entries, \(entries.count) names)") }
        // Tensors may not share bytes.
        let ordered = entries.values.filter { !$0.range.isEmpty }.sorted { $0.range.lowerBound < $1.range.lowerBound }
        for (a, b) in zip(ordered, ordered.dropFirst()) where b.range.lowerBound < a.range.upperBound {
            throw fail("tensors '\(a.name)' and '\(b.name)' overlap in the file (bytes \(b.range.lowerBound)..<\(a.range.upperBound))")
        }
        return SafeTensorsFile(path: path, mapping: mapping, entries: entries, metadata: metadata, dataStart: dataStart)
    }

    /// Parses JSON numbers that must be non-negative integers below 2⁵³.
    private static func integers(_ values: [Any]) -> [Int]? {
        var out = [Int]()
        for v in values {
            guard let n = v as? NSNumber else { return nil }
            let d = n.doubleValue
            guard d >= 0, d < 9.0e15, d == d.rounded() else { return nil }
            out.append(Int(d))
        }
        return out
    }

    /// The SHA-256 of the data section (everything after the header): the content hash
    /// stored in `probefarm.sha256`.
    public func dataSHA256() -> String {
        SHA256.hex(UnsafeRawBufferPointer(start: mapping.base + dataStart, count: mapping.size - dataStart))
    }

    /// The SHA-256 of the whole file (what a farm uses to name and fetch weights).
    public func fileSHA256() -> String { SHA256.hex(mapping.bytes) }

    /// The tensor `name` as F32, optionally one member of a stacked ensemble (leading
    /// dimension K). Aligned F32 data is borrowed from the mapping, not copied.
    public func tensor(_ name: String, member: Int? = nil) throws(ModelError) -> Tensor {
        guard let e = entries[name] else {
            throw ModelError(.tensorMismatch, path: path, "tensor '\(name)' is named by the architecture but not in the file")
        }
        guard e.dtype.isFloatingPoint else {
            throw ModelError(.tensorMismatch, path: path, "tensor '\(name)' has dtype \(e.dtype.rawValue); parameters must be F32, F16, BF16 or F64")
        }
        var shape = e.shape
        var start = e.range.lowerBound
        if let member {
            guard let k = shape.first, member < k else {
                throw ModelError(.tensorMismatch, path: path, "tensor '\(name)' lacks the leading ensemble dimension")
            }
            shape.removeFirst()
            start += member * shape.reduce(1, *) * e.dtype.size
        }
        let t = convert(e, shape: shape, at: mapping.base + start)
        let bad = t.withUnsafeBufferPointer { $0.firstIndex { !$0.isFinite } }
        if let bad {
            throw ModelError(.malformedFile, path: path, "tensor '\(name)'\(member.map { " (ensemble member \($0))" } ?? "") holds a non-finite value (NaN or ±inf as F32) at element \(bad)")
        }
        return t
    }

    /// The tensor's elements at `raw` as F32 (aligned F32 borrowed, not copied).
    func convert(_ e: Entry, shape: [Int], at raw: UnsafeRawPointer) -> Tensor {
        let count = shape.reduce(1, *)
        switch e.dtype {
        case .F32 where Int(bitPattern: raw) % MemoryLayout<Float>.alignment == 0:
            let storage = TensorStorage.borrowing(raw.assumingMemoryBound(to: Float.self), count: count, owner: mapping)
            return Tensor(shape: shape, storage: storage)
        case .F32:
            return Tensor(shape: shape) { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        case .F64:
            return Tensor(shape: shape) { Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) }
        case .F16:
            return Tensor(shape: shape) { Self.halfToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
        case .BF16:
            return Tensor(shape: shape) { Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16) }
        default:
            fatalError("unreachable: checked isFloatingPoint")
        }
    }

    /// IEEE 754 binary16 → binary32.
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            let v = Float(mantissa) * 0x1p-24  // subnormal
            return sign != 0 ? -v : v
        }
        if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
        return Float(bitPattern: sign | (UInt32(exponent - 15 + 127) << 23) | (mantissa << 13))
    }
}

import Foundation
import Yams

/// A job file's YAML after tag resolution: mappings, lists and typed scalars, in a form
/// that travels as JSON. A farm's coordinator reads the file and sends this to its
/// workers, which rebuild the job from it: they read exactly the values the coordinator
/// read, and need no YAML parser (resolving YAML's plain scalars compiles ICU regular
/// expressions, about a megabyte of code and heap in every worker process).
public enum JobDocument: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case list([JobDocument])
    /// Entries sorted by key, so that one document has one encoding.
    case map([Entry])
    /// A value of a kind no job key accepts (a timestamp, binary data, a set): its type,
    /// kept so that the value reads as nothing on both sides, as the original did.
    case unsupported(String)

    public struct Entry: Sendable, Equatable {
        public var key: JobDocument
        public var value: JobDocument

        public init(key: JobDocument, value: JobDocument) {
            self.key = key
            self.value = value
        }
    }

    /// The most values a job file may expand to (aliases counted at every use), and the
    /// deepest nesting: a job is a few dozen values, an "alias bomb" billions.
    public static let maxValues = 100_000
    public static let maxDepth = 64

    /// A job file beyond ``maxValues`` or ``maxDepth``.
    public struct TooLarge: Error, CustomStringConvertible {
        public var description: String
    }

    /// Parses YAML text. The composed tree (aliases shared, not copied) is measured first:
    /// a document that would expand past the limits is refused before it is built.
    public init(yaml text: String) throws {
        if let root = try Yams.compose(yaml: text) {
            var budget = Self.maxValues
            try Self.measure(root, depth: 1, budget: &budget)
        }
        self.init(resolved: try Yams.load(yaml: text) ?? NSNull())
    }

    static func measure(_ node: Node, depth: Int, budget: inout Int) throws {
        guard depth <= maxDepth else { throw TooLarge(description: "nested deeper than \(maxDepth) levels") }
        budget -= 1
        guard budget >= 0 else {
            throw TooLarge(description: "expands to more than \(maxValues) values (aliases are counted at every use)")
        }
        switch node {
        case .mapping(let m):
            for (k, v) in m {
                try measure(k, depth: depth + 1, budget: &budget)
                try measure(v, depth: depth + 1, budget: &budget)
            }
        case .sequence(let items):
            for v in items { try measure(v, depth: depth + 1, budget: &budget) }
        default:
            break
        }
    }

    /// Wraps a value as Yams loads it: `[AnyHashable: Any]`, `[Any]`, `Int`, `Double`,
    /// `Bool`, `String`, `NSNull`; anything else is `.unsupported`.
    public init(resolved value: Any) {
        switch value {
        case is NSNull: self = .null
        case let b as Bool: self = .bool(b)
        case let i as Int: self = .int(i)
        case let x as Double: self = .float(x)
        case let s as String: self = .string(s)
        case let list as [Any]: self = .list(list.map(JobDocument.init(resolved:)))
        case let map as [AnyHashable: Any]:
            self = .map(map.map { Entry(key: JobDocument(resolved: $0.key.base), value: JobDocument(resolved: $0.value)) }
                .sorted { $0.key.sortKey < $1.key.sortKey })
        default: self = .unsupported(String(describing: type(of: value)))
        }
    }

    /// The value as Yams would have loaded it (mappings as `[AnyHashable: Any]`).
    public var resolved: Any {
        switch self {
        case .null: NSNull()
        case .bool(let b): b
        case .int(let i): i
        case .float(let x): x
        case .string(let s): s
        case .list(let items): items.map(\.resolved)
        case .map(let entries):
            Dictionary(entries.map { (AnyHashable($0.key.hashableKey), $0.value.resolved) }, uniquingKeysWith: { a, _ in a })
        case .unsupported(let type): Unsupported(type: type)
        }
    }

    /// What a value of an unsupported kind becomes: casts to nothing a job reads.
    struct Unsupported: Hashable { var type: String }

    var hashableKey: AnyHashable {
        switch self {
        case .bool(let b): AnyHashable(b)
        case .int(let i): AnyHashable(i)
        case .float(let x): AnyHashable(x)
        case .string(let s): AnyHashable(s)
        case .null: AnyHashable(Unsupported(type: "null"))
        default: AnyHashable(Unsupported(type: sortKey))
        }
    }

    var sortKey: String {
        switch self {
        case .null: "0"
        case .bool(let b): "1\(b)"
        case .int(let i): "2\(i)"
        case .float(let x): "3\(x)"
        case .string(let s): "4\(s)"
        case .list(let items): "5[\(items.map(\.sortKey).joined(separator: ","))]"
        case .map(let entries): "6{\(entries.map { "\($0.key.sortKey):\($0.value.sortKey)" }.joined(separator: ","))}"
        case .unsupported(let type): "7\(type)"
        }
    }
}

/// Each value is a one-key object naming its kind (`{"int": 3}`, `{"float": 3.0}`): JSON
/// numbers alone would not tell 3 from 3.0, which a job reads differently. YAML's `.inf`,
/// `-.inf` and `.nan`, which JSON has no numbers for, are the strings "inf", "-inf", "nan".
extension JobDocument: Codable {
    static let nonFinite: [String: Double] = ["inf": .infinity, "-inf": -.infinity, "nan": .nan]

    enum Kind: String, CodingKey { case null, bool, int, float, string, list, map, unsupported }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Kind.self)
        guard c.allKeys.count == 1, let kind = c.allKeys.first else {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription: "a document value has exactly one kind"))
        }
        switch kind {
        case .null: self = .null
        case .bool: self = .bool(try c.decode(Bool.self, forKey: kind))
        case .int: self = .int(try c.decode(Int.self, forKey: kind))
        case .float:
            if let x = try? c.decode(Double.self, forKey: kind) {
                self = .float(x)
            } else {
                guard let x = Self.nonFinite[try c.decode(String.self, forKey: kind)] else {
                    throw DecodingError.dataCorruptedError(forKey: kind, in: c, debugDescription: "not a number")
                }
                self = .float(x)
            }
        case .string: self = .string(try c.decode(String.self, forKey: kind))
        case .list: self = .list(try c.decode([JobDocument].self, forKey: kind))
        case .map: self = .map(try c.decode([[JobDocument]].self, forKey: kind).map { pair in
            guard pair.count == 2 else {
                throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription: "a map entry is [key, value]"))
            }
            return Entry(key: pair[0], value: pair[1])
        })
        case .unsupported: self = .unsupported(try c.decode(String.self, forKey: kind))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Kind.self)
        switch self {
        case .null: try c.encode(0, forKey: .null)
        case .bool(let b): try c.encode(b, forKey: .bool)
        case .int(let i): try c.encode(i, forKey: .int)
        case .float(let x):
            if x.isFinite { try c.encode(x, forKey: .float) } else { try c.encode(x.isNaN ? "nan" : x > 0 ? "inf" : "-inf", forKey: .float) }
        case .string(let s): try c.encode(s, forKey: .string)
        case .list(let items): try c.encode(items, forKey: .list)
        case .map(let entries): try c.encode(entries.map { [$0.key, $0.value] }, forKey: .map)
        case .unsupported(let type): try c.encode(type, forKey: .unsupported)
        }
    }
}

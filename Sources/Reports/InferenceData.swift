import CNetCDF
import Foundation
import TensorCore

/// ArviZ InferenceData as a NetCDF-4 file, written through the NetCDF-C library: one
/// NetCDF group per InferenceData group (`posterior`, `sample_stats`), every variable with
/// dims (chain, draw, …) and integer coordinates, as `arviz.from_netcdf` reads them.
public struct InferenceData {
    public struct Variable {
        public enum Values {
            case float32([Float])
            case float64([Double])
            case int64([Int64])
            /// Stored as int8 with `dtype: bool`, as xarray writes booleans.
            case bool([Bool])

            var count: Int {
                switch self {
                case .float32(let v): return v.count
                case .float64(let v): return v.count
                case .int64(let v): return v.count
                case .bool(let v): return v.count
                }
            }
        }

        public var name: String
        /// The dims after (chain, draw), with their sizes.
        public var dims: [(name: String, size: Int)]
        /// Chain-major: chain 0's draws first, each draw's values in row-major order.
        public var values: Values
        public var attributes: [String: String]

        public init(_ name: String, dims: [(name: String, size: Int)] = [], _ values: Values, attributes: [String: String] = [:]) {
            self.name = name
            self.dims = dims
            self.values = values
            self.attributes = attributes
        }
    }

    public var chains: Int
    public var draws: Int
    public var groups: [(name: String, variables: [Variable])]
    /// File attributes (provenance); every group also gets `created_at` and `inference_library`.
    public var attributes: [String: String]

    public init(chains: Int, draws: Int, groups: [(name: String, variables: [Variable])], attributes: [String: String]) {
        self.chains = chains
        self.draws = draws
        self.groups = groups
        self.attributes = attributes
    }

    /// A NetCDF-C call that failed: the file, what was being written and the library's words.
    public struct Failure: ProbeFarmError {
        public var description: String
        /// 74 for a file that cannot be written; 65/66 for one that cannot be read.
        public var sysexit: Sysexit = .ioError
    }

    /// Writes the file atomically (a temporary name in the same folder, then a rename).
    public func write(to path: String) throws {
        let temporary = path + ".tmp-\(getpid())"
        do {
            try write(temporary: temporary, for: path)
            guard rename(temporary, path) == 0 else {
                throw Failure(description: "\(path): cannot rename the finished file into place: \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// Throws the library's words for a failed NetCDF-C call, naming the file and the step.
    static func check(_ status: Int32, _ path: String, _ what: @autoclosure () -> String) throws {
        guard status == NC_NOERR else {
            throw Failure(description: "\(path): NetCDF \(what()): \(String(cString: nc_strerror(status)))")
        }
    }

    private func write(temporary: String, for path: String) throws {
        func check(_ status: Int32, _ what: @autoclosure () -> String) throws { try Self.check(status, path, what()) }
        var file: Int32 = 0
        try check(nc_create(temporary, NC_NETCDF4 | NC_CLOBBER, &file), "create")
        var open = true
        defer { if open { nc_close(file) } }
        let created = ISO8601DateFormatter().string(from: Date())
        for (key, value) in attributes.sorted(by: { $0.key < $1.key }) {
            try check(nc_put_att_text(file, NC_GLOBAL, key, value.utf8.count, value), "attribute \(key)")
        }
        for (groupName, variables) in groups {
            var group: Int32 = 0
            try check(nc_def_grp(file, groupName, &group), "group \(groupName)")
            for (key, value) in (attributes.merging(["created_at": created, "inference_library": "probefarm"]) { $1 })
                .sorted(by: { $0.key < $1.key }) {
                try check(nc_put_att_text(group, NC_GLOBAL, key, value.utf8.count, value), "\(groupName) attribute \(key)")
            }
            // Dimensions with integer coordinate variables of the same name.
            var dimensionIDs = [String: Int32]()
            func dimension(_ name: String, _ size: Int) throws -> Int32 {
                if let id = dimensionIDs[name] { return id }
                var id: Int32 = 0, coordinate: Int32 = 0
                try check(nc_def_dim(group, name, size, &id), "\(groupName) dimension \(name)")
                try check(nc_def_var(group, name, NC_INT64, 1, [id], &coordinate), "\(groupName) coordinate \(name)")
                try check(nc_put_var_longlong(group, coordinate, (0..<Int64(size)).map { $0 }), "\(groupName) coordinate \(name)")
                dimensionIDs[name] = id
                return id
            }
            let chain = try dimension("chain", chains), draw = try dimension("draw", draws)
            for v in variables {
                let ids = try [chain, draw] + v.dims.map { try dimension($0.name, $0.size) }
                let expected = chains * draws * v.dims.reduce(1) { $0 * $1.size }
                guard v.values.count == expected else {
                    throw Failure(description: "\(path): \(groupName)/\(v.name) has \(v.values.count) values, its dims \(expected)")
                }
                let type: nc_type
                switch v.values {
                case .float32: type = NC_FLOAT
                case .float64: type = NC_DOUBLE
                case .int64: type = NC_INT64
                case .bool: type = NC_BYTE
                }
                var id: Int32 = 0
                try check(nc_def_var(group, v.name, type, Int32(ids.count), ids, &id), "\(groupName) variable \(v.name)")
                if expected > 4096 { try check(nc_def_var_deflate(group, id, 1, 1, 1), "\(groupName) compression of \(v.name)") }
                var attributes = v.attributes
                if case .bool = v.values { attributes["dtype"] = "bool" }
                for (key, value) in attributes.sorted(by: { $0.key < $1.key }) {
                    try check(nc_put_att_text(group, id, key, value.utf8.count, value), "\(groupName)/\(v.name) attribute \(key)")
                }
                switch v.values {
                case .float32(let values): try check(nc_put_var_float(group, id, values), "\(groupName)/\(v.name) values")
                case .float64(let values): try check(nc_put_var_double(group, id, values), "\(groupName)/\(v.name) values")
                case .int64(let values): try check(nc_put_var_longlong(group, id, values), "\(groupName)/\(v.name) values")
                case .bool(let values):
                    try check(nc_put_var_schar(group, id, values.map { $0 ? 1 : 0 }), "\(groupName)/\(v.name) values")
                }
            }
        }
        open = false
        try check(nc_close(file), "close")
    }
}

extension InferenceData {
    /// A variable read back: its dims (chain, draw first) and values as Double, row-major.
    public struct ReadVariable {
        public var name: String
        public var shape: [Int]
        public var values: [Double]
    }

    /// Reads `names` from `group` of a NetCDF-4 InferenceData file (those present), and the
    /// file's attributes.
    public static func read(_ path: String, group groupName: String, names: [String]) throws -> (variables: [ReadVariable], attributes: [String: String]) {
        func check(_ status: Int32, _ what: @autoclosure () -> String) throws { try Self.check(status, path, what()) }
        var file: Int32 = 0
        do { try check(nc_open(path, NC_NOWRITE, &file), "cannot open as NetCDF") } catch let f as Failure {
            throw Failure(description: f.description, sysexit: FileManager.default.fileExists(atPath: path) ? .dataError : .noInput)
        }
        defer { nc_close(file) }
        var group: Int32 = 0
        guard nc_inq_grp_ncid(file, groupName, &group) == NC_NOERR else {
            throw Failure(description: "\(path): no group '\(groupName)' (not an InferenceData file?)", sysexit: .dataError)
        }
        var attributes = [String: String]()
        var count: Int32 = 0
        nc_inq_natts(file, &count)
        for i in 0..<count {
            var name = [CChar](repeating: 0, count: Int(NC_MAX_NAME) + 1), type: nc_type = 0, length = 0
            guard nc_inq_attname(file, NC_GLOBAL, i, &name) == NC_NOERR, nc_inq_att(file, NC_GLOBAL, name, &type, &length) == NC_NOERR,
                  type == NC_CHAR else { continue }
            var text = [CChar](repeating: 0, count: length + 1)
            func string(_ c: [CChar]) -> String { String(decoding: c.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
            if nc_get_att_text(file, NC_GLOBAL, name, &text) == NC_NOERR { attributes[string(name)] = string(text) }
        }
        var out = [ReadVariable]()
        for name in names {
            var id: Int32 = 0
            guard nc_inq_varid(group, name, &id) == NC_NOERR else { continue }
            var rank: Int32 = 0
            try check(nc_inq_varndims(group, id, &rank), "\(groupName)/\(name)")
            var dims = [Int32](repeating: 0, count: Int(rank))
            try check(nc_inq_vardimid(group, id, &dims), "\(groupName)/\(name)")
            let shape = try dims.map { d -> Int in
                var n = 0
                try check(nc_inq_dimlen(group, d, &n), "\(groupName)/\(name) dimension")
                return n
            }
            let total = shape.reduce(1, *)
            guard total <= 1 << 31 else { throw Failure(description: "\(path): \(groupName)/\(name) has \(total) values", sysexit: .dataError) }
            var values = [Double](repeating: 0, count: total)
            try check(nc_get_var_double(group, id, &values), "\(groupName)/\(name) values")
            out.append(ReadVariable(name: name, shape: shape, values: values))
        }
        return (out, attributes)
    }
}

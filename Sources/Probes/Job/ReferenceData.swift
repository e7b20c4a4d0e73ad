import Foundation
import NeuralModels
import TensorCore

/// The job's `reference:` key: the data the answer is compared with (JOBSPEC §2).
public struct ReferenceSpec: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        /// `{npy: x.npy, labels: y.npy}`: rows of the data (any shape whose size is the data's).
        case npy(inputs: String, labels: String?)
        /// `{csv: file, label: column}`: a header row; encoded with the probed model's
        /// `probefarm.features` when it has them, else every other column is a number.
        case csv(String, label: String?)
        /// `{idx: images, labels: labels}`: IDX files as Fashion-MNIST ships them.
        case idx(images: String, labels: String)
    }

    public var source: Source
    /// `limit`: the first n items only.
    public var limit: Int?

    public init(source: Source, limit: Int?) {
        self.source = source
        self.limit = limit
    }

    public var files: [String] {
        switch source {
        case let .npy(x, y): return [x] + (y.map { [$0] } ?? [])
        case let .csv(f, _): return [f]
        case let .idx(x, y): return [x, y]
        }
    }

    init(_ value: Any, reader p: Job.Reader) throws(JobError) {
        guard let m = value as? [String: Any] else {
            throw p.fail("reference", "must be {npy: x.npy, labels: y.npy}, {csv: file} or {idx: images, labels: labels}")
        }
        try p.allowed(m, at: "reference", ["npy", "csv", "idx", "labels", "label", "limit"])
        func path(_ k: String) throws(JobError) -> String? {
            guard let v = m[k] else { return nil }
            guard let s = v as? String, !s.isEmpty else { throw p.fail("reference.\(k)", "must be a file path") }
            return s
        }
        let kinds = ["npy", "csv", "idx"].filter { m[$0] != nil }
        guard kinds.count == 1 else {
            throw p.fail("reference", kinds.isEmpty ? "names no data: give npy, csv or idx" : "names \(kinds.joined(separator: " and ")); give one")
        }
        switch kinds[0] {
        case "npy":
            if m["label"] != nil { throw p.fail("reference.label", "is for csv; npy data takes labels: y.npy") }
            source = .npy(inputs: try path("npy")!, labels: try path("labels"))
        case "csv":
            if m["labels"] != nil { throw p.fail("reference.labels", "is for npy and idx; csv data takes label: COLUMN") }
            source = .csv(try path("csv")!, label: try path("label"))
        default:
            if m["label"] != nil { throw p.fail("reference.label", "is for csv; idx data takes labels: FILE") }
            guard let labels = try path("labels") else { throw p.fail("reference.labels", "missing: idx images need their labels file") }
            source = .idx(images: try path("idx")!, labels: labels)
        }
        limit = try p.int(m, "limit", at: "reference", minimum: 1)
    }
}

/// Reference data read and checked against the job's data: `count` rows of the data's
/// dimension, with class labels when the source has them.
public struct ReferenceData: Sendable {
    public var inputs: [Float]
    public var labels: [Int]?
    public var count: Int
    /// Where it came from, as the job names it.
    public var description: String

    /// The largest reference set read (rows × values).
    public static let maxValues = 1 << 28

    /// Reads `spec` for data of `dimension` values; `encoding` is a probed model's
    /// `probefarm.features` (CSV rows are encoded with it). Errors name the file and say
    /// what is wrong (exit 65, or 66 for a missing file).
    public static func load(_ spec: ReferenceSpec, job: Job, dimension: Int, encoding: FeatureEncoding?, classes: Int?,
                            key: String = "reference") throws -> ReferenceData {
        func fail(_ file: String, _ message: String, _ code: Sysexit = .dataError) -> JobError {
            JobError(file: job.file, "\(key): \(job.resolve(file)): \(message)", sysexit: code)
        }
        for f in spec.files where !FileManager.default.fileExists(atPath: job.resolve(f)) {
            throw fail(f, "no such file", .noInput)
        }
        var inputs: [Float], labels: [Int]?
        switch spec.source {
        case let .npy(file, labelFile):
            let a: NumPyArray
            do { a = try NumPyArray.read(contentsOf: job.resolve(file)) } catch { throw fail(file, "\(error)") }
            guard let n = a.shape.first, a.shape.count >= 2, a.count / max(n, 1) == dimension else {
                throw fail(file, "has shape \(a.shape); the data has \(dimension) values per item, so (n, \(dimension)) or (n, *input shape)")
            }
            inputs = a.float64Values.map(Float.init)
            if let labelFile {
                let l: NumPyArray
                do { l = try NumPyArray.read(contentsOf: job.resolve(labelFile)) } catch { throw fail(labelFile, "\(error)") }
                guard l.shape.count == 1, l.count == n else {
                    throw fail(labelFile, "has shape \(l.shape); \(n) labels, shape (\(n),), go with \(file)")
                }
                labels = try l.float64Values.enumerated().map { (i, v) throws(JobError) in
                    guard v.isFinite, v == v.rounded(), v >= 0, v < Double(Int32.max) else { throw fail(labelFile, "label \(i) is \(v), not a class index") }
                    return Int(v)
                }
            }
        case let .idx(images, labelFile):
            let d: Dataset
            do { d = try IDXFile.load(images: job.resolve(images), labels: job.resolve(labelFile)) } catch let e as DataError {
                throw JobError(file: job.file, "\(key): \(e.description)", sysexit: e.sysexit)
            }
            guard d.sampleSize == dimension else {
                throw fail(images, "holds \(d.inputShape) images (\(d.sampleSize) values); the data has \(dimension)")
            }
            inputs = d.inputs
            labels = d.labels
        case let .csv(file, labelColumn):
            let table: (header: [String], rows: [[String]])
            do { table = try CSVTable.read(job.resolve(file)) } catch let e as DataError {
                throw JobError(file: job.file, "\(key): \(e.description)", sysexit: e.sysexit)
            }
            if let encoding {
                let d: Dataset
                do { d = try CSVTable.encode(header: table.header, rows: table.rows, with: encoding, path: job.resolve(file)) } catch let e as DataError {
                    throw JobError(file: job.file, "\(key): \(e.description)", sysexit: e.sysexit)
                }
                inputs = d.inputs
                labels = d.labels.isEmpty ? nil : d.labels
            } else {
                let label = labelColumn ?? (table.header.contains("label") ? "label" : nil)
                if let label, !table.header.contains(label) {
                    throw fail(file, "no column '\(label)' (columns: \(table.header.joined(separator: ", ")))")
                }
                let columns = table.header.indices.filter { table.header[$0] != label }
                guard columns.count == dimension else {
                    throw fail(file, "has \(columns.count) feature columns\(label.map { " besides '\($0)'" } ?? ""); the data has \(dimension)")
                }
                inputs = []
                inputs.reserveCapacity(table.rows.count * dimension)
                var parsed = [Int]()
                for (r, row) in table.rows.enumerated() {
                    for j in columns {
                        guard let v = Float(row[j]), v.isFinite else {
                            throw fail(file, "line \(r + 2), column '\(table.header[j])': '\(row[j])' is not a number")
                        }
                        inputs.append(v)
                    }
                    if let label, let li = table.header.firstIndex(of: label) {
                        guard let k = Int(row[li]), k >= 0 else { throw fail(file, "line \(r + 2), column '\(label)': '\(row[li])' is not a class index") }
                        parsed.append(k)
                    }
                }
                labels = label == nil ? nil : parsed
            }
        }
        var count = inputs.count / max(dimension, 1)
        guard count > 0 else { throw fail(spec.files[0], "holds no items") }
        guard inputs.count <= maxValues else { throw fail(spec.files[0], "holds \(inputs.count) values; the limit is \(maxValues) (use reference.limit)") }
        if let i = inputs.firstIndex(where: { !$0.isFinite }) {
            throw fail(spec.files[0], "item \(i / dimension) holds a non-finite value")
        }
        if let limit = spec.limit, limit < count {
            count = limit
            inputs.removeSubrange((limit * dimension)...)
            labels = labels.map { Array($0.prefix(limit)) }
        }
        if let classes, let labels, let bad = labels.firstIndex(where: { $0 >= classes }) {
            throw fail(spec.files.last!, "label \(labels[bad]) of item \(bad) is outside the model's \(classes) classes")
        }
        let name = spec.files.map { ($0 as NSString).lastPathComponent }.joined(separator: " + ")
        return ReferenceData(inputs: inputs, labels: labels, count: count, description: name)
    }
}

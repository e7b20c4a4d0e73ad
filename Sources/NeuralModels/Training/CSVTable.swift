import Foundation
import SwiftCSV
import TensorCore

/// Tabular data from a CSV file with a header row, encoded for a network: numeric
/// columns min–max scaled to [0, 1], other columns one-hot encoded. The encoding is
/// stored in the model's metadata (`probefarm.features`) so inputs can be mapped back.
public struct FeatureEncoding: Sendable, Codable, Equatable {
    public struct Feature: Sendable, Codable, Equatable {
        public var name: String
        /// "numeric" or "categorical"
        public var kind: String
        public var min: Double?
        public var max: Double?
        public var categories: [String]?
    }

    public var features: [Feature]
    public var label: String
    public var classes: [String]?

    /// The encoded width (numeric 1, categorical one per category).
    public var width: Int { features.reduce(0) { $0 + ($1.kind == "numeric" ? 1 : $1.categories!.count) } }
    /// Each feature's input columns (one, or its one-hot block), by feature name.
    public var columnRanges: [String: Range<Int>] {
        var out = [String: Range<Int>](), c = 0
        for f in features {
            let w = f.kind == "categorical" ? f.categories?.count ?? 0 : 1
            out[f.name] = c..<(c + w)
            c += w
        }
        return out
    }

    /// Encoded input names, e.g. `age`, `sex=Male`.
    public var columnNames: [String] {
        features.flatMap { f in f.kind == "numeric" ? [f.name] : f.categories!.map { "\(f.name)=\($0)" } }
    }
}

public enum CSVTable {
    /// Parses a CSV file (RFC 4180: comma-separated, a header row, fields in double quotes
    /// may hold commas, quotes and line breaks) with SwiftCSV; cells are trimmed of spaces.
    public static func read(_ path: String) throws -> (header: [String], rows: [[String]]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(path: path, message: "cannot read (run Scripts/fetch-data.sh)")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw DataError(path: path, message: "not UTF-8 text") }
        // The header only, then every record as parsed (the view would pad short records).
        var records = [[String]]()
        let header: [String]
        do {
            let csv = try EnumeratedCSV(string: text, delimiter: .comma, loadColumns: false, rowLimit: 0)
            header = csv.header.map { $0.trimmingCharacters(in: .whitespaces) }
            try csv.enumerateAsArray(startAt: 1, rowLimit: nil) { records.append($0) }
        } catch {
            throw DataError(path: path, message: "not valid CSV: \(error)")
        }
        guard !header.isEmpty, header != [""] else { throw DataError(path: path, message: "empty CSV file") }
        var rows = [[String]]()
        for (i, record) in records.enumerated() {
            if record.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) && record.count <= 1 { continue }
            guard record.count == header.count else {
                throw DataError(path: path, message: "record \(i + 1) (after the header) has \(record.count) fields, the header has \(header.count)")
            }
            rows.append(record.map { $0.trimmingCharacters(in: .whitespaces) })
        }
        return (header, rows)
    }

    /// Learns the encoding from training rows: numeric where every value parses.
    public static func fitEncoding(header: [String], rows: [[String]], label: String, classification: Bool, path: String) throws -> FeatureEncoding {
        guard let li = header.firstIndex(of: label) else {
            throw DataError(path: path, message: "no label column '\(label)' (columns: \(header.joined(separator: ", ")))")
        }
        var features = [FeatureEncoding.Feature]()
        for (j, name) in header.enumerated() where j != li {
            let column = rows.map { $0[j] }
            let numbers = column.compactMap(Double.init)
            if numbers.count == column.count {
                features.append(.init(name: name, kind: "numeric", min: numbers.min() ?? 0, max: numbers.max() ?? 1))
            } else {
                features.append(.init(name: name, kind: "categorical", categories: Array(Set(column)).sorted()))
            }
        }
        let classes = classification ? Array(Set(rows.map { $0[li] })).sorted() : nil
        return FeatureEncoding(features: features, label: label, classes: classes)
    }

    /// Encodes rows into a dataset; unseen categories encode as all zeros.
    public static func encode(header: [String], rows: [[String]], with e: FeatureEncoding, path: String) throws -> Dataset {
        let li = header.firstIndex(of: e.label)!
        let columns = try e.features.map { f -> Int in
            guard let j = header.firstIndex(of: f.name) else { throw DataError(path: path, message: "no column '\(f.name)'") }
            return j
        }
        var inputs = [Float](), labels = [Int](), targets = [Float]()
        inputs.reserveCapacity(rows.count * e.width)
        for (r, row) in rows.enumerated() {
            for (f, j) in zip(e.features, columns) {
                if f.kind == "numeric" {
                    guard let v = Double(row[j]) else {
                        throw DataError(path: path, message: "line \(r + 2), column '\(f.name)': '\(row[j])' is not a number")
                    }
                    let span = (f.max! - f.min!) == 0 ? 1 : f.max! - f.min!
                    inputs.append(Float((v - f.min!) / span))
                } else {
                    for c in f.categories! { inputs.append(row[j] == c ? 1 : 0) }
                }
            }
            if let classes = e.classes {
                guard let k = classes.firstIndex(of: row[li]) else {
                    throw DataError(path: path, message: "line \(r + 2): label '\(row[li])' was not seen in training data")
                }
                labels.append(k)
            } else {
                guard let v = Float(row[li]) else {
                    throw DataError(path: path, message: "line \(r + 2): label '\(row[li])' is not a number")
                }
                targets.append(v)
            }
        }
        return Dataset(inputShape: [e.width], inputs: inputs, labels: labels, targets: targets, classNames: e.classes)
    }
}

import Foundation
import TensorCore

/// Examples for training: inputs of one per-sample shape, with class labels
/// (classification), target values (regression) or nothing else (a VAE).
public struct Dataset: Sendable {
    public var inputShape: [Int]
    /// Row-major inputs, `count × inputShape.product`.
    public var inputs: [Float]
    public var labels: [Int]
    public var targets: [Float]
    /// Class names by index, when known (CSV labels).
    public var classNames: [String]?

    public var count: Int { inputs.count / max(inputShape.reduce(1, *), 1) }
    public var sampleSize: Int { inputShape.reduce(1, *) }

    /// The examples at `indices` as a batch tensor.
    public func batch(_ indices: ArraySlice<Int>) -> Tensor {
        let n = sampleSize
        var t = Tensor(shape: [indices.count] + inputShape)
        inputs.withUnsafeBufferPointer { src in
            t.withUnsafeMutableBufferPointer { dst in
                for (row, i) in indices.enumerated() {
                    (dst.baseAddress! + row * n).update(from: src.baseAddress! + i * n, count: n)
                }
            }
        }
        return t
    }

    /// The first `n` examples.
    public func prefix(_ n: Int) -> Dataset {
        var d = self
        let k = min(n, count)
        d.inputs = Array(inputs.prefix(k * sampleSize))
        if !labels.isEmpty { d.labels = Array(labels.prefix(k)) }
        if !targets.isEmpty { d.targets = Array(targets.prefix(k)) }
        return d
    }
}

/// Why training data could not be read.
public struct DataError: ProbeFarmError {
    public var path: String
    public var message: String
    public var description: String { "\(path): \(message)" }
    public var sysexit: Sysexit { FileManager.default.fileExists(atPath: path) ? .dataError : .noInput }
}

/// IDX files (LeCun's MNIST format, also Fashion-MNIST): big-endian magic
/// `0x0000 08 NN` (unsigned bytes, NN dimensions), NN big-endian sizes, then the data.
public enum IDXFile {
    /// Reads an images file (n × rows × cols bytes) and a labels file into a dataset of
    /// [1, rows, cols] inputs scaled to [0, 1].
    public static func load(images: String, labels: String) throws -> Dataset {
        let (imageDims, pixels) = try read(images)
        guard imageDims.count == 3 else {
            throw DataError(path: images, message: "expected a 3-dimensional IDX images file, found \(imageDims.count) dimensions")
        }
        let (labelDims, labelBytes) = try read(labels)
        guard labelDims.count == 1, labelDims[0] == imageDims[0] else {
            throw DataError(path: labels, message: "expected \(imageDims[0]) labels, found dimensions \(labelDims)")
        }
        return Dataset(inputShape: [1, imageDims[1], imageDims[2]], inputs: pixels.map { Float($0) / 255 },
                       labels: labelBytes.map(Int.init), targets: [], classNames: nil)
    }

    static func read(_ path: String) throws -> ([Int], [UInt8]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(path: path, message: "cannot read (run Scripts/fetch-data.sh)")
        }
        let b = [UInt8](data)
        if b.count >= 2, b[0] == 0x1F, b[1] == 0x8B {
            throw DataError(path: path, message: "is gzip-compressed; decompress it with gunzip (Scripts/fetch-data.sh does)")
        }
        guard b.count >= 4, b[0] == 0, b[1] == 0, b[2] == 0x08, b[3] >= 1, b[3] <= 4 else {
            throw DataError(path: path, message: "not an unsigned-byte IDX file (bad magic)")
        }
        let nd = Int(b[3])
        guard b.count >= 4 + 4 * nd else { throw DataError(path: path, message: "truncated IDX header") }
        let dims = (0..<nd).map { i in (0..<4).reduce(0) { $0 << 8 | Int(b[4 + 4 * i + $1]) } }
        let n = dims.reduce(1, *)
        guard b.count - 4 - 4 * nd >= n else {
            throw DataError(path: path, message: "truncated IDX data: \(dims) needs \(n) bytes")
        }
        return (dims, Array(b[(4 + 4 * nd)..<(4 + 4 * nd + n)]))
    }
}

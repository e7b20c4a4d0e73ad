import ArgumentParser
import Foundation
import NeuralModels
import TensorCore

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model file's architecture, parameter count and content hash.",
        discussion: "The file is fully validated first: a malformed file exits 65 naming the tensor or layer at fault.")

    @Argument(help: "A safetensors model file.")
    var model: String

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func run() throws {
        let m = try Model.load(model)
        let net = m.network
        if json {
            var layers = [[String: Any]]()
            for (i, spec) in m.architecture.layers.enumerated() {
                var d = spec.jsonObject()
                d["output_shape"] = net.layerShapes[i]
                d["parameters"] = net.layers[i].parameters.reduce(0) { $0 + $1.count }
                layers.append(d)
            }
            var root: [String: Any] = [
                "path": model, "format": Architecture.format, "parameters": m.parameterCount,
                "input": m.inputShape, "output": m.architecture.output.rawValue,
                "output_shape": m.outputShape, "layers": layers, "sha256": m.sha256,
                "members": m.members.count,
            ]
            root["metadata"] = m.metadata.filter { $0.key != Model.architectureKey }
            let data = try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("model      \(model)")
        print("input      \(m.inputShape)   output \(m.architecture.output.rawValue) \(m.outputShape)")
        print("parameters \(m.parameterCount)\(m.members.count > 1 ? "  (ensemble of \(m.members.count))" : "")")
        print("sha256     \(m.sha256)")
        print("")
        print("  #  op                 output shape        parameters  tensors")
        for (i, spec) in m.architecture.layers.enumerated() {
            let n = net.layers[i].parameters.reduce(0) { $0 + $1.count }
            let shape = "\(net.layerShapes[i])"
            print(String(i).leftPad(3) + "  " + spec.op.padding(toLength: 18, withPad: " ", startingAt: 0) + " "
                  + shape.padding(toLength: 19, withPad: " ", startingAt: 0) + String(n).leftPad(10) + "  "
                  + spec.tensorNames.joined(separator: ", "))
        }
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model's output (its last layer, or probabilities) for a batch of inputs.",
        discussion: """
            INPUT is an .npy array shaped (n, *input) — or (n, m) with m the input's size, e.g. \
            (n, 784) for a [1, 28, 28] model (samples.npy as `run` writes it); OUT gets (n, *output) \
            as float32. An ensemble file (K members) gives the members' mean, or with --members \
            every member: (K, n, *output). --probabilities turns a classifier's logits into class \
            probabilities (softmax; an ensemble's mean is then the mean of its members' \
            probabilities, eq. 5 of the probing paper).
            """)

    @Argument(help: "A safetensors model file.")
    var model: String

    @Argument(help: "An .npy batch shaped (n, *input shape) or (n, input size), float32 or float64.")
    var input: String

    @Option(name: .shortAndLong, help: "Where to write the output .npy.")
    var output: String

    @Option(help: "Samples per forward pass.")
    var batchSize = 256

    @Flag(help: "Class probabilities (softmax of logits) instead of the raw output.")
    var probabilities = false

    @Flag(help: "Every member of an ensemble, shaped (K, n, *output), instead of their mean.")
    var members = false

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
    }

    func run() throws {
        let m = try Model.load(model)
        let array = try NumPyArray.read(contentsOf: input)
        let per = m.inputShape.reduce(1, *)
        guard array.shape.count >= 2, array.shape.dropFirst().reduce(1, *) == per else {
            throw UsageError(
                "\(input): shape \(array.shape) does not match the model's input (n, \(m.inputShape.map(String.init).joined(separator: ", "))) or (n, \(per))",
                sysexit: .dataError)
        }
        if probabilities, m.architecture.output != .logits, m.architecture.output != .probability {
            throw UsageError("\(model): its output is '\(m.architecture.output.rawValue)', not class scores; --probabilities needs logits or a probability", sysexit: .usage)
        }
        let n = array.shape[0], width = m.outputShape.reduce(1, *)
        let all = array.float32Values
        // Per member: the outputs of every sample, probabilities if asked.
        let outputs: [[Float]] = m.members.map { network in
            var out = [Float]()
            out.reserveCapacity(n * width)
            var start = 0
            while start < n {
                let b = min(batchSize, n - start)
                out += network(Tensor(shape: [b] + m.inputShape, scalars: all[(start * per)..<((start + b) * per)])).scalars
                start += b
            }
            return probabilities && m.architecture.output == .logits ? Self.softmax(out, width: width) : out
        }
        if members {
            try NumPyArray(shape: [outputs.count, n] + m.outputShape, float32: outputs.flatMap { $0 }).write(to: output)
        } else {
            let k = Float(outputs.count)
            let mean = (0..<(n * width)).map { i in outputs.reduce(Float(0)) { $0 + $1[i] } / k }
            try NumPyArray(shape: [n] + m.outputShape, float32: mean).write(to: output)
        }
    }

    /// Softmax over each row of `width` scores (max subtracted first).
    static func softmax(_ x: [Float], width: Int) -> [Float] {
        var y = x
        for row in stride(from: 0, to: x.count, by: width) {
            let top = x[row..<(row + width)].max() ?? 0
            var sum: Float = 0
            for j in row..<(row + width) { y[j] = exp(x[j] - top); sum += y[j] }
            for j in row..<(row + width) { y[j] /= sum }
        }
        return y
    }
}

/// A user error raised by a command itself: one line and a sysexits code.
struct UsageError: ProbeFarmError {
    var message: String
    var sysexit: Sysexit
    init(_ message: String, sysexit: Sysexit = .usage) {
        self.message = message
        self.sysexit = sysexit
    }
    var description: String { message }
}

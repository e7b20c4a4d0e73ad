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
        abstract: "Write a model's raw output (its last layer) for a batch of inputs.",
        discussion: "INPUT is an .npy array shaped (n, *input); OUT gets (n, *output) as float32.")

    @Argument(help: "A safetensors model file.")
    var model: String

    @Argument(help: "An .npy batch shaped (n, *input shape), float32 or float64.")
    var input: String

    @Option(name: .shortAndLong, help: "Where to write the output .npy.")
    var output: String

    @Option(help: "Samples per forward pass.")
    var batchSize = 256

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
    }

    func run() throws {
        let m = try Model.load(model)
        let array = try NumPyArray.read(contentsOf: input)
        guard array.shape.count == m.inputShape.count + 1, Array(array.shape.dropFirst()) == m.inputShape else {
            throw UsageError(
                "\(input): shape \(array.shape) does not match the model's input (n, \(m.inputShape.map(String.init).joined(separator: ", ")))",
                sysexit: .dataError)
        }
        let n = array.shape[0], per = m.inputShape.reduce(1, *)
        let all = array.float32Values
        var out = [Float]()
        out.reserveCapacity(n * m.outputShape.reduce(1, *))
        var start = 0
        while start < n {
            let b = min(batchSize, n - start)
            let x = Tensor(shape: [b] + m.inputShape, scalars: all[(start * per)..<((start + b) * per)])
            out += m.network(x).scalars
            start += b
        }
        try NumPyArray(shape: [n] + m.outputShape, float32: out).write(to: output)
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

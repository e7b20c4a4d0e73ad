import Foundation
import TensorCore

/// A trained model loaded from a safetensors file: its architecture and one
/// ``Sequential`` per ensemble member (one for an ordinary file), with weights
/// memory-mapped from the file.
public struct Model: Sendable {
    public static let architectureKey = "probefarm.architecture"
    public static let hashKey = "probefarm.sha256"
    public static let ensembleKey = "probefarm.ensemble"

    public var path: String
    public var architecture: Architecture
    /// One network per ensemble member (K ≥ 1), all of the same architecture.
    public var members: [Sequential]
    /// All `__metadata__` entries of the file.
    public var metadata: [String: String]
    /// SHA-256 of the tensor data.
    public var sha256: String

    /// The single network (the first member of an ensemble).
    public var network: Sequential { members[0] }
    public var inputShape: [Int] { architecture.input }
    public var outputShape: [Int] { network.outputShape }
    public var parameterCount: Int { members.reduce(0) { $0 + $1.parameterCount } }

    /// Loads and validates `path`: container, architecture, every named tensor with its
    /// shape, the shape chain from input to output, and the content hash if present.
    ///
    /// - Throws: ``ModelError``, one line naming the file and the tensor or layer at fault.
    public static func load(_ path: String) throws(ModelError) -> Model {
        let file = try SafeTensorsFile.open(path)
        guard let text = file.metadata[architectureKey] else {
            throw ModelError(.badArchitecture, path: path,
                             "no \(architectureKey) in __metadata__; export with the architecture (see JOBSPEC §1)")
        }
        let architecture: Architecture
        do { architecture = try Architecture.parse(json: text) } catch {
            throw ModelError(.badArchitecture, path: path, "\(architectureKey): \(error)")
        }
        var members = 1
        if let k = file.metadata[ensembleKey] {
            guard let n = Int(k), n >= 1 else {
                throw ModelError(.badArchitecture, path: path, "\(ensembleKey) is '\(k)', expected a positive integer")
            }
            members = n
        }
        if let expected = file.metadata[hashKey] {
            let actual = file.dataSHA256()
            guard actual == expected.lowercased() else {
                throw ModelError(.hashMismatch, path: path,
                                 "tensor data hash \(actual.prefix(12))… does not match \(hashKey) \(expected.prefix(12))… (corrupted or edited file)")
            }
        }
        var networks = [Sequential]()
        for m in 0..<members {
            let layers = try buildLayers(architecture, file: file, member: members > 1 ? m : nil)
            do {
                networks.append(try Sequential(layers: layers, inputShape: architecture.input))
            } catch {
                throw ModelError(.shapeMismatch, path: path, "\(error)")
            }
        }
        let width = networks[0].outputShape.reduce(1, *)
        let expected: (ok: Bool, what: String) = switch architecture.output {
        case .logits: (width >= 2, "logits need at least 2 classes")
        case .probability: (width == 1, "a probability output is one number (use logits for classes)")
        case .value, .image: (width >= 1, "an output needs at least one number")
        }
        guard expected.ok else {
            throw ModelError(.shapeMismatch, path: path, "output '\(architecture.output.rawValue)' but the last layer gives \(networks[0].outputShape) (\(width) numbers): \(expected.what)")
        }
        return Model(path: path, architecture: architecture, members: networks, metadata: file.metadata,
                     sha256: file.metadata[hashKey]?.lowercased() ?? file.dataSHA256())
    }

    static func buildLayers(_ a: Architecture, file: SafeTensorsFile, member: Int?) throws(ModelError) -> [any Layer] {
        var layers = [any Layer]()
        for (i, s) in a.layers.enumerated() {
            func tensor(_ name: String?, rank: Int, role: String) throws(ModelError) -> Tensor? {
                guard let name else { return nil }
                let t = try file.tensor(name, member: member)
                guard t.shape.count == rank else {
                    throw ModelError(.tensorMismatch, path: file.path,
                                     "layers[\(i)] (\(s.op)): \(role) '\(name)' has shape \(t.shape), expected \(rank) dimensions")
                }
                return t
            }
            func pair(_ p: [Int]?, _ d: Int) -> (Int, Int) { p.map { ($0[0], $0[1]) } ?? (d, d) }
            func requireBias(_ bias: Tensor?, count: Int) throws(ModelError) {
                if let bias, bias.count != count {
                    throw ModelError(.tensorMismatch, path: file.path,
                                     "layers[\(i)] (\(s.op)): bias '\(s.bias!)' has \(bias.count) elements, expected \(count)")
                }
            }
            let names = (weight: s.weight ?? "", bias: s.bias)
            switch s.op {
            case "linear":
                let w = try tensor(s.weight, rank: 2, role: "weight")!
                let b = try tensor(s.bias, rank: 1, role: "bias")
                try requireBias(b, count: w.shape[0])
                layers.append(Linear(weight: w, bias: b, names: names))
            case "conv2d":
                let w = try tensor(s.weight, rank: 4, role: "weight")!
                let b = try tensor(s.bias, rank: 1, role: "bias")
                try requireBias(b, count: w.shape[0])
                layers.append(Conv2d(weight: w, bias: b, stride: pair(s.stride, 1), padding: pair(s.padding, 0),
                                     dilation: pair(s.dilation, 1), names: names))
            case "conv_transpose2d":
                let w = try tensor(s.weight, rank: 4, role: "weight")!
                let b = try tensor(s.bias, rank: 1, role: "bias")
                try requireBias(b, count: w.shape[1])
                layers.append(ConvTranspose2d(weight: w, bias: b, stride: pair(s.stride, 1), padding: pair(s.padding, 0),
                                              outputPadding: pair(s.outputPadding, 0), dilation: pair(s.dilation, 1),
                                              names: names))
            case "maxpool2d", "avgpool2d":
                let k = pair(s.kernel, 1)
                layers.append(Pool2d(s.op == "maxpool2d" ? .max : .average, kernel: k,
                                     stride: s.stride.map { ($0[0], $0[1]) } ?? k, padding: pair(s.padding, 0)))
            case "relu": layers.append(Activation(.relu))
            case "leaky_relu": layers.append(Activation(.leakyReLU(slope: s.slope ?? 0.01)))
            case "sigmoid": layers.append(Activation(.sigmoid))
            case "tanh": layers.append(Activation(.tanh))
            case "softplus": layers.append(Activation(.softplus))
            case "softmax": layers.append(Softmax())
            case "flatten": layers.append(Flatten())
            case "reshape": layers.append(Reshape(shape: s.shape!))
            case "dropout": layers.append(Dropout(probability: s.probability ?? 0.5))
            case "batchnorm":
                let w = try tensor(s.weight, rank: 1, role: "weight")!
                let parts = [try tensor(s.bias, rank: 1, role: "bias")!,
                             try tensor(s.runningMean, rank: 1, role: "running_mean")!,
                             try tensor(s.runningVariance, rank: 1, role: "running_var")!]
                guard parts.allSatisfy({ $0.count == w.count }) else {
                    throw ModelError(.tensorMismatch, path: file.path,
                                     "layers[\(i)] (batchnorm): weight, bias, running_mean and running_var differ in length")
                }
                layers.append(BatchNorm(weight: w, bias: parts[0], runningMean: parts[1], runningVariance: parts[2],
                                        epsilon: s.epsilon ?? 1e-5, names: (s.weight!, s.bias!)))
            default:
                throw ModelError(.badArchitecture, path: file.path, "layers[\(i)]: unknown op '\(s.op)'")
            }
        }
        return layers
    }

    /// Writes a single-member model: its parameters under their state_dict names and the
    /// architecture (plus `metadata`) in `__metadata__`, atomically.
    public static func save(
        _ network: Sequential, architecture: Architecture, metadata: [String: String] = [:], to path: String
    ) throws(ModelError) {
        var tensors = [(name: String, tensor: Tensor)]()
        for layer in network.layers {
            for (name, t) in zip(layer.parameterNames, layer.parameters) { tensors.append((name, t)) }
            if let bn = layer as? BatchNorm, let a = architecture.layers.first(where: { $0.weight == bn.names.weight }) {
                tensors.append((a.runningMean!, bn.runningMean))
                tensors.append((a.runningVariance!, bn.runningVariance))
            }
        }
        var meta = metadata
        meta[architectureKey] = architecture.jsonText()
        try SafeTensorsWriter.write(tensors, metadata: meta, to: path)
    }
}

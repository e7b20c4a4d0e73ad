import Foundation

/// The architecture a model file declares in `__metadata__["probefarm.architecture"]`
/// (JOBSPEC §1): per-sample input shape, what the output means, and the layers in order.
public struct Architecture: Sendable, Equatable {
    public static let format = "probefarm-model/1"

    /// What the model's output means.
    public enum Output: String, Sendable, CaseIterable {
        /// Classifier scores; probabilities are their softmax.
        case logits
        /// One sigmoid unit of a binary classifier.
        case probability
        /// A regressor's value.
        case value
        /// A decoder's output, already in the data's range.
        case image
    }

    public var input: [Int]
    public var output: Output
    public var layers: [LayerSpec]
    /// Extra top-level keys kept as JSON text (for example training provenance).
    public var extras: [String: String] = [:]

    public init(input: [Int], output: Output, layers: [LayerSpec]) {
        self.input = input
        self.output = output
        self.layers = layers
    }
}

/// One layer of an ``Architecture``: its op and the op's options, with PyTorch's
/// defaults filled in. Pairs accept an integer or `[h, w]`.
public struct LayerSpec: Sendable, Equatable {
    public var op: String
    public var weight: String?
    public var bias: String?
    public var stride: [Int]?
    public var padding: [Int]?
    public var dilation: [Int]?
    public var outputPadding: [Int]?
    public var kernel: [Int]?
    public var slope: Float?
    public var shape: [Int]?
    public var runningMean: String?
    public var runningVariance: String?
    public var epsilon: Float?
    public var probability: Float?

    public init(op: String) { self.op = op }

    /// A linear layer reading `weight` (and `bias`, if given).
    public static func linear(_ weight: String, bias: String? = nil) -> LayerSpec {
        var s = LayerSpec(op: "linear")
        s.weight = weight
        s.bias = bias
        return s
    }

    /// The keys each op accepts (besides `op`).
    static let allowedKeys: [String: Set<String>] = [
        "linear": ["weight", "bias"],
        "conv2d": ["weight", "bias", "stride", "padding", "dilation"],
        "conv_transpose2d": ["weight", "bias", "stride", "padding", "output_padding", "dilation"],
        "maxpool2d": ["kernel", "stride", "padding"],
        "avgpool2d": ["kernel", "stride", "padding"],
        "relu": [], "sigmoid": [], "tanh": [], "softplus": [], "softmax": [], "flatten": [],
        "leaky_relu": ["slope"],
        "reshape": ["shape"],
        "dropout": ["p"],
        "batchnorm": ["weight", "bias", "running_mean", "running_var", "eps"],
    ]

    /// The names of the tensors this layer reads from the file.
    public var tensorNames: [String] {
        [weight, bias, runningMean, runningVariance].compactMap { $0 }
    }
}

extension Architecture {
    /// Parses the architecture JSON text.
    /// - Throws: a message naming the key path at fault (`layers[2].stride`).
    public static func parse(json text: String) throws(ArchitectureError) -> Architecture {
        guard let data = text.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data),
              let root = object as? [String: Any]
        else { throw ArchitectureError("probefarm.architecture is not a JSON object") }
        if let f = root["format"] {
            guard let fs = f as? String, fs == format else {
                throw ArchitectureError("format is \(f), expected \"\(format)\"")
            }
        }
        guard let inputValues = root["input"] as? [Any], let input = positiveInts(inputValues), !input.isEmpty else {
            throw ArchitectureError("input must be a non-empty list of positive integers (the per-sample shape)")
        }
        guard let outputName = root["output"] as? String else {
            throw ArchitectureError("output is missing (one of \(Output.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let output = Output(rawValue: outputName) else {
            throw ArchitectureError("output '\(outputName)' is not one of \(Output.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let layerValues = root["layers"] as? [Any], !layerValues.isEmpty else {
            throw ArchitectureError("layers must be a non-empty list")
        }
        var layers = [LayerSpec]()
        for (i, value) in layerValues.enumerated() {
            layers.append(try parseLayer(value, at: "layers[\(i)]"))
        }
        var a = Architecture(input: input, output: output, layers: layers)
        for (k, v) in root where !["format", "input", "output", "layers"].contains(k) {
            if let d = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .fragmentsAllowed]) {
                a.extras[k] = String(decoding: d, as: UTF8.self)
            }
        }
        return a
    }

    private static func parseLayer(_ value: Any, at path: String) throws(ArchitectureError) -> LayerSpec {
        guard let d = value as? [String: Any] else { throw ArchitectureError("\(path) is not an object") }
        guard let op = d["op"] as? String else { throw ArchitectureError("\(path).op is missing") }
        guard let allowed = LayerSpec.allowedKeys[op] else {
            let ops = LayerSpec.allowedKeys.keys.sorted().joined(separator: ", ")
            throw ArchitectureError("\(path).op '\(op)' is not a known op (\(ops))")
        }
        for key in d.keys where key != "op" && !allowed.contains(key) {
            throw ArchitectureError("\(path) (\(op)): unknown key '\(key)'")
        }
        var s = LayerSpec(op: op)
        func string(_ key: String) throws(ArchitectureError) -> String? {
            guard let v = d[key] else { return nil }
            guard let str = v as? String else { throw ArchitectureError("\(path).\(key) must be a tensor name") }
            return str
        }
        func pair(_ key: String, minimum: Int) throws(ArchitectureError) -> [Int]? {
            guard let v = d[key] else { return nil }
            if let n = v as? NSNumber, let i = exactInt(n), i >= minimum { return [i, i] }
            if let a = v as? [Any], a.count == 2, let ints = a.compactMap({ ($0 as? NSNumber).flatMap(exactInt) }) as [Int]?,
               ints.count == 2, ints.allSatisfy({ $0 >= minimum }) {
                return ints
            }
            throw ArchitectureError("\(path).\(key) must be an integer ≥ \(minimum) or [h, w]")
        }
        func number(_ key: String) throws(ArchitectureError) -> Float? {
            guard let v = d[key] else { return nil }
            guard let n = v as? NSNumber else { throw ArchitectureError("\(path).\(key) must be a number") }
            return n.floatValue
        }
        s.weight = try string("weight")
        s.bias = try string("bias")
        s.runningMean = try string("running_mean")
        s.runningVariance = try string("running_var")
        s.stride = try pair("stride", minimum: 1)
        s.padding = try pair("padding", minimum: 0)
        s.dilation = try pair("dilation", minimum: 1)
        s.outputPadding = try pair("output_padding", minimum: 0)
        s.kernel = try pair("kernel", minimum: 1)
        s.slope = try number("slope")
        s.epsilon = try number("eps")
        s.probability = try number("p")
        if let v = d["shape"] {
            guard let a = v as? [Any], let ints = positiveInts(a) else {
                throw ArchitectureError("\(path).shape must be a list of positive integers")
            }
            s.shape = ints
        }
        switch op {
        case "linear", "conv2d", "conv_transpose2d":
            if s.weight == nil { throw ArchitectureError("\(path) (\(op)) needs a weight tensor name") }
        case "maxpool2d", "avgpool2d":
            if s.kernel == nil { throw ArchitectureError("\(path) (\(op)) needs kernel") }
        case "reshape":
            if s.shape == nil { throw ArchitectureError("\(path) (reshape) needs shape") }
        case "batchnorm":
            if s.weight == nil || s.bias == nil || s.runningMean == nil || s.runningVariance == nil {
                throw ArchitectureError("\(path) (batchnorm) needs weight, bias, running_mean and running_var")
            }
        case "dropout":
            if let p = s.probability, !(p >= 0 && p < 1) { throw ArchitectureError("\(path).p must be in [0, 1)") }
        default: break
        }
        return s
    }

    private static func exactInt(_ n: NSNumber) -> Int? {
        let d = n.doubleValue
        guard d.isFinite, d == d.rounded(), abs(d) < 1e9 else { return nil }
        return Int(d)
    }

    private static func positiveInts(_ values: [Any]) -> [Int]? {
        let ints = values.compactMap { ($0 as? NSNumber).flatMap(exactInt) }
        return ints.count == values.count && ints.allSatisfy({ $0 > 0 }) ? ints : nil
    }

    /// The architecture as JSON (what is written to `probefarm.architecture`).
    public func jsonObject() -> [String: Any] {
        var root: [String: Any] = ["format": Self.format, "input": input, "output": output.rawValue,
                                   "layers": layers.map { $0.jsonObject() }]
        for (k, v) in extras {
            if let d = v.data(using: .utf8), let o = try? JSONSerialization.jsonObject(with: d, options: .fragmentsAllowed) {
                root[k] = o
            }
        }
        return root
    }

    public func jsonText() -> String {
        let d = (try? JSONSerialization.data(withJSONObject: jsonObject(), options: [.sortedKeys])) ?? Data()
        return String(decoding: d, as: UTF8.self)
    }
}

extension LayerSpec {
    public func jsonObject() -> [String: Any] {
        var d: [String: Any] = ["op": op]
        d["weight"] = weight; d["bias"] = bias
        d["running_mean"] = runningMean; d["running_var"] = runningVariance
        d["stride"] = stride; d["padding"] = padding; d["dilation"] = dilation
        d["output_padding"] = outputPadding; d["kernel"] = kernel; d["shape"] = shape
        if let slope { d["slope"] = Double(slope) }
        if let epsilon { d["eps"] = Double(epsilon) }
        if let probability { d["p"] = Double(probability) }
        return d
    }
}

/// Why architecture metadata is invalid (the caller adds the file name).
public struct ArchitectureError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

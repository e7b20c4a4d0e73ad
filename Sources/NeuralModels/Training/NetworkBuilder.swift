import Foundation
import TensorCore

/// Builds a freshly initialised network and its architecture from layer recipes, with
/// PyTorch's default initialisation (`kaiming_uniform_(a=√5)`: weights and biases
/// uniform in ±1/√fan_in) and state_dict names `<prefix>.<i>.weight`.
public enum NetworkBuilder {
    public static func build(
        _ recipes: [TrainingSpec.LayerRecipe], input: [Int], prefix: String, output: Architecture.Output,
        rng: inout SplitMix64, specPath: String, key: String
    ) throws -> (Sequential, Architecture) {
        var layers = [any Layer](), specs = [LayerSpec]()
        var shape = input
        for (i, r) in recipes.enumerated() {
            var s = LayerSpec(op: r.op)
            let w = "\(prefix).\(i).weight", b = r.bias ? "\(prefix).\(i).bias" : nil
            func uniform(_ shape: [Int], fanIn: Int) -> Tensor {
                let bound = 1 / Float(fanIn).squareRoot()
                return Tensor(shape: shape) { _ in (2 * rng.nextUnit() - 1) * bound }
            }
            func pair(_ p: [Int]?, _ d: Int) -> (Int, Int) { p.map { ($0[0], $0[1]) } ?? (d, d) }
            let layer: any Layer
            switch r.op {
            case "linear":
                let inF = shape.last ?? 1
                layer = Linear(weight: uniform([r.out!, inF], fanIn: inF), bias: r.bias ? uniform([r.out!], fanIn: inF) : nil,
                               names: (w, b))
                s.weight = w; s.bias = b
            case "conv2d":
                guard shape.count == 3 else { throw SpecError(path: specPath, message: "\(key)[\(i)] (conv2d): input \(shape) is not [C, H, W]") }
                let k = pair(r.kernel, 1), fanIn = shape[0] * k.0 * k.1
                layer = Conv2d(weight: uniform([r.out!, shape[0], k.0, k.1], fanIn: fanIn),
                               bias: r.bias ? uniform([r.out!], fanIn: fanIn) : nil, stride: pair(r.stride, 1),
                               padding: pair(r.padding, 0), dilation: pair(r.dilation, 1), names: (w, b))
                s.weight = w; s.bias = b; s.stride = r.stride; s.padding = r.padding; s.dilation = r.dilation
            case "conv_transpose2d":
                guard shape.count == 3 else { throw SpecError(path: specPath, message: "\(key)[\(i)] (conv_transpose2d): input \(shape) is not [C, H, W]") }
                let k = pair(r.kernel, 1), fanIn = r.out! * k.0 * k.1  // PyTorch's fan-in for ConvTranspose
                layer = ConvTranspose2d(weight: uniform([shape[0], r.out!, k.0, k.1], fanIn: fanIn),
                                        bias: r.bias ? uniform([r.out!], fanIn: fanIn) : nil, stride: pair(r.stride, 1),
                                        padding: pair(r.padding, 0), outputPadding: pair(r.outputPadding, 0),
                                        dilation: pair(r.dilation, 1), names: (w, b))
                s.weight = w; s.bias = b; s.stride = r.stride; s.padding = r.padding
                s.outputPadding = r.outputPadding; s.dilation = r.dilation
            case "maxpool2d", "avgpool2d":
                let k = pair(r.kernel, 1)
                layer = Pool2d(r.op == "maxpool2d" ? .max : .average, kernel: k, stride: r.stride.map { ($0[0], $0[1]) } ?? k,
                               padding: pair(r.padding, 0))
                s.kernel = r.kernel; s.stride = r.stride; s.padding = r.padding
            case "relu": layer = Activation(.relu)
            case "leaky_relu": layer = Activation(.leakyReLU(slope: r.slope ?? 0.01)); s.slope = r.slope ?? 0.01
            case "sigmoid": layer = Activation(.sigmoid)
            case "tanh": layer = Activation(.tanh)
            case "softplus": layer = Activation(.softplus)
            case "softmax": layer = Softmax()
            case "flatten": layer = Flatten()
            case "reshape": layer = Reshape(shape: r.shape!); s.shape = r.shape
            case "dropout": layer = Dropout(probability: r.probability ?? 0.5); s.probability = r.probability ?? 0.5
            default: throw SpecError(path: specPath, message: "\(key)[\(i)]: unknown op \(r.op)")
            }
            switch layer.outputShape(for: shape) {
            case .success(let next): shape = next
            case .failure(let why): throw SpecError(path: specPath, message: "\(key)[\(i)] (\(r.op)): \(why)")
            }
            layers.append(layer)
            specs.append(s)
        }
        let network = try Sequential(layers: layers, inputShape: input)
        return (network, Architecture(input: input, output: output, layers: specs))
    }
}

import Foundation
import NeuralModels
import ProbeFarmTesting
import TensorCore
import Testing

/// Models written by PyTorch itself (Scripts/fixtures/make_model_fixtures.py): our
/// forward pass and input gradient against PyTorch's, to 1e-4 relative to the output's
/// (gradient's) largest magnitude.
struct PyTorchReferenceTests {
    static func file(_ name: String) -> String { Fixtures.url("NeuralModelsTests", "torch/\(name)").path }

    static func maxRelativeError(_ a: Tensor, _ b: Tensor) -> Double {
        let scale = max(Double(b.maxAbs()), 1e-12)
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                (0..<pa.count).reduce(0.0) { max($0, abs(Double(pa[$1]) - Double(pb[$1]))) } / scale
            }
        }
    }

    @Test("forward output and input gradient match PyTorch",
          arguments: ["cnn", "decoder", "mlp", "zoo", "zoo-f64", "zoo-f16", "zoo-bf16"])
    func matchesPyTorch(_ name: String) throws {
        let model = try Model.load(Self.file("\(name).safetensors"))
        let x = try NumPyArray.read(contentsOf: Self.file("\(name)-input.npy")).tensor
        let expected = try NumPyArray.read(contentsOf: Self.file("\(name)-output.npy")).tensor
        let cotangent = try NumPyArray.read(contentsOf: Self.file("\(name)-cotangent.npy")).tensor
        let expectedGrad = try NumPyArray.read(contentsOf: Self.file("\(name)-input-grad.npy")).tensor

        let y = model.network(x)
        #expect(y.shape == expected.shape)
        let forwardError = Self.maxRelativeError(y, expected)
        #expect(forwardError <= 1e-4, "\(name) forward: max relative error \(forwardError)")

        let (_, grad) = model.network.inputGradient(at: x) { _ in cotangent }
        let gradError = Self.maxRelativeError(grad, expectedGrad)
        #expect(gradError <= 1e-4, "\(name) input gradient: max relative error \(gradError)")
    }

    @Test("aligned F32 weights are used in place, not copied")
    func weightsAreMapped() throws {
        let model = try Model.load(Self.file("cnn.safetensors"))
        let borrowed = model.network.layers.flatMap(\.parameters).filter(\.isBorrowed).count
        #expect(borrowed == model.network.layers.flatMap(\.parameters).count)
        // Converted dtypes are copies.
        let f16 = try Model.load(Self.file("zoo-f16.safetensors"))
        #expect(f16.network.layers.flatMap(\.parameters).allSatisfy { !$0.isBorrowed })
    }

    @Test("a model saved by ProbeFarm reloads with identical outputs and a verified hash")
    func saveRoundTrip() throws {
        let model = try Model.load(Self.file("zoo.safetensors"))
        let dir = try Fixtures.temporaryDirectory()
        let path = dir.appendingPathComponent("copy.safetensors").path
        try Model.save(model.network, architecture: model.architecture, to: path)
        let copy = try Model.load(path)
        let x = try NumPyArray.read(contentsOf: Self.file("zoo-input.npy")).tensor
        #expect(copy.network(x) == model.network(x))
        #expect(copy.metadata[Model.hashKey] == copy.sha256)
        try? FileManager.default.removeItem(at: dir)
    }
}

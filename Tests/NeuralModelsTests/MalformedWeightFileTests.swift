import Foundation
import NeuralModels
import ProbeFarmTesting
import TensorCore
import Testing

/// Malformed weight files are refused with one line naming the file and the tensor or
/// layer at fault — never a crash or a precondition failure.
struct MalformedWeightFileTests {
    static let valid: [UInt8] = {
        let path = Fixtures.url("NeuralModelsTests", "torch/zoo.safetensors").path
        return [UInt8](FileManager.default.contents(atPath: path)!)
    }()

    /// The same model written by ProbeFarm, so it carries `probefarm.sha256`.
    static let hashed: [UInt8] = {
        let model = try! Model.load(Fixtures.url("NeuralModelsTests", "torch/zoo.safetensors").path)
        let file = try! SafeTensorsFile.open(model.path)
        let names = file.entries.keys.filter { file.entries[$0]!.dtype.isFloatingPoint }.sorted()
        let tensors = names.map { (name: $0, tensor: try! file.tensor($0)) }
        return SafeTensorsWriter.encode(tensors, metadata: [Model.architectureKey: model.architecture.jsonText()])
    }()

    static func headerLength(_ b: [UInt8]) -> Int {
        (0..<8).reduce(0) { $0 | Int(b[$1]) << (8 * $1) }
    }

    /// Writes `bytes` to a temporary file and loads it.
    static func load(_ bytes: [UInt8], name: String = "model.safetensors") throws -> Model {
        let dir = try Fixtures.temporaryDirectory("probefarm-malformed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent(name).path
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return try Model.load(path)
    }

    /// Rewrites the JSON header of the valid file with `edit`, keeping the data section.
    static func editHeader(_ edit: (inout [String: Any]) -> Void) -> [UInt8] {
        let n = headerLength(valid)
        var header = try! JSONSerialization.jsonObject(with: Data(valid[8..<(8 + n)])) as! [String: Any]
        edit(&header)
        var json = [UInt8](try! JSONSerialization.data(withJSONObject: header))
        while json.count % 8 != 0 { json.append(0x20) }
        var out = [UInt8]()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out += $0 }
        return out + json + valid[(8 + n)...]
    }

    static func editArchitecture(_ edit: (inout [String: Any]) -> Void) -> [UInt8] {
        editHeader { h in
            var meta = h["__metadata__"] as! [String: String]
            var arch = try! JSONSerialization.jsonObject(with: Data(meta[Model.architectureKey]!.utf8)) as! [String: Any]
            edit(&arch)
            meta[Model.architectureKey] = String(decoding: try! JSONSerialization.data(withJSONObject: arch), as: UTF8.self)
            meta.removeValue(forKey: Model.hashKey)
            h["__metadata__"] = meta
        }
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var bytes: @Sendable () -> [UInt8]
        /// Words the one-line message must contain.
        var mentions: [String]
    }

    static let cases: [Case] = [
        Case(testDescription: "empty file", bytes: { [] }, mentions: ["too short"]),
        Case(testDescription: "truncated data", bytes: { Array(valid.dropLast(100)) }, mentions: ["outside", "truncated"]),
        Case(testDescription: "truncated header", bytes: { Array(valid.prefix(40)) }, mentions: ["header length"]),
        Case(testDescription: "garbage header", bytes: {
            var b = valid; for i in 8..<40 { b[i] = UInt8(i * 7 % 251) }; return b
        }, mentions: ["JSON"]),
        Case(testDescription: "absurd header length", bytes: {
            var b = valid; for i in 0..<8 { b[i] = 0xFF }; return b
        }, mentions: ["absurd"]),
        Case(testDescription: "offsets outside the file", bytes: {
            editHeader { h in
                var e = h["0.weight"] as! [String: Any]
                e["data_offsets"] = [100_000, 100_000 + 4 * 36]
                h["0.weight"] = e
            }
        }, mentions: ["0.weight", "outside"]),
        Case(testDescription: "size not matching the shape", bytes: {
            editHeader { h in
                var e = h["0.weight"] as! [String: Any]
                e["shape"] = [6, 2, 3, 3]
                h["0.weight"] = e
            }
        }, mentions: ["0.weight", "bytes for shape"]),
        Case(testDescription: "unknown dtype", bytes: {
            editHeader { h in
                var e = h["0.bias"] as! [String: Any]
                e["dtype"] = "F33"
                h["0.bias"] = e
            }
        }, mentions: ["0.bias", "dtype"]),
        Case(testDescription: "tensor named by the architecture but missing", bytes: {
            editHeader { h in h.removeValue(forKey: "4.weight") }
        }, mentions: ["4.weight", "not in the file"]),
        Case(testDescription: "shapes that do not chain", bytes: {
            editArchitecture { a in
                var layers = a["layers"] as! [[String: Any]]
                layers.remove(at: 3)  // drop the avgpool: the linear layer no longer fits
                a["layers"] = layers
            }
        }, mentions: ["layers[", "linear"]),
        Case(testDescription: "unknown op", bytes: {
            editArchitecture { a in
                var layers = a["layers"] as! [[String: Any]]
                layers[2]["op"] = "gelu"
                a["layers"] = layers
            }
        }, mentions: ["layers[2]", "gelu"]),
        Case(testDescription: "no architecture", bytes: {
            editHeader { h in h["__metadata__"] = [String: String]() }
        }, mentions: ["probefarm.architecture"]),
        Case(testDescription: "a tensor with a dimension of size 0", bytes: {
            editHeader { h in
                var e = h["0.bias"] as! [String: Any]
                e["shape"] = [0]
                e["data_offsets"] = [0, 0]
                h["0.bias"] = e
            }
        }, mentions: ["0.bias", "size 0"]),
        Case(testDescription: "a NaN weight", bytes: {
            // 0.weight's data starts 24 bytes into the data section.
            var b = valid; let at = 8 + headerLength(valid) + 24 + 4 * 5
            b[at] = 0; b[at + 1] = 0; b[at + 2] = 0xC0; b[at + 3] = 0x7F; return b
        }, mentions: ["0.weight", "non-finite", "element 5"]),
        Case(testDescription: "an infinite weight", bytes: {
            var b = valid; let at = 8 + headerLength(valid) + 412
            withUnsafeBytes(of: Float(1e38).bitPattern.littleEndian) { for i in 0..<4 { b[at + i] = $0[i] } }
            withUnsafeBytes(of: Float.infinity.bitPattern.littleEndian) { for i in 0..<4 { b[at + 4 + i] = $0[i] } }
            return b
        }, mentions: ["10.weight", "non-finite", "element 1"]),
        Case(testDescription: "a tensor named twice in the header", bytes: {
            let n = headerLength(valid)
            var text = String(decoding: valid[8..<(8 + n)], as: UTF8.self).trimmingCharacters(in: .whitespaces)
            text.removeFirst()
            text = "{\"0.bias\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[312,336]}," + text
            var json = Array(text.utf8)
            while json.count % 8 != 0 { json.append(0x20) }
            var out = [UInt8]()
            withUnsafeBytes(of: UInt64(json.count).littleEndian) { out += $0 }
            return out + json + valid[(8 + n)...]
        }, mentions: ["twice"]),
        Case(testDescription: "tensors that overlap", bytes: {
            editHeader { h in
                var e = h["1.bias"] as! [String: Any]
                e["data_offsets"] = [300, 324]
                h["1.bias"] = e
            }
        }, mentions: ["overlap", "1.bias"]),
        Case(testDescription: "a probability output from a layer of 5", bytes: {
            editArchitecture { a in a["output"] = "probability" }
        }, mentions: ["probability", "[5]"]),
        Case(testDescription: "data edited after hashing", bytes: {
            var b = hashed; b[b.count - 5] ^= 0x40; return b
        }, mentions: ["hash"]),
    ]

    @Test("malformed files give one line naming the fault, exit 65", arguments: cases)
    func refused(_ c: Case) throws {
        do {
            _ = try Self.load(c.bytes())
            Issue.record("\(c.testDescription) was accepted")
        } catch let e as ModelError {
            let line = e.description
            #expect(!line.contains("\n"), "not one line: \(line)")
            #expect(line.contains("model.safetensors"), "does not name the file: \(line)")
            #expect(e.sysexit == .dataError)
            for word in c.mentions {
                #expect(line.contains(word), "\(c.testDescription): '\(line)' lacks '\(word)'")
            }
        }
    }

    @Test("NaN in the input propagates through relu, max pooling and linear layers, as in PyTorch")
    func nanPropagates() throws {
        let model = try Model.load(Fixtures.url("NeuralModelsTests", "torch/cnn.safetensors").path)
        var x = [Float](repeating: 0.5, count: model.inputShape.reduce(1, *))
        x[0] = .nan
        let y = model.network(Tensor(shape: [1] + model.inputShape, scalars: x)).scalars
        let allNaN = y.allSatisfy { $0.isNaN }
        #expect(allNaN, "\(y)")
        // Negative control: without the NaN every output is a number.
        x[0] = 0.5
        let finite = model.network(Tensor(shape: [1] + model.inputShape, scalars: x)).scalars.allSatisfy { $0.isFinite }
        #expect(finite)
    }

    @Test("a model path that is a FIFO is refused at once, not waited on")
    func fifo() throws {
        let dir = try Fixtures.temporaryDirectory("probefarm-fifo")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("model.safetensors").path
        try #require(mkfifo(path, 0o644) == 0)
        do {
            _ = try Model.load(path)
            Issue.record("a FIFO was accepted")
        } catch let e as ModelError {
            #expect(e.description.contains("not a regular file") && e.sysexit == .dataError, "\(e)")
        }
    }

    @Test("a missing file exits 66")
    func missing() {
        #expect(throws: ModelError.self) { try Model.load("/nonexistent/model.safetensors") }
        do { _ = try Model.load("/nonexistent/model.safetensors") } catch let e as ModelError {
            #expect(e.sysexit == .noInput)
        } catch { Issue.record("unexpected \(error)") }
    }

    /// 3000 random mutations (byte flips in header and data, truncation, header-length
    /// edits, splices) of a valid file: each either loads or is refused with a
    /// ModelError; the process never traps.
    @Test("randomly mutated files never crash the loader")
    func fuzz() throws {
        var rng = SplitMix64(seed: 2026)
        let base = Self.hashed
        let n = Self.headerLength(base)
        let dir = try Fixtures.temporaryDirectory("probefarm-fuzz")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("fuzz.safetensors").path
        var refused = 0, loaded = 0
        for _ in 0..<3000 {
            var b = base
            switch rng.next() % 5 {
            case 0:  // flip bytes in the header
                for _ in 0..<(1 + Int(rng.next() % 4)) { b[8 + Int(rng.next() % UInt64(n))] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
            case 1:  // truncate anywhere
                b = Array(b.prefix(Int(rng.next() % UInt64(b.count))))
            case 2:  // change the header length
                let v = Int(rng.next() % UInt64(b.count + 64))
                for i in 0..<8 { b[i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
            case 3:  // replace header characters with JSON-significant ones
                let chars = Array("{}[]\":,0123456789-e.".utf8)
                for _ in 0..<(1 + Int(rng.next() % 3)) { b[8 + Int(rng.next() % UInt64(n))] = chars[Int(rng.next() % UInt64(chars.count))] }
            default:  // flip data bytes (caught by the hash)
                b[8 + n + Int(rng.next() % UInt64(b.count - 8 - n))] ^= 0x10
            }
            FileManager.default.createFile(atPath: path, contents: Data(b))
            do {
                let m = try Model.load(path)
                _ = m.network(Tensor(shape: [1] + m.inputShape, repeating: 0.5))
                loaded += 1
            } catch is ModelError {
                refused += 1
            }
        }
        #expect(refused + loaded == 3000)
        #expect(refused >= 2400)  // most mutations must be caught; data flips always are (hash)
    }
}

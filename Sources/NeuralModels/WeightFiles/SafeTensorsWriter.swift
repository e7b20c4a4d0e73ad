import Foundation
import TensorCore

/// Writes safetensors files (F32), atomically: to a temporary name, fsync'd, renamed.
///
/// The data section's SHA-256 is stored in `__metadata__["probefarm.sha256"]`, so a
/// reader can check the weights it maps.
public enum SafeTensorsWriter {
    /// The bytes of a safetensors file holding `tensors` in order.
    public static func encode(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String]) -> [UInt8] {
        var data = [UInt8]()
        data.reserveCapacity(tensors.reduce(0) { $0 + 4 * $1.tensor.count })
        var header: [String: Any] = [:]
        for (name, t) in tensors {
            let begin = data.count
            t.withUnsafeBufferPointer { p in
                for v in p { withUnsafeBytes(of: v.bitPattern.littleEndian) { data += $0 } }
            }
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [begin, data.count]] as [String: Any]
        }
        var meta = metadata
        meta["probefarm.sha256"] = SHA256.hex(data)
        header["__metadata__"] = meta
        var json = [UInt8]((try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) ?? Data())
        while json.count % 8 != 0 { json.append(0x20) }  // pad so the data starts 8-byte aligned
        var out = [UInt8]()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out += $0 }
        return out + json + data
    }

    /// Writes `tensors` to `path` atomically.
    public static func write(
        _ tensors: [(name: String, tensor: Tensor)], metadata: [String: String], to path: String
    ) throws(ModelError) {
        do {
            try AtomicFile.write(Data(encode(tensors, metadata: metadata)), to: path)
        } catch {
            throw ModelError(.cannotWrite, path: path, "\(error)")
        }
    }
}

import Foundation
import ProbeFarmTesting
import TensorCore
import Testing

struct NumPyArrayTests {
    static func npy(descr: String, fortran: Bool = false, shape: String, payload: [UInt8]) -> [UInt8] {
        var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        let n = header.utf8.count
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(n & 0xFF), UInt8(n >> 8)] + Array(header.utf8) + payload
    }

    @Test("round trip of float32 and float64 arrays, including 1-d and 0-size shapes")
    func roundTrip() throws {
        let a = NumPyArray(shape: [2, 3], float32: [1, 2, 3, 4, 5, 6.5])
        #expect(try NumPyArray.decode(a.encoded(), path: "a") == a)
        let b = NumPyArray(shape: [4], float64: [1e-300, -2, .pi, 0])
        #expect(try NumPyArray.decode(b.encoded(), path: "b") == b)
        let c = NumPyArray(shape: [0, 3], float64: [])
        #expect(try NumPyArray.decode(c.encoded(), path: "c") == c)
        #expect(b.encoded().count % 16 == 0)  // header padded to alignment
    }

    @Test("reads files written by numpy")
    func readsNumpy() throws {
        let a = try NumPyArray.read(contentsOf: Fixtures.url("DiagnosticsTests", "diagnostics/iid_normal.npy").path)
        #expect(a.shape == [4, 1000])
        #expect(a.scalarType == .float64)
    }

    @Test("refuses layouts it cannot read, with a message saying what to do", arguments: [
        ("<f8", true, "(2,)", "Fortran"),
        (">f8", false, "(2,)", "big-endian"),
        ("<i8", false, "(2,)", "dtype <i8"),
        ("<f8", false, "(3,)", "truncated"),
    ])
    func refuses(_ descr: String, _ fortran: Bool, _ shape: String, _ words: String) {
        let bytes = Self.npy(descr: descr, fortran: fortran, shape: shape, payload: [UInt8](repeating: 0, count: 16))
        do {
            _ = try NumPyArray.decode(bytes, path: "x.npy")
            Issue.record("accepted \(descr) \(shape)")
        } catch let e as NumPyFormatError {
            #expect(e.description.contains("x.npy") && e.description.contains(words), "\(e)")
            #expect(e.sysexit == .dataError)
        } catch { Issue.record("unexpected \(error)") }
    }

    @Test("refuses files that are not .npy")
    func notNumpy() {
        #expect(throws: NumPyFormatError.self) { try NumPyArray.decode(Array("hello, world".utf8), path: "x") }
        #expect(throws: NumPyFormatError.self) { try NumPyArray.read(contentsOf: "/nonexistent.npy") }
    }
}

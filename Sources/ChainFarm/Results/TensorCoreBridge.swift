import TensorCore

enum TensorCoreBridge {
    static func readVector(_ path: String) throws -> [Double] {
        try NumPyArray.read(contentsOf: path).float64Values
    }
}

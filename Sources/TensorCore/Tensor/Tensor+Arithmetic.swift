/// Element-wise arithmetic and reductions used by layers, losses and optimisers.
extension Tensor {
    /// Applies `f` to every element, returning a new tensor of the same shape.
    @inlinable
    public func map(_ f: (Float) -> Float) -> Tensor {
        var out = Tensor(uninitializedShape: shape)
        withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<src.count { dst[i] = f(src[i]) }
            }
        }
        return out
    }

    /// Combines two tensors of the same shape element by element.
    @inlinable
    public func zip(_ other: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(shape == other.shape, "shape mismatch \(shape) vs \(other.shape)")
        var out = Tensor(uninitializedShape: shape)
        withUnsafeBufferPointer { a in
            other.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { dst in
                    for i in 0..<a.count { dst[i] = f(a[i], b[i]) }
                }
            }
        }
        return out
    }

    /// Adds `alpha · other` in place (shapes must agree in element count).
    public mutating func add(_ other: Tensor, scaledBy alpha: Float = 1) {
        precondition(count == other.count, "count mismatch \(shape) vs \(other.shape)")
        other.withUnsafeBufferPointer { b in
            withUnsafeMutableBufferPointer { a in
                for i in 0..<a.count { a[i] += alpha * b[i] }
            }
        }
    }

    /// Multiplies every element by `alpha` in place.
    public mutating func scale(by alpha: Float) {
        withUnsafeMutableBufferPointer { a in
            for i in 0..<a.count { a[i] *= alpha }
        }
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor { a.zip(b, +) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { a.zip(b, -) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { a.zip(b, *) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.map { $0 * s } }

    /// The sum of all elements, accumulated in Float64.
    public func sum() -> Double {
        withUnsafeBufferPointer { p in p.reduce(0.0) { $0 + Double($1) } }
    }

    /// The largest absolute element (0 for an empty tensor).
    public func maxAbs() -> Float {
        withUnsafeBufferPointer { p in p.reduce(0) { max($0, abs($1)) } }
    }
}

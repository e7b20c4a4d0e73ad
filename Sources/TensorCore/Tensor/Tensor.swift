/// A dense, row-major (C-order) Float32 tensor with value semantics.
///
/// `Tensor` is a copy-on-write struct over class storage, as swift-collections' `Deque`
/// is: copies are cheap until one of them is mutated. Batched tensors put the batch
/// (chains or a minibatch) first, then PyTorch's per-sample layout (NCHW for images).
///
/// A tensor may borrow read-only memory (a memory-mapped safetensors file); mutating it
/// then copies the data first, so mapped weights are never written.
public struct Tensor: Sendable {
    /// The extent of each dimension, outermost first.
    public private(set) var shape: [Int]
    @usableFromInline package private(set) nonisolated(unsafe) var storage: TensorStorage

    /// The number of elements (the product of the shape).
    @inlinable public var count: Int { storage.count }

    /// Creates a tensor of the given shape with every element set to `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        let n = shape.reduce(1, *)
        self.shape = shape
        self.storage = TensorStorage.make(count: n)
        storage.base.initialize(repeating: value, count: n)
    }

    /// A tensor whose elements are left uninitialised: for kernels that write every one.
    @inlinable
    public init(uninitializedShape shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage.make(count: shape.reduce(1, *)))
    }

    /// Creates a tensor from row-major scalars; `scalars.count` must equal the shape's product.
    /// Inlinable, so callers get a version specialised for their collection type.
    @inlinable
    public init(shape: [Int], scalars: some Collection<Float>) {
        let n = shape.reduce(1, *)
        precondition(scalars.count == n, "\(scalars.count) scalars for shape \(shape)")
        let storage = TensorStorage.make(count: n)
        var i = 0
        for s in scalars { storage.base[i] = s; i += 1 }
        self.init(shape: shape, storage: storage)
    }

    /// Creates a tensor from row-major Float64 values, rounded to Float32.
    @inlinable
    public init(shape: [Int], doubles values: [Double]) {
        let n = shape.reduce(1, *)
        precondition(values.count == n, "\(values.count) values for shape \(shape)")
        let storage = TensorStorage.make(count: n)
        values.withUnsafeBufferPointer { v in
            for i in 0..<n { storage.base[i] = Float(v[i]) }
        }
        self.init(shape: shape, storage: storage)
    }

    /// Creates a tensor whose elements are produced by `body(i)` for each flat index.
    @inlinable
    public init(shape: [Int], generating body: (Int) -> Float) {
        let n = shape.reduce(1, *)
        let storage = TensorStorage.make(count: n)
        for i in 0..<n { storage.base[i] = body(i) }
        self.init(shape: shape, storage: storage)
    }

    /// Wraps existing storage (for example memory-mapped, read-only weights).
    @usableFromInline
    package init(shape: [Int], storage: TensorStorage) {
        precondition(shape.reduce(1, *) == storage.count)
        self.shape = shape
        self.storage = storage
    }

    /// Whether the tensor's memory is borrowed from elsewhere (not yet copied).
    public var isBorrowed: Bool { !storage.isWritable }

    /// The elements in row-major order.
    @inlinable
    public var scalars: [Float] {
        Array(UnsafeBufferPointer(start: storage.base, count: count))
    }

    /// The element at a flat (row-major) index.
    public subscript(flat index: Int) -> Float {
        get {
            precondition(index >= 0 && index < count)
            return storage.base[index]
        }
        set {
            precondition(index >= 0 && index < count)
            makeUnique()
            storage.base[index] = newValue
        }
    }

    /// The batch size: the first dimension (1 for a scalar).
    public var batchSize: Int { shape.first ?? 1 }

    /// The number of elements per sample (all dimensions but the first).
    public var sampleCount: Int { shape.count <= 1 ? 1 : shape.dropFirst().reduce(1, *) }

    /// The same data viewed with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(shape: newShape, storage: storage)
    }

    /// The first element's address, for kernels that run many times over the same tensor
    /// (a dense network's weights). It stays valid while this tensor, or a copy sharing its
    /// storage, lives unmutated.
    package var unsafeBaseAddress: UnsafePointer<Float> { UnsafePointer(storage.base) }

    /// Calls `body` with the elements, read-only.
    @inlinable
    public func withUnsafeBufferPointer<R>(
        _ body: (UnsafeBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.base, count: count))
    }

    /// Calls `body` with the elements, writable, copying first if the storage is shared
    /// or borrowed.
    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        makeUnique()
        return try body(UnsafeMutableBufferPointer(start: storage.base, count: count))
    }

    @usableFromInline
    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) || !storage.isWritable {
            storage = storage.copy()
        }
    }
}

extension Tensor: Equatable {
    public static func == (a: Tensor, b: Tensor) -> Bool {
        guard a.shape == b.shape else { return false }
        if a.storage === b.storage { return true }
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in pa.elementsEqual(pb) }
        }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = scalars.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(head)\(count > 8 ? ", …" : "")])"
    }
}

/// The class storage behind a ``Tensor``: a contiguous Float32 buffer that is either
/// owned (allocated here, freed on deinit) or borrowed from an owner object that keeps
/// the memory alive (a read-only memory-mapped weight file).
///
/// Borrowed storage is never written: the first mutation of a tensor over it copies.
@usableFromInline
package final class TensorStorage: @unchecked Sendable {
    @usableFromInline package let base: UnsafeMutablePointer<Float>
    @usableFromInline package let count: Int
    /// Keeps borrowed memory alive; `nil` when `base` was allocated by this object.
    package let owner: AnyObject?

    @usableFromInline package var isWritable: Bool { owner == nil }

    @usableFromInline
    package init(count: Int) {
        self.count = count
        self.base = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        self.owner = nil
    }

    package init(borrowing base: UnsafePointer<Float>, count: Int, owner: AnyObject) {
        self.base = UnsafeMutablePointer(mutating: base)
        self.count = count
        self.owner = owner
    }

    @usableFromInline package func copy() -> TensorStorage {
        let new = TensorStorage(count: count)
        new.base.update(from: base, count: count)
        return new
    }

    deinit {
        if owner == nil { base.deallocate() }
    }
}

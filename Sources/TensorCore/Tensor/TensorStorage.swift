/// The class storage behind a ``Tensor``: a contiguous Float32 buffer that is either
/// owned (allocated with the object, in one allocation) or borrowed from an owner object
/// that keeps the memory alive (a read-only memory-mapped weight file).
///
/// Borrowed storage is never written: the first mutation of a tensor over it copies.
@usableFromInline
package final class TensorStorage: ManagedBuffer<TensorStorage.Header, Float> {
    @usableFromInline
    package struct Header {
        @usableFromInline var base: UnsafeMutablePointer<Float>
        @usableFromInline var count: Int
        /// Keeps borrowed memory alive; `nil` when the elements follow the header.
        @usableFromInline var owner: AnyObject?
    }

    // The header is read through its pointer: `header` itself is a class property, whose
    // every read would pay a dynamic exclusivity check.
    @usableFromInline package var base: UnsafeMutablePointer<Float> {
        @inline(__always) get { withUnsafeMutablePointerToHeader { $0.pointee.base } }
    }
    @usableFromInline package var count: Int {
        @inline(__always) get { withUnsafeMutablePointerToHeader { $0.pointee.count } }
    }

    @usableFromInline package var isWritable: Bool { withUnsafeMutablePointerToHeader { $0.pointee.owner == nil } }

    /// Owned storage for `count` elements (uninitialised), allocated with the object.
    @usableFromInline
    package static func make(count: Int) -> TensorStorage {
        let buffer = create(minimumCapacity: max(count, 1)) { _ in
            Header(base: UnsafeMutablePointer(bitPattern: 1)!, count: count, owner: nil)
        }
        let storage = unsafeDowncast(buffer, to: TensorStorage.self)
        storage.withUnsafeMutablePointers { header, elements in header.pointee.base = elements }
        return storage
    }

    /// Storage over memory that `owner` keeps alive.
    package static func borrowing(_ base: UnsafePointer<Float>, count: Int, owner: AnyObject) -> TensorStorage {
        let buffer = create(minimumCapacity: 0) { _ in
            Header(base: UnsafeMutablePointer(mutating: base), count: count, owner: owner)
        }
        return unsafeDowncast(buffer, to: TensorStorage.self)
    }

    @usableFromInline package func copy() -> TensorStorage {
        let new = TensorStorage.make(count: count)
        new.base.update(from: base, count: count)
        return new
    }
}

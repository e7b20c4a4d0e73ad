import Foundation

/// Per-thread scratch buffers for kernels (column matrices, permuted copies), grown on
/// demand and reused, so a chain step allocates no large temporaries.
///
/// Each thread gets its own ``Scratch`` through thread-local storage; a buffer's contents
/// are undefined on entry and valid only until the next request for the same slot.
package final class Scratch {
    private var slots: [UnsafeMutablePointer<Float>?] = [nil, nil, nil, nil]
    private var capacities: [Int] = [0, 0, 0, 0]

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { raw in
            Unmanaged<Scratch>.fromOpaque(raw!).release()
        }
        return key
    }()

    /// The calling thread's scratch.
    package static var shared: Scratch {
        if let raw = pthread_getspecific(key) {
            return Unmanaged<Scratch>.fromOpaque(raw).takeUnretainedValue()
        }
        let s = Scratch()
        pthread_setspecific(key, Unmanaged.passRetained(s).toOpaque())
        return s
    }

    /// A buffer of at least `count` floats in slot `slot` (0–3).
    package func buffer(_ slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        if capacities[slot] < count {
            slots[slot]?.deallocate()
            let cap = max(count, capacities[slot] * 3 / 2)
            slots[slot] = .allocate(capacity: cap)
            capacities[slot] = cap
        }
        return slots[slot]!
    }

    deinit {
        for s in slots { s?.deallocate() }
    }
}

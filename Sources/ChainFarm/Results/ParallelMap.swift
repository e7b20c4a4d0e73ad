import Dispatch

/// `body(0) … body(count − 1)` spread over every core, results in index order. Each index
/// is computed the same way whichever thread runs it, so the results do not depend on
/// the number of cores.
func parallelMap<T: Sendable>(_ count: Int, _ body: @Sendable (Int) -> T) -> [T] {
    guard count > 1 else { return (0..<count).map(body) }
    let results = UnsafeMutableBufferPointer<T>.allocate(capacity: count)
    defer { results.deinitialize().deallocate() }
    let slots = Slots(base: results.baseAddress!)
    DispatchQueue.concurrentPerform(iterations: count) { i in (slots.base + i).initialize(to: body(i)) }
    return Array(results)
}

/// Disjoint slots written by concurrent iterations.
private struct Slots<T>: @unchecked Sendable {
    var base: UnsafeMutablePointer<T>
}

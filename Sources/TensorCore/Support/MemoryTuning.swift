/// Process-wide allocator settings for numerical work.
public enum MemoryTuning {
    @_silgen_name("mallopt")
    private static func mallopt(_ parameter: Int32, _ value: Int32) -> Int32

    @_silgen_name("malloc_trim")
    private static func malloc_trim(_ pad: Int) -> Int32

    /// Gives freed memory back to the system, from every thread's arena: for a process that
    /// idles between bursts of allocation (a worker between segments, after a fetch), which
    /// ``keepLargeAllocations()`` would otherwise keep resident for good.
    public static func returnFreeMemory() {
        #if os(Linux)
        _ = malloc_trim(0)
        #endif
    }

    /// One malloc arena for every thread. glibc gives a thread its own arena, and returns an
    /// arena's free top to the system only when a free crosses the trim threshold (which
    /// ``keepLargeAllocations()`` raises), never on ``returnFreeMemory()``: a worker's fetch
    /// and segment buffers would stay resident for good. A worker's threads seldom allocate
    /// at the same time, so sharing one arena costs little. Call before starting threads.
    public static func singleArena() {
        #if os(Linux)
        _ = mallopt(-8, 1)  // M_ARENA_MAX
        #endif
    }

    /// Keeps glibc from serving large tensors with fresh mmap'd pages and returning them
    /// on free: layers allocate and release megabytes every step, and the page faults
    /// otherwise cost more system time than the arithmetic. Call once at start-up.
    public static func keepLargeAllocations() {
        #if os(Linux)
        _ = mallopt(-3, 1 << 30)  // M_MMAP_THRESHOLD
        _ = mallopt(-1, 1 << 30)  // M_TRIM_THRESHOLD
        #endif
    }
}

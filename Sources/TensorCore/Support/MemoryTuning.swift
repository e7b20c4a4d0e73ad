/// Process-wide allocator settings for numerical work.
public enum MemoryTuning {
    @_silgen_name("mallopt")
    private static func mallopt(_ parameter: Int32, _ value: Int32) -> Int32

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

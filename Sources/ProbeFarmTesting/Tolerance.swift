/// Relative and absolute closeness checks used by ProbeFarm's tests.
public enum Tolerance {
    /// Whether `a` and `b` agree to `relative` (scaled by the larger magnitude), or
    /// absolutely to `absolute` when both are tiny.
    public static func isClose(_ a: Double, _ b: Double, relative: Double, absolute: Double = 0) -> Bool {
        if a == b { return true }
        if a.isNaN || b.isNaN { return false }
        let diff = abs(a - b)
        return diff <= absolute || diff <= relative * max(abs(a), abs(b))
    }

    /// The relative difference |a − b| / max(|a|, |b|, floor).
    public static func relativeDifference(_ a: Double, _ b: Double, floor: Double = 0) -> Double {
        if a == b { return 0 }
        return abs(a - b) / max(abs(a), abs(b), floor)
    }
}

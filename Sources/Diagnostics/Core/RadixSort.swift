/// Argsort of Float64 values in O(n): LSD radix sort on order-preserving 64-bit keys,
/// 11 bits per pass (six passes, 2048-entry histograms that stay in L1), all histograms
/// built in one pass over the keys, and passes whose digit is the same for every key
/// skipped. Stable, so equal values keep their index order. NaN-free input only (the
/// diagnostics reject NaN first).
enum RadixSort {
    static let bits = 11
    static let buckets = 1 << bits
    static let passes = 6  // 6 × 11 ≥ 64

    /// The permutation that sorts `x` ascending.
    static func order(_ x: [Double]) -> [Int] {
        let n = x.count
        if n < 256 { return Array(x.indices).sorted { x[$0] < x[$1] || (x[$0] == x[$1] && $0 < $1) } }
        var keys = [UInt64](unsafeUninitializedCapacity: n) { buf, count in
            x.withUnsafeBufferPointer { xs in
                for i in 0..<n {
                    let b = xs[i].bitPattern
                    buf[i] = (b & (1 << 63)) != 0 ? ~b : b | (1 << 63)
                }
            }
            count = n
        }
        var counts = [Int](repeating: 0, count: passes * buckets)
        keys.withUnsafeBufferPointer { k in
            counts.withUnsafeMutableBufferPointer { c in
                for i in 0..<n {
                    var key = k[i]
                    for p in 0..<passes {
                        c[p * buckets + Int(key & UInt64(buckets - 1))] += 1
                        key >>= UInt64(bits)
                    }
                }
            }
        }
        var index = [Int](unsafeUninitializedCapacity: n) { buf, count in
            for i in 0..<n { buf[i] = i }
            count = n
        }
        var keys2 = [UInt64](repeating: 0, count: n)
        var index2 = [Int](repeating: 0, count: n)
        for pass in 0..<passes {
            let base = pass * buckets
            if counts[base..<(base + buckets)].contains(n) { continue }  // one digit for every key
            var sum = 0
            for d in 0..<buckets { let v = counts[base + d]; counts[base + d] = sum; sum += v }
            let shift = UInt64(bits * pass)
            keys.withUnsafeBufferPointer { k in
                index.withUnsafeBufferPointer { ix in
                    keys2.withUnsafeMutableBufferPointer { k2 in
                        index2.withUnsafeMutableBufferPointer { ix2 in
                            counts.withUnsafeMutableBufferPointer { c in
                                for i in 0..<n {
                                    let d = base + Int((k[i] >> shift) & UInt64(buckets - 1))
                                    let p = c[d]
                                    c[d] = p + 1
                                    k2[p] = k[i]
                                    ix2[p] = ix[i]
                                }
                            }
                        }
                    }
                }
            }
            swap(&keys, &keys2)
            swap(&index, &index2)
        }
        return index
    }
}

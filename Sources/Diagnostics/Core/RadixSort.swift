/// Argsort of Float64 values in O(n): LSD radix sort on order-preserving 64-bit keys,
/// 16 bits per pass. Stable, so equal values keep their index order. NaN-free input
/// only (the diagnostics reject NaN first).
enum RadixSort {
    /// The permutation that sorts `x` ascending.
    static func order(_ x: [Double]) -> [Int] {
        let n = x.count
        if n < 64 { return Array(x.indices).sorted { x[$0] < x[$1] || (x[$0] == x[$1] && $0 < $1) } }
        var keys = [UInt64](repeating: 0, count: n)
        for i in 0..<n {
            let b = x[i].bitPattern
            keys[i] = (b & (1 << 63)) != 0 ? ~b : b | (1 << 63)
        }
        var index = [Int32](unsafeUninitializedCapacity: n) { buf, count in
            for i in 0..<n { buf[i] = Int32(i) }
            count = n
        }
        var keys2 = [UInt64](repeating: 0, count: n)
        var index2 = [Int32](repeating: 0, count: n)
        var counts = [Int](repeating: 0, count: 65536)
        for pass in 0..<4 {
            let shift = UInt64(16 * pass)
            counts.withUnsafeMutableBufferPointer { c in
                for i in 0..<65536 { c[i] = 0 }
                keys.withUnsafeBufferPointer { k in
                    for i in 0..<n { c[Int((k[i] >> shift) & 0xFFFF)] += 1 }
                }
            }
            if counts.contains(n) { continue }  // every key has the same digit: nothing to do
            var sum = 0
            for i in 0..<65536 { let v = counts[i]; counts[i] = sum; sum += v }
            keys.withUnsafeBufferPointer { k in
                index.withUnsafeBufferPointer { ix in
                    keys2.withUnsafeMutableBufferPointer { k2 in
                        index2.withUnsafeMutableBufferPointer { ix2 in
                            counts.withUnsafeMutableBufferPointer { c in
                                for i in 0..<n {
                                    let d = Int((k[i] >> shift) & 0xFFFF)
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
        return index.map(Int.init)
    }
}

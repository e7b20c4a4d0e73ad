import Foundation

/// Philox-4x32-10 (Salmon, Moraes, Dror, Shaw 2011, "Parallel random numbers: as easy
/// as 1, 2, 3"; the Random123 library): a counter-based generator. The output block is
/// a bijection of the 128-bit counter under a 64-bit key, so any draw can be computed
/// directly from its coordinates with no state to carry or restore.
public enum Philox {
    public typealias Block = (UInt32, UInt32, UInt32, UInt32)

    /// The 128-bit output for `counter` under `key` after 10 rounds.
    @inline(__always)
    public static func block(counter: Block, key: (UInt32, UInt32)) -> Block {
        var c = counter
        var k = key
        for round in 0..<10 {
            if round > 0 {
                k.0 &+= 0x9E37_79B9
                k.1 &+= 0xBB67_AE85
            }
            let p0 = UInt64(0xD251_1F53) &* UInt64(c.0)
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(c.2)
            c = (UInt32(truncatingIfNeeded: p1 >> 32) ^ c.1 ^ k.0, UInt32(truncatingIfNeeded: p1),
                 UInt32(truncatingIfNeeded: p0 >> 32) ^ c.3 ^ k.1, UInt32(truncatingIfNeeded: p0))
        }
        return c
    }
}

/// The random numbers of one chain: Philox keyed by the job seed, with the chain id, the
/// iteration and a purpose in the counter (`counter = (block, iteration low,
/// iteration high ⊕ purpose·2²⁴, chain)`). A draw depends only on (seed, chain,
/// iteration, purpose, index), so a chain's draws are the same whichever process
/// computes them, in whatever order, however often.
public struct RandomStream: Sendable, Hashable, Codable {
    public var seed: UInt64
    public var chain: UInt32

    /// What a block of random numbers is for, so different uses never share counters.
    public enum Purpose: UInt32, Sendable {
        case proposal = 1
        case accept = 2
        case momentum = 3
        case initialization = 4
        case perturbation = 5
        /// NUTS: a trajectory's direction choices and multinomial selections, by index.
        case trajectory = 6
        /// Replica exchange: the swap of pair r at an iteration (index r).
        case swap = 7
    }

    public init(seed: UInt64, chain: Int) {
        self.seed = seed
        self.chain = UInt32(truncatingIfNeeded: chain)
    }

    /// The stream of a chain's tempered replica r > 0 (another key: independent of every
    /// chain's own stream); replica 0 is the chain's own.
    public init(seed: UInt64, chain: Int, replica: Int) {
        self.init(seed: replica == 0 ? seed : seed ^ (UInt64(replica) &* 0x9E37_79B9_7F4A_7C15), chain: chain)
    }

    @inline(__always)
    func block(_ index: UInt32, iteration: UInt64, purpose: Purpose) -> Philox.Block {
        let hi = UInt32(truncatingIfNeeded: iteration >> 32) & 0x00FF_FFFF
        return Philox.block(
            counter: (index, UInt32(truncatingIfNeeded: iteration), hi | (purpose.rawValue << 24), chain),
            key: (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)))
    }

    /// A uniform Double in (0, 1) from 53 random bits.
    @inline(__always)
    static func unit(_ hi: UInt32, _ lo: UInt32) -> Double {
        (Double((UInt64(hi) << 21) ^ (UInt64(lo) >> 11)) + 0.5) * 0x1p-53
    }

    /// `count` uniforms in (0, 1).
    public func uniforms(_ count: Int, iteration: UInt64, purpose: Purpose) -> [Double] {
        var out = [Double]()
        out.reserveCapacity(count)
        var index: UInt32 = 0
        while out.count < count {
            let b = block(index, iteration: iteration, purpose: purpose)
            out.append(Self.unit(b.0, b.1))
            if out.count < count { out.append(Self.unit(b.2, b.3)) }
            index += 1
        }
        return out
    }

    /// One uniform in (0, 1).
    public func uniform(iteration: UInt64, purpose: Purpose) -> Double {
        uniform(0, iteration: iteration, purpose: purpose)
    }

    /// The `index`-th uniform of (iteration, purpose), one block each: for a sequence of
    /// decisions whose length is not known in advance.
    public func uniform(_ index: UInt32, iteration: UInt64, purpose: Purpose) -> Double {
        let b = block(index, iteration: iteration, purpose: purpose)
        return Self.unit(b.0, b.1)
    }

    /// `count` standard normal variates by Marsaglia's polar method: each counter block
    /// gives a point (u, v) uniform in the square [−1, 1]²; inside the unit circle
    /// (s = u² + v² ∈ (0, 1)) it yields the pair (u, v)·√(−2 ln s / s), otherwise the next
    /// block is used. One log and one square root per pair, no trigonometry; blocks are
    /// consumed in order, so asking for more variates never changes the first ones.
    public func normals(_ count: Int, iteration: UInt64, purpose: Purpose) -> [Double] {
        [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
            normals(into: buffer, iteration: iteration, purpose: purpose)
            initialized = count
        }
    }

    /// Fills `buffer` with the variates of ``normals(_:iteration:purpose:)`` (as many as it holds).
    public func normals(into buffer: UnsafeMutableBufferPointer<Double>, iteration: UInt64, purpose: Purpose) {
        let count = buffer.count
        var index: UInt32 = 0, filled = 0
        while filled < count {
            let b = block(index, iteration: iteration, purpose: purpose)
            index += 1
            let u = 2 * Self.unit(b.0, b.1) - 1, v = 2 * Self.unit(b.2, b.3) - 1
            let s = u * u + v * v
            guard s < 1, s > 0 else { continue }
            let f = (-2 * log(s) / s).squareRoot()
            buffer[filled] = u * f
            filled += 1
            if filled < count { buffer[filled] = v * f; filled += 1 }
        }
    }
}


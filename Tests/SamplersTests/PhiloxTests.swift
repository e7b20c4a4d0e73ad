import Samplers
import Testing

struct PhiloxTests {
    // Random123's kat_vectors for philox4x32-10: counter, key → output.
    @Test("Random123 known-answer vectors", arguments: [
        ([0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
        ([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff],
         [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]),
        ([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0],
         [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]),
    ] as [([UInt32], [UInt32], [UInt32])])
    func knownAnswers(_ counter: [UInt32], _ key: [UInt32], _ expected: [UInt32]) {
        let out = Philox.block(counter: (counter[0], counter[1], counter[2], counter[3]), key: (key[0], key[1]))
        #expect([out.0, out.1, out.2, out.3] == expected)
    }

    @Test("streams depend only on (seed, chain, iteration, purpose)")
    func streams() {
        let a = RandomStream(seed: 42, chain: 3)
        #expect(a.normals(7, iteration: 10, purpose: .proposal) == RandomStream(seed: 42, chain: 3).normals(7, iteration: 10, purpose: .proposal))
        #expect(a.normals(7, iteration: 10, purpose: .proposal) != RandomStream(seed: 42, chain: 4).normals(7, iteration: 10, purpose: .proposal))
        #expect(a.normals(7, iteration: 10, purpose: .proposal) != a.normals(7, iteration: 11, purpose: .proposal))
        #expect(a.uniform(iteration: 10, purpose: .accept) != a.uniform(iteration: 10, purpose: .proposal))
        // Prefix-stable: asking for more numbers extends, never changes, the first ones.
        #expect(Array(a.normals(9, iteration: 5, purpose: .momentum).prefix(4)) == a.normals(4, iteration: 5, purpose: .momentum))
    }

    @Test("uniforms lie in (0, 1) and normals have mean 0 and variance 1 within 5 standard errors")
    func distributions() {
        let s = RandomStream(seed: 7, chain: 0)
        let u = s.uniforms(200_000, iteration: 0, purpose: .proposal)
        #expect(u.allSatisfy { $0 > 0 && $0 < 1 })
        let uMean: Double = u.reduce(0, +) / 200_000
        let uLimit: Double = 5 * (1.0 / 12 / 200_000).squareRoot()
        #expect(abs(uMean - 0.5) < uLimit)
        let z = s.normals(200_000, iteration: 1, purpose: .proposal)
        let mean: Double = z.reduce(0, +) / 200_000
        let variance: Double = z.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 200_000
        let meanLimit: Double = 5 * (1.0 / 200_000).squareRoot()
        let varianceLimit: Double = 5 * (2.0 / 200_000).squareRoot()
        #expect(abs(mean) < meanLimit)
        #expect(abs(variance - 1) < varianceLimit)
    }
}

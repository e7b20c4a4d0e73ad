import NeuralModels
import Testing

struct SHA256Tests {
    // FIPS 180-4 examples and a multi-block input.
    @Test("known digests", arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func digests(_ text: String, _ hex: String) {
        #expect(SHA256.hex(Array(text.utf8)) == hex)
    }

    @Test("a million a's, fed in uneven chunks")
    func streaming() {
        var s = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 999)
        var fed = 0
        while fed < 1_000_000 {
            let n = min(999, 1_000_000 - fed)
            chunk.prefix(n).withUnsafeBytes { s.update($0) }
            fed += n
        }
        #expect(s.finalizeHex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}

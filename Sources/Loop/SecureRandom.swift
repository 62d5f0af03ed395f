internal import CLibUV

/// Random bytes from the kernel for secrets (hold tokens): one `uv_random` (getrandom) call for
/// the whole buffer, where `SystemRandomNumberGenerator` makes one per eight bytes.
public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        // Without a callback uv_random runs synchronously: it reads the kernel's generator.
        let status = bytes.withUnsafeMutableBytes { buffer in
            uv_random(nil, nil, buffer.baseAddress, buffer.count, 0, nil)
        }
        if status != 0 {
            var generator = SystemRandomNumberGenerator()
            for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255, using: &generator) }
        }
        return bytes
    }
}

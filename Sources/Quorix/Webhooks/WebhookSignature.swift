import Crypto

/// `Quorix-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed with the
/// webhook's secret (its UTF-8 bytes). The time is signed with the body so that a receiver can
/// refuse replays of an old delivery (API.md: over 5 minutes old).
public enum WebhookSignature {
    public static let headerName = "Quorix-Signature"

    public static func header(secret: String, body: [UInt8], unixSeconds: Int) -> String {
        "t=\(unixSeconds),v1=\(hex(secret: secret, body: body, unixSeconds: unixSeconds))"
    }

    public static func hex(secret: String, body: [UInt8], unixSeconds: Int) -> String {
        let key = SymmetricKey(data: Array(secret.utf8))
        let signed = Array("\(unixSeconds).".utf8) + body
        let mac = HMAC<SHA256>.authenticationCode(for: signed, using: key)
        return mac.map { byte in
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]], as: UTF8.self)
        }.joined()
    }
}

public import PG
public import Loop
import Crypto

/// API keys: created with a role, shown once, stored as SHA-256 hashes.
///
/// Authenticating every request against the database would add a round trip to each hold, so
/// keys found are remembered for 30 seconds (a revoked key may work that long), and requests
/// that miss together share one lookup: when sales open, or when a key's entry has just run out
/// under load, a thousand requests with the same key must not each ask the database. The
/// configured admin key never touches the database.
@LoopActor
public final class APIKeyStore {
    private let pool: PGPool
    private let adminKeyHash: [UInt8]?
    /// Found keys only: an unknown key is looked up again next time (it may be created a moment later).
    private let found = CoalescingCache<[UInt8], Principal>(maxAgeMilliseconds: 30_000)

    public init(pool: PGPool, adminKey: String?) {
        self.pool = pool
        adminKeyHash = adminKey.map(APIKeyStore.hash)
    }

    nonisolated static func hash(_ key: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(key.utf8)))
    }

    /// The principal for a presented key, or nil when no such (unrevoked) key exists.
    public func principal(forKey key: String) async throws(PGError) -> Principal? {
        let hashed = APIKeyStore.hash(key)
        if let adminKeyHash, constantTimeEqual(hashed, adminKeyHash) {
            return Principal(keyID: nil, role: .admin, name: "QUORIX_ADMIN_KEY")
        }
        do {
            return try await found.value(for: hashed) { [pool] in
                let result = try await pool.query("""
                    SELECT id, role, name FROM api_keys WHERE key_hash = \(PGBytes(hashed)) AND revoked_at IS NULL
                    """)
                guard let row = result.first, let role = Principal.Role(rawValue: try row.string("role")) else { return nil }
                return Principal(keyID: try row.string("id"), role: role, name: try row.string("name"))
            }
        } catch let error as PGError {
            throw error
        } catch {
            throw PGError(kind: .decoding, message: "the API key lookup failed: \(error)")
        }
    }

    public struct CreatedKey: Sendable {
        public let id: String
        public let key: String
        public let role: Principal.Role
        public let name: String
        public let createdAt: String
    }

    /// Creates a key; the returned `key` is the only time it is ever shown.
    public static func create(role: Principal.Role, name: String, on connection: PGConnection) async throws(PGError) -> CreatedKey {
        let key = generateKey()
        let result = try await connection.query("""
            INSERT INTO api_keys (name, role, key_hash, key_prefix)
            VALUES (\(name), \(role.rawValue), \(PGBytes(hash(key))), \(String(key.prefix(10))))
            RETURNING id, \(unsafeSQL: SQLTime.rfc3339("created_at")) AS created_at
            """)
        guard let row = result.first else { throw PGError(kind: .decoding, message: "INSERT returned no row") }
        return CreatedKey(id: try row.string("id"), key: key, role: role, name: name, createdAt: try row.string("created_at"))
    }

    /// `qx_` and 32 random bytes in URL-safe base64 (43 characters).
    nonisolated static func generateKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return "qx_" + Base64URL.encode(bytes)
    }

    /// Validates a create-key request body.
    public nonisolated static func validateNewKey(_ body: JSONObjectReader) throws(APIError) -> (Principal.Role, String) {
        var body = body
        let roleText = try body.required("role") { reader throws(APIError) in try reader.string("role") }
        let name = try body.required("name") { reader throws(APIError) in try reader.string("name") }
        body.rejectUnknown(["role", "name"])
        var role: Principal.Role?
        if let roleText {
            role = Principal.Role(rawValue: roleText)
            if role == nil { body.problem("role", "must be one of admin, organizer, client") }
        }
        if let name, name.trimmingCharacters(in: " \t\n").isEmpty || name.count > 200 {
            body.problem("name", "must be 1 to 200 characters")
        }
        try body.throwIfProblems()
        return (role!, name!)
    }
}

private func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
    return difference == 0
}

public enum Base64URL {
    public static func encode(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var output: [UInt8] = []
        var index = 0
        while index + 3 <= bytes.count {
            let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            for shift in [18, 12, 6, 0] { output.append(alphabet[Int((value >> UInt32(shift)) & 63)]) }
            index += 3
        }
        let rest = bytes.count - index
        if rest > 0 {
            var value = UInt32(bytes[index]) << 16
            if rest == 2 { value |= UInt32(bytes[index + 1]) << 8 }
            output.append(alphabet[Int((value >> 18) & 63)])
            output.append(alphabet[Int((value >> 12) & 63)])
            if rest == 2 { output.append(alphabet[Int((value >> 6) & 63)]) }
        }
        return String(decoding: output, as: UTF8.self)
    }
}

public import Loop
public import PG

/// A webhook as stored (its secret is shown only when it is created).
public struct WebhookRecord: Sendable {
    public let id: Int
    public let url: String
    public let eventTypes: [String]
    public let createdAt: String
}

/// Webhooks in PostgreSQL.
@LoopActor
public final class WebhookStore {
    public nonisolated static let eventTypes = [
        "booking.confirmed", "booking.cancelled", "hold.expired", "hold.released", "waitlist.offered", "waitlist.expired",
    ]

    private let pool: PGPool

    public init(pool: PGPool) {
        self.pool = pool
    }

    private static let columns = "id, url, array_to_string(event_types, ',') AS event_types, \(SQLTime.rfc3339("created_at")) AS created_at"

    private static func record(_ row: PGRow) throws -> WebhookRecord {
        WebhookRecord(
            id: try row.int("id"), url: try row.string("url"),
            eventTypes: try row.string("event_types").split(separator: ",").map(String.init), createdAt: try row.string("created_at"))
    }

    public func create(ownerKeyID: String?, url: String, eventTypes: [String], secret: String) async throws -> WebhookRecord {
        let result = try await pool.query("""
            INSERT INTO webhooks (owner_key_id, url, event_types, secret)
            VALUES (\(ownerKeyID)::uuid, \(url), \(eventTypes)::text[], \(secret))
            RETURNING \(unsafeSQL: WebhookStore.columns)
            """)
        guard let row = result.first else { throw PGError(kind: .decoding, message: "INSERT INTO webhooks returned no row") }
        return try WebhookStore.record(row)
    }

    /// The owner's live webhooks by id, after `afterID`.
    public func list(ownerKeyID: String?, afterID: Int, limit: Int) async throws -> [WebhookRecord] {
        try await pool.query("""
            SELECT \(unsafeSQL: WebhookStore.columns) FROM webhooks
            WHERE owner_key_id IS NOT DISTINCT FROM \(ownerKeyID)::uuid AND deleted_at IS NULL AND id > \(afterID)
            ORDER BY id LIMIT \(limit)
            """).rows.map(WebhookStore.record)
    }

    public func find(id: Int, ownerKeyID: String?) async throws -> WebhookRecord? {
        try await pool.query("""
            SELECT \(unsafeSQL: WebhookStore.columns) FROM webhooks
            WHERE id = \(id) AND owner_key_id IS NOT DISTINCT FROM \(ownerKeyID)::uuid AND deleted_at IS NULL
            """).first.map(WebhookStore.record)
    }

    /// Deletes the owner's webhook; its deliveries not yet made are dropped with it (there is
    /// no receiver left to make them to). False when the owner has no such live webhook.
    public func delete(id: Int, ownerKeyID: String?) async throws -> Bool {
        try await pool.withTransaction { connection in
            let deleted = try await connection.query("""
                UPDATE webhooks SET deleted_at = now()
                WHERE id = \(id) AND owner_key_id IS NOT DISTINCT FROM \(ownerKeyID)::uuid AND deleted_at IS NULL
                RETURNING id
                """)
            guard !deleted.isEmpty else { return false }
            try await connection.query("DELETE FROM webhook_outbox WHERE webhook_id = \(id) AND delivered_at IS NULL")
            return true
        }
    }
}

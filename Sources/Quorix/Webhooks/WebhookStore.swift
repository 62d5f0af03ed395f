public import Loop
public import PG

/// A webhook as stored (its secret is shown only when it is created).
public struct WebhookRecord: Sendable {
    public let id: Int
    public let url: String
    public let eventTypes: [String]
    public let createdAt: String
}

/// A delivery claimed for one try: what to POST, where, and the key to sign it with.
public struct ClaimedDelivery: Sendable {
    public let eventID: Int
    public let outboxID: Int
    public let webhookID: Int
    public let deliveryID: String
    /// `{"id", "type", "created_at", "data"}`, exactly the bytes posted and signed.
    public let body: [UInt8]
    public let url: String
    public let secret: String
    /// Tries so far, this one included.
    public let attempts: Int
}

/// Webhooks and their outbox in PostgreSQL. Deliveries are written by triggers (migration 0006)
/// in the transaction of the change they announce; this store claims and settles them.
@LoopActor
public final class WebhookStore {
    public nonisolated static let eventTypes = [
        "booking.confirmed", "booking.cancelled", "hold.expired", "hold.released", "waitlist.offered", "waitlist.expired",
    ]
    /// A claimed delivery is not claimed again for this long: the lease that covers its POST,
    /// and brings it back if this process dies meanwhile.
    public static let leaseSeconds = 30

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

    /// Claims up to `limit` due deliveries in one short statement: locked with `SKIP LOCKED` (so
    /// several processes deliver without waiting on each other), their next try pushed a lease
    /// ahead and their attempts counted. No lock or connection is kept for the POST.
    public func claim(limit: Int) async throws -> [ClaimedDelivery] {
        let result = try await pool.query("""
            WITH due AS (
                SELECT event_id, id FROM webhook_outbox
                WHERE delivered_at IS NULL AND next_attempt_at <= now()
                ORDER BY next_attempt_at LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
            )
            UPDATE webhook_outbox o
            SET attempts = o.attempts + 1, next_attempt_at = now() + \(WebhookStore.leaseSeconds) * interval '1 second'
            FROM due, webhooks w
            WHERE o.event_id = due.event_id AND o.id = due.id AND w.id = o.webhook_id
            RETURNING o.event_id, o.id, o.webhook_id, o.delivery_id::text AS delivery_id, o.attempts, w.url, w.secret,
                jsonb_build_object('id', o.delivery_id, 'type', o.type, 'created_at', quorix_api_time(o.created_at),
                                   'data', o.payload)::text AS body
            """)
        return try result.rows.map { row in
            ClaimedDelivery(
                eventID: try row.int("event_id"), outboxID: try row.int("id"), webhookID: try row.int("webhook_id"),
                deliveryID: try row.string("delivery_id"),
                body: Array(try row.string("body").utf8), url: try row.string("url"), secret: try row.string("secret"),
                attempts: try row.int("attempts"))
        }
    }

    /// Records the outcome of a try, unless a later claim of the same delivery (after its
    /// lease ran out) has taken over.
    public func settle(_ delivery: ClaimedDelivery, error: String?, retryInMilliseconds: UInt64) async throws {
        if let error {
            try await pool.query("""
                UPDATE webhook_outbox SET last_error = \(String(error.prefix(500))),
                    next_attempt_at = now() + \(Int(retryInMilliseconds)) * interval '1 millisecond'
                WHERE event_id = \(delivery.eventID) AND id = \(delivery.outboxID) AND attempts = \(delivery.attempts)
                  AND delivered_at IS NULL
                """)
        } else {
            try await pool.query("""
                UPDATE webhook_outbox SET delivered_at = now(), last_error = NULL
                WHERE event_id = \(delivery.eventID) AND id = \(delivery.outboxID) AND delivered_at IS NULL
                """)
        }
    }
}

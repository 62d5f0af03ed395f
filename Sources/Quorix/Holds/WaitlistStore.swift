public import Loop
public import PG

/// A waitlist entry as the API shows it.
public struct WaitlistRecord: Sendable {
    public let id: Int
    public let eventID: Int
    public let apiKeyID: String?
    public let customer: String
    public let quantity: Int
    public let status: String
    /// Place among the event's waiting entries (from 1); nil unless waiting.
    public let position: Int?
    public let offer: Offer?

    public struct Offer: Sendable {
        public let token: String
        public let seatIDs: [Int]
        public let expiresAt: String
    }
}

/// Waitlist entries, and the promotion every seat-freeing transaction runs.
@LoopActor
public final class WaitlistStore {
    private let pool: PGPool

    public init(pool: PGPool) {
        self.pool = pool
    }

    /// Offers the event's free seats to its waiting entries, oldest first, inside the caller's
    /// transaction (right after it freed seats). Returns how many offers were made.
    @discardableResult
    public static func promote(eventID: Int, on connection: PGConnection) async throws -> Int {
        try await connection.query("SELECT entry_id FROM quorix_promote_waitlist(\(eventID))").count
    }

    public func join(eventID: Int, customer: String, apiKeyID: String?, quantity: Int, category: String?, sectionKey: String?) async throws -> WaitlistRecord {
        let result = try await pool.query("""
            INSERT INTO waitlist_entries (event_id, customer, api_key_id, quantity, category, section_key)
            VALUES (\(eventID), \(customer), \(apiKeyID)::uuid, \(quantity), \(category), \(sectionKey))
            RETURNING id
            """)
        guard let id = try result.first?.int("id"), let entry = try await find(id: id) else {
            throw PGError(kind: .decoding, message: "a new waitlist entry vanished")
        }
        return entry
    }

    public func find(id: Int) async throws -> WaitlistRecord? {
        let result = try await pool.query("""
            SELECT w.id, w.event_id, w.api_key_id, w.customer, w.quantity, w.status, w.offer_token,
                   CASE WHEN w.status = 'waiting' THEN (
                       SELECT count(*) FROM waitlist_entries ahead
                       WHERE ahead.event_id = w.event_id AND ahead.status = 'waiting' AND ahead.id <= w.id) END AS position,
                   array_to_string(h.seat_ids, ',') AS seat_ids, \(unsafeSQL: SQLTime.rfc3339("h.expires_at")) AS expires_at
            FROM waitlist_entries w
            LEFT JOIN holds h ON w.status = 'offered' AND h.event_id = w.event_id AND h.id = w.offer_hold_id
            WHERE w.id = \(id)
            """)
        guard let row = result.first else { return nil }
        var offer: WaitlistRecord.Offer?
        if try row.string("status") == "offered", let token = try row.optionalString("offer_token"), let seats = try row.optionalString("seat_ids") {
            offer = .init(token: token, seatIDs: seats.split(separator: ",").compactMap { Int($0) }, expiresAt: try row.string("expires_at"))
        }
        return WaitlistRecord(
            id: try row.int("id"), eventID: try row.int("event_id"), apiKeyID: try row.optionalString("api_key_id"),
            customer: try row.string("customer"), quantity: try row.int("quantity"), status: try row.string("status"),
            position: try row.optionalInt("position"), offer: offer)
    }

    public enum LeaveOutcome: Sendable {
        /// `freed`: the versions the release of a standing offer gave its seats (none without one).
        case left(eventID: Int, freed: [SeatVersion])
        case notFound
        /// Already converted, expired or left.
        case over(status: String)
    }

    /// Leaves the waitlist; an offer still standing is released, and its seats go to the next
    /// entries in the same transaction.
    public func leave(id: Int, apiKeyID: String?, isAdmin: Bool) async throws -> LeaveOutcome {
        try await pool.withTransaction { connection -> LeaveOutcome in
            let locked = try await connection.query("""
                SELECT event_id, api_key_id, status, offer_hold_id FROM waitlist_entries WHERE id = \(id) FOR UPDATE
                """)
            guard let row = locked.first else { return .notFound }
            let owner = try row.optionalString("api_key_id")
            guard isAdmin || owner == apiKeyID else { return .notFound }
            let eventID = try row.int("event_id")
            let status = try row.string("status")
            guard status == "waiting" || status == "offered" else { return .over(status: status) }
            try await connection.query("""
                UPDATE waitlist_entries SET status = 'left', offer_token = NULL, updated_at = now() WHERE event_id = \(eventID) AND id = \(id)
                """)
            var freed: [SeatVersion] = []
            if status == "offered", let holdID = try row.optionalInt("offer_hold_id") {
                let offer = try await connection.query("""
                    SELECT array_to_string(seat_ids, ',') AS seat_ids FROM holds
                    WHERE event_id = \(eventID) AND id = \(holdID) AND status = 'active' FOR UPDATE
                    """)
                if let seats = try offer.first?.string("seat_ids") {
                    freed = try await HoldStore.releaseLocked(
                        eventID: eventID, holdID: holdID, seatIDs: seats.split(separator: ",").compactMap { Int($0) }, on: connection)
                }
            }
            return .left(eventID: eventID, freed: freed)
        }
    }
}

public import Loop
public import PG

/// A booking as the API shows it.
public struct BookingRecord: Sendable {
    public let id: Int
    public let eventID: Int
    public let customer: String
    public let apiKeyID: String?
    public let seatIDs: [Int]
    public let cancelledSeatIDs: [Int]
    public let totalCents: Int
    public let status: String
    public let createdAt: String
}

/// Confirmation (hold → booking), booking reads and cancellation.
@LoopActor
public final class BookingStore {
    private let pool: PGPool
    /// Idempotency keys are scoped to the API key that sent them; the configured admin key has
    /// no row in `api_keys`, so it uses this id.
    public static let adminKeyID = "00000000-0000-0000-0000-000000000000"

    public init(pool: PGPool) {
        self.pool = pool
    }

    private static let columns = """
        b.id, b.event_id, b.customer, b.api_key_id, b.status, \(SQLTime.rfc3339("b.created_at")) AS created_at,
        (SELECT array_to_string(array_agg(sb.seat_id ORDER BY sb.seat_id) FILTER (WHERE sb.cancelled_at IS NULL), ',')
           FROM seat_bookings sb WHERE sb.event_id = b.event_id AND sb.booking_id = b.id) AS seat_ids,
        (SELECT array_to_string(array_agg(sb.seat_id ORDER BY sb.seat_id) FILTER (WHERE sb.cancelled_at IS NOT NULL), ',')
           FROM seat_bookings sb WHERE sb.event_id = b.event_id AND sb.booking_id = b.id) AS cancelled_seat_ids,
        (SELECT coalesce(sum(sb.price_cents) FILTER (WHERE sb.cancelled_at IS NULL), 0)
           FROM seat_bookings sb WHERE sb.event_id = b.event_id AND sb.booking_id = b.id) AS total_cents
        """

    private static func ids(_ text: String?) -> [Int] {
        (text ?? "").split(separator: ",").compactMap { Int($0) }
    }

    private static func record(_ row: PGRow) throws -> BookingRecord {
        BookingRecord(
            id: try row.int("id"), eventID: try row.int("event_id"), customer: try row.string("customer"),
            apiKeyID: try row.optionalString("api_key_id"), seatIDs: ids(try row.optionalString("seat_ids")),
            cancelledSeatIDs: ids(try row.optionalString("cancelled_seat_ids")), totalCents: try row.int("total_cents"),
            status: try row.string("status"), createdAt: try row.string("created_at"))
    }

    private static func booking(eventID: Int, id: Int, on connection: PGConnection) async throws -> BookingRecord? {
        let result = try await connection.query("SELECT \(unsafeSQL: columns) FROM bookings b WHERE b.event_id = \(eventID) AND b.id = \(id)")
        return try result.first.map(record)
    }

    public enum ConfirmOutcome: Sendable {
        /// `created` is false when the hold had been confirmed before (same booking again).
        /// `booked`: the versions the confirm gave the seats (none when it was confirmed before).
        case confirmed(BookingRecord, created: Bool, booked: [SeatVersion])
        case notFound
        case notActive(status: String)
        case expired
        case idempotencyKeyReused
    }

    /// One transaction: lock the hold and its seat rows, check it is active and unexpired in
    /// database time, write one `seat_bookings` row per seat (the partial unique index makes a
    /// double sale impossible), mark the seats booked, the hold confirmed.
    public func confirm(token: String, apiKeyID: String?, idempotencyKey: String?) async throws -> ConfirmOutcome {
        guard let eventID = HoldToken.eventID(of: token) else { return .notFound }
        let hash = HoldToken.hash(token)
        let scope = apiKeyID ?? BookingStore.adminKeyID
        return try await pool.withTransaction { connection -> ConfirmOutcome in
            let locked = try await connection.query("""
                SELECT h.id, h.customer, array_to_string(h.seat_ids, ',') AS seat_ids, h.status,
                       h.expires_at > now() AS live,
                       (SELECT b.id FROM bookings b WHERE b.event_id = h.event_id AND b.hold_id = h.id) AS booking_id
                FROM holds h WHERE h.event_id = \(eventID) AND h.token_hash = \(PGBytes(hash)) FOR UPDATE
                """)
            guard let hold = locked.first else { return .notFound }
            let holdID = try hold.int("id")
            if let idempotencyKey {
                let used = try await connection.query("""
                    SELECT event_id, hold_id FROM idempotency_keys
                    WHERE api_key_id = \(scope)::uuid AND idempotency_key = \(idempotencyKey)
                    """)
                if let previous = used.first, try previous.int("event_id") != eventID || previous.int("hold_id") != holdID {
                    return .idempotencyKeyReused
                }
            }
            var existingBookingID = try hold.optionalInt("booking_id")
            if existingBookingID == nil, try hold.string("status") == "confirmed" {
                // Confirmed by a transaction that committed while this one waited for the lock: the
                // locking statement's subquery still used the older snapshot; a new statement sees it.
                existingBookingID = try await connection.query("""
                    SELECT id FROM bookings WHERE event_id = \(eventID) AND hold_id = \(holdID)
                    """).first?.int("id")
            }
            if let existingBookingID, let booking = try await BookingStore.booking(eventID: eventID, id: existingBookingID, on: connection) {
                return .confirmed(booking, created: false, booked: [])
            }
            let status = try hold.string("status")
            // Released by the sweeper: expired, whether or not a request saw it first.
            if status == "expired" { return .expired }
            guard status == "active" else { return .notActive(status: status) }
            guard try hold.bool("live") else { return .expired }
            let seatIDs = BookingStore.ids(try hold.string("seat_ids"))
            let seats = try await connection.query("""
                SELECT seat_id FROM event_seats
                WHERE event_id = \(eventID) AND seat_id = ANY(\(seatIDs)::bigint[]) AND hold_id = \(holdID) AND status = 'held'
                FOR UPDATE
                """)
            // Seats of this hold taken by someone else can only mean it expired meanwhile.
            guard seats.count == seatIDs.count else { return .expired }
            if let idempotencyKey {
                // Claim the key; a confirm of another hold that claimed it meanwhile wins (this
                // INSERT waits for it to commit), and this one then changes nothing.
                let claimed = try await connection.query("""
                    INSERT INTO idempotency_keys (api_key_id, idempotency_key, event_id, hold_id)
                    VALUES (\(scope)::uuid, \(idempotencyKey), \(eventID), \(holdID)) ON CONFLICT DO NOTHING
                    RETURNING hold_id
                    """)
                if claimed.isEmpty {
                    return .idempotencyKeyReused
                }
            }
            let inserted = try await connection.query("""
                INSERT INTO bookings (event_id, hold_id, customer, api_key_id, idempotency_key, total_cents)
                SELECT \(eventID), \(holdID), \(try hold.string("customer")), \(apiKeyID)::uuid, \(idempotencyKey),
                       coalesce(sum((ev.prices ->> es.category)::bigint), 0)
                FROM event_seats es JOIN events ev ON ev.id = es.event_id
                WHERE es.event_id = \(eventID) AND es.seat_id = ANY(\(seatIDs)::bigint[])
                RETURNING id
                """)
            let bookingID = try inserted.first?.int("id") ?? 0
            try await connection.query("""
                INSERT INTO seat_bookings (event_id, booking_id, seat_id, price_cents)
                SELECT \(eventID), \(bookingID), es.seat_id, (ev.prices ->> es.category)::bigint
                FROM event_seats es JOIN events ev ON ev.id = es.event_id
                WHERE es.event_id = \(eventID) AND es.seat_id = ANY(\(seatIDs)::bigint[])
                """)
            let booked = try await connection.query("""
                UPDATE event_seats SET status = 'booked', booking_id = \(bookingID), hold_id = NULL,
                       version = nextval('seat_change_version')
                WHERE event_id = \(eventID) AND seat_id = ANY(\(seatIDs)::bigint[])
                RETURNING seat_id, version
                """)
            try await connection.query("UPDATE holds SET status = 'confirmed' WHERE event_id = \(eventID) AND id = \(holdID)")
            try await connection.query("""
                UPDATE waitlist_entries SET status = 'converted', offer_token = NULL, updated_at = now()
                WHERE event_id = \(eventID) AND offer_hold_id = \(holdID) AND status = 'offered'
                """)
            guard let booking = try await BookingStore.booking(eventID: eventID, id: bookingID, on: connection) else {
                throw PGError(kind: .decoding, message: "booking \(bookingID) vanished inside its transaction")
            }
            return .confirmed(booking, created: true, booked: try SeatVersion.from(booked))
        }
    }

    public func booking(id: Int) async throws -> BookingRecord? {
        let result = try await pool.query("SELECT \(unsafeSQL: BookingStore.columns) FROM bookings b WHERE b.id = \(id)")
        return try result.first.map(BookingStore.record)
    }

    /// A customer's bookings made through one API key, newest first.
    public func bookings(apiKeyID: String?, customer: String, beforeID: Int?, limit: Int) async throws -> [BookingRecord] {
        let result = try await pool.query("""
            SELECT \(unsafeSQL: BookingStore.columns) FROM bookings b
            WHERE b.api_key_id IS NOT DISTINCT FROM \(apiKeyID)::uuid AND b.customer = \(customer)
              AND (\(beforeID)::bigint IS NULL OR b.id < \(beforeID))
            ORDER BY b.id DESC LIMIT \(limit)
            """)
        return try result.rows.map(BookingStore.record)
    }

    public enum CancelOutcome: Sendable {
        /// With the versions the cancel gave the seats it freed.
        case cancelled(BookingRecord, freed: [SeatVersion])
        case notFound
        case alreadyCancelled
        /// Seats named that are not (or no longer) in the booking.
        case notInBooking(seatIDs: [Int])
    }

    /// Cancels some or all seats; they become free at once.
    public func cancel(id: Int, seatIDs requested: [Int]?, onlyFor apiKeyID: String?, isAdmin: Bool) async throws -> CancelOutcome {
        guard let existing = try await booking(id: id), isAdmin || existing.apiKeyID == apiKeyID else { return .notFound }
        let eventID = existing.eventID
        return try await pool.withTransaction { connection -> CancelOutcome in
            try await connection.query("SELECT id FROM bookings WHERE event_id = \(eventID) AND id = \(id) FOR UPDATE")
            guard let current = try await BookingStore.booking(eventID: eventID, id: id, on: connection) else { return .notFound }
            if current.status == "cancelled" { return .alreadyCancelled }
            let active = Set(current.seatIDs)
            let seatIDs = requested ?? current.seatIDs
            let foreign = seatIDs.filter { !active.contains($0) }
            if !foreign.isEmpty { return .notInBooking(seatIDs: foreign) }
            try await connection.query("""
                UPDATE seat_bookings SET cancelled_at = now()
                WHERE event_id = \(eventID) AND booking_id = \(id) AND seat_id = ANY(\(seatIDs)::bigint[]) AND cancelled_at IS NULL
                """)
            let freed = try await connection.query("""
                UPDATE event_seats SET status = 'free', booking_id = NULL, version = nextval('seat_change_version')
                WHERE event_id = \(eventID) AND seat_id = ANY(\(seatIDs)::bigint[]) AND booking_id = \(id)
                RETURNING seat_id, version
                """)
            try await WaitlistStore.promote(eventID: eventID, on: connection)
            let status = seatIDs.count == active.count ? "cancelled" : "partially_cancelled"
            try await connection.query("""
                UPDATE bookings SET status = \(status), updated_at = now() WHERE event_id = \(eventID) AND id = \(id)
                """)
            guard let updated = try await BookingStore.booking(eventID: eventID, id: id, on: connection) else { return .notFound }
            return .cancelled(updated, freed: try SeatVersion.from(freed))
        }
    }
}

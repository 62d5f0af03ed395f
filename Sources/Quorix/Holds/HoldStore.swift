public import Loop
public import PG
import Crypto

/// A hold as stored. `status` is as the API shows it: an active hold past `expires_at` is
/// `expired` even before any sweeper has touched it (expiry is judged by database time).
public struct HoldRecord: Sendable {
    public let id: Int
    public let eventID: Int
    public let customer: String
    public let apiKeyID: String?
    public let seatIDs: [Int]
    public let status: String
    public let createdAt: String
    public let expiresAt: String
    public let bookingID: Int?
}

/// Hold tokens: `qh_<event id>_<32 random bytes, base64url>`. The event id lets every lookup use
/// the `(event_id, token_hash)` index; only the SHA-256 of the whole token is stored.
public enum HoldToken {
    public static func generate(eventID: Int) -> String {
        "qh_\(eventID)_" + Base64URL.encode(SecureRandom.bytes(32))
    }

    /// The event id inside a well-formed token, else nil (an unknown token is 404).
    public static func eventID(of token: String) -> Int? {
        let parts = token.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "qh", let id = Int(parts[1]), id > 0, parts[2].count == 43 else { return nil }
        return id
    }

    public static func hash(_ token: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(token.utf8)))
    }
}

/// Holds, confirmation and bookings in PostgreSQL.
@LoopActor
public final class HoldStore {
    private let pool: PGPool

    public init(pool: PGPool) {
        self.pool = pool
    }

    /// A seat can be taken when it is free, or held by a hold whose time is up (no sale is lost to
    /// a dead hold, sweeper or not) — unless the event has waiting entries: then the sweeper
    /// offers those seats to the waitlist first.
    static let available = """
        (es.status = 'free' OR (es.status = 'held' AND EXISTS (
            SELECT 1 FROM holds dead WHERE dead.event_id = es.event_id AND dead.id = es.hold_id AND dead.expires_at <= now())
            AND NOT EXISTS (SELECT 1 FROM waitlist_entries w WHERE w.event_id = es.event_id AND w.status = 'waiting')))
        """

    public enum HoldOutcome: Sendable {
        case held(HoldRecord)
        /// Nothing was held; these seats were not available.
        case unavailable(seatIDs: [Int])
    }

    /// Takes every seat or none, in one statement: the hold row and the seat update run as
    /// data-modifying CTEs, and `quorix_require` aborts the statement — and with it both writes —
    /// unless every seat changed. No lock outlives the statement. A loser learns which seats were
    /// not available from the same statement (the refusal names them), so losing costs one
    /// statement and one rolled-back transaction.
    ///
    /// The hold commits without waiting for its WAL to reach disk (`synchronous_commit` off for
    /// this transaction only): a crash may forget holds of the last fraction of a second, which
    /// frees their seats, and never a booking: a confirm commits synchronously, which flushes the
    /// WAL up to it, its hold included.
    ///
    /// `knownTaken` is asked once a connection is free for this hold (after any wait in the
    /// pool's queue, when more may be known): seats it names are refused without a statement.
    public func hold(
        eventID: Int, seatIDs: [Int], customer: String, apiKeyID: String?, tokenHash: [UInt8],
        ttlSeconds: Int, lifetimeSeconds: Int, knownTaken: @LoopActor () -> [Int]? = { nil }
    ) async throws -> HoldOutcome {
        try await pool.withConnection { connection in
            if let known = knownTaken() { return .unavailable(seatIDs: known) }
            return try await hold(
                on: connection, eventID: eventID, seatIDs: seatIDs, customer: customer, apiKeyID: apiKeyID, tokenHash: tokenHash,
                ttlSeconds: ttlSeconds, lifetimeSeconds: lifetimeSeconds)
        }
    }

    private func hold(
        on connection: PGConnection, eventID: Int, seatIDs: [Int], customer: String, apiKeyID: String?, tokenHash: [UInt8],
        ttlSeconds: Int, lifetimeSeconds: Int
    ) async throws -> HoldOutcome {
        do {
            let result = try await connection.query("""
                WITH hold AS (
                    INSERT INTO holds (event_id, token_hash, customer, api_key_id, seat_ids, expires_at, max_expires_at)
                    VALUES (\(eventID), \(PGBytes(tokenHash)), \(customer), \(apiKeyID)::uuid, \(seatIDs)::bigint[],
                            now() + \(ttlSeconds) * interval '1 second', now() + \(lifetimeSeconds) * interval '1 second')
                    RETURNING id, created_at, expires_at
                ), taken AS (
                    UPDATE event_seats es
                    SET status = 'held', hold_id = (SELECT id FROM hold), version = nextval('seat_change_version')
                    WHERE es.event_id = \(eventID) AND es.seat_id = ANY(\(seatIDs)::bigint[]) AND \(unsafeSQL: HoldStore.available)
                    RETURNING es.seat_id
                ), relaxed AS (
                    SELECT set_config('synchronous_commit', 'off', true)
                )
                SELECT id, \(unsafeSQL: SQLTime.rfc3339("created_at")) AS created_at, \(unsafeSQL: SQLTime.rfc3339("expires_at")) AS expires_at
                FROM hold, relaxed
                WHERE quorix_require((SELECT count(*) FROM taken) = \(seatIDs.count),
                    CASE WHEN (SELECT count(*) FROM taken) = \(seatIDs.count) THEN '' ELSE
                    'seats_unavailable:' || (SELECT coalesce(string_agg(wanted::text, ','), '') FROM unnest(\(seatIDs)::bigint[]) wanted
                                             WHERE wanted NOT IN (SELECT seat_id FROM taken)) END)
                """)
            guard let row = result.first else { throw PGError(kind: .decoding, message: "the hold statement returned no row") }
            return .held(HoldRecord(
                id: try row.int("id"), eventID: eventID, customer: customer, apiKeyID: apiKeyID, seatIDs: seatIDs,
                status: "active", createdAt: try row.string("created_at"), expiresAt: try row.string("expires_at"), bookingID: nil))
        } catch let error as PGError where error.sqlState == "QX409" {
            return .unavailable(seatIDs: HoldStore.refusedSeatIDs(error.message))
        }
    }

    /// The seat ids a refused hold names: `seats_unavailable:12,13`.
    nonisolated static func refusedSeatIDs(_ message: String) -> [Int] {
        guard let colon = message.firstIndex(of: ":") else { return [] }
        return message[message.index(after: colon)...].split(separator: ",").compactMap { Int($0) }
    }

    /// An available seat as best available sees it.
    public struct OpenSeat: Sendable, Equatable {
        public let seatID: Int
        public let rowID: Int
        public let rowRank: Int
        public let ordinal: Int

        public init(seatID: Int, rowID: Int, rowRank: Int, ordinal: Int) {
            self.seatID = seatID
            self.rowID = rowID
            self.rowRank = rowRank
            self.ordinal = ordinal
        }
    }

    /// Up to `limit` available seats in best-available order (front rows first, then row, then
    /// seat order), from the row `from` on (inclusive). Free seats come from the partial index
    /// of free seats, read in order and cut at `limit`, so the cost is the page, not the map:
    /// the same on a stadium as on a theatre. Seats of holds whose time is up join them (found
    /// through the event's active holds by expiry: few once the sweeper runs).
    /// `knownNone` is asked once a connection is free: true answers "none" without a statement.
    public func openSeats(
        eventID: Int, category: String?, sectionID: Int?, from: (rank: Int, rowID: Int)?, limit: Int,
        knownNone: @LoopActor () -> Bool = { false }
    ) async throws -> [OpenSeat] {
        let fromRank = from?.rank ?? Int(Int32.min)
        let fromRow = from?.rowID ?? Int.min
        let connection = try await pool.acquire()
        defer { pool.release(connection) }
        if knownNone() { return [] }
        let result = try await connection.query("""
            SELECT seat_id, row_id, row_rank, ordinal FROM (
                (SELECT es.seat_id, es.row_id, es.row_rank, es.ordinal FROM event_seats es
                 WHERE es.event_id = \(eventID) AND es.status = 'free'
                   AND (es.row_rank, es.row_id) >= (\(fromRank)::integer, \(fromRow)::bigint)
                   AND (\(category)::text IS NULL OR es.category = \(category))
                   AND (\(sectionID)::bigint IS NULL OR es.section_id = \(sectionID))
                 ORDER BY es.row_rank, es.row_id, es.ordinal LIMIT \(limit))
                UNION ALL
                (SELECT es.seat_id, es.row_id, es.row_rank, es.ordinal
                 FROM holds dead CROSS JOIN LATERAL unnest(dead.seat_ids) AS dead_seat(id)
                 JOIN event_seats es ON es.event_id = dead.event_id AND es.seat_id = dead_seat.id
                 WHERE dead.event_id = \(eventID) AND dead.status = 'active' AND dead.expires_at <= now()
                   AND es.status = 'held' AND es.hold_id = dead.id
                   AND NOT EXISTS (SELECT 1 FROM waitlist_entries w WHERE w.event_id = dead.event_id AND w.status = 'waiting')
                   AND (es.row_rank, es.row_id) >= (\(fromRank)::integer, \(fromRow)::bigint)
                   AND (\(category)::text IS NULL OR es.category = \(category))
                   AND (\(sectionID)::bigint IS NULL OR es.section_id = \(sectionID)))
            ) open
            ORDER BY row_rank, row_id, ordinal LIMIT \(limit)
            """)
        return try result.rows.map { row in
            OpenSeat(seatID: try row.int("seat_id"), rowID: try row.int("row_id"), rowRank: try row.int("row_rank"), ordinal: try row.int("ordinal"))
        }
    }

    private static let holdColumns = """
        h.id, h.event_id, h.customer, h.api_key_id, array_to_string(h.seat_ids, ',') AS seat_ids,
        CASE WHEN h.status = 'active' AND h.expires_at <= now() THEN 'expired' ELSE h.status END AS status,
        \(SQLTime.rfc3339("h.created_at")) AS created_at, \(SQLTime.rfc3339("h.expires_at")) AS expires_at,
        (SELECT b.id FROM bookings b WHERE b.event_id = h.event_id AND b.hold_id = h.id) AS booking_id
        """

    private static func record(_ row: PGRow) throws -> HoldRecord {
        HoldRecord(
            id: try row.int("id"), eventID: try row.int("event_id"), customer: try row.string("customer"),
            apiKeyID: try row.optionalString("api_key_id"),
            seatIDs: try row.string("seat_ids").split(separator: ",").compactMap { Int($0) },
            status: try row.string("status"), createdAt: try row.string("created_at"), expiresAt: try row.string("expires_at"),
            bookingID: try row.optionalInt("booking_id"))
    }

    public func find(token: String) async throws -> HoldRecord? {
        guard let eventID = HoldToken.eventID(of: token) else { return nil }
        let result = try await pool.query("""
            SELECT \(unsafeSQL: HoldStore.holdColumns) FROM holds h
            WHERE h.event_id = \(eventID) AND h.token_hash = \(PGBytes(HoldToken.hash(token)))
            """)
        return try result.first.map(HoldStore.record)
    }

    public enum ChangeOutcome: Sendable {
        case done(HoldRecord)
        case notFound
        case notActive(status: String)
        case expired
        case beyondLimit
    }

    /// `expires_at = now() + ttl`, unless that passes the hold's limit (then nothing changes).
    public func extend(token: String, ttlSeconds: Int) async throws -> ChangeOutcome {
        guard let eventID = HoldToken.eventID(of: token) else { return .notFound }
        let hash = HoldToken.hash(token)
        let result = try await pool.query("""
            UPDATE holds h SET expires_at = now() + \(ttlSeconds) * interval '1 second'
            WHERE h.event_id = \(eventID) AND h.token_hash = \(PGBytes(hash)) AND h.status = 'active'
              AND h.expires_at > now() AND now() + \(ttlSeconds) * interval '1 second' <= h.max_expires_at
            RETURNING \(unsafeSQL: HoldStore.holdColumns)
            """)
        if let row = result.first { return .done(try HoldStore.record(row)) }
        guard let hold = try await find(token: token) else { return .notFound }
        switch hold.status {
        case "active": return .beyondLimit
        case "expired": return .expired
        default: return .notActive(status: hold.status)
        }
    }

    /// Frees the hold's seats at once and marks it released.
    public func release(token: String) async throws -> ChangeOutcome {
        guard let eventID = HoldToken.eventID(of: token) else { return .notFound }
        let hash = HoldToken.hash(token)
        return try await pool.withTransaction { connection in
            let locked = try await connection.query("""
                SELECT \(unsafeSQL: HoldStore.holdColumns) FROM holds h
                WHERE h.event_id = \(eventID) AND h.token_hash = \(PGBytes(hash)) FOR UPDATE
                """)
            guard let row = locked.first else { return .notFound }
            let hold = try HoldStore.record(row)
            switch hold.status {
            case "active": break
            case "expired": return .expired
            default: return .notActive(status: hold.status)
            }
            try await HoldStore.releaseLocked(eventID: eventID, holdID: hold.id, seatIDs: hold.seatIDs, on: connection)
            return .done(hold)
        }
    }

    /// Inside the caller's transaction, which has locked the active hold: frees the seats still
    /// held by it, marks it released, lets its waitlist entry go if it was an offer, and offers
    /// the freed seats to the waitlist. Shared by release and by leaving the waitlist.
    static func releaseLocked(eventID: Int, holdID: Int, seatIDs: [Int], on connection: PGConnection) async throws {
        try await connection.query("""
            UPDATE event_seats SET status = 'free', hold_id = NULL, version = nextval('seat_change_version')
            WHERE event_id = \(eventID) AND seat_id = ANY(\(seatIDs)::bigint[]) AND hold_id = \(holdID) AND status = 'held'
            """)
        try await connection.query("""
            UPDATE holds SET status = 'released', released_at = now() WHERE event_id = \(eventID) AND id = \(holdID)
            """)
        try await connection.query("""
            UPDATE waitlist_entries SET status = 'left', offer_token = NULL, updated_at = now()
            WHERE event_id = \(eventID) AND offer_hold_id = \(holdID) AND status = 'offered'
            """)
        try await WaitlistStore.promote(eventID: eventID, on: connection)
    }
}

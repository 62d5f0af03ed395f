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
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return "qh_\(eventID)_" + Base64URL.encode(bytes)
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
    /// a dead hold, sweeper or not).
    static let available = """
        (es.status = 'free' OR (es.status = 'held' AND EXISTS (
            SELECT 1 FROM holds dead WHERE dead.event_id = es.event_id AND dead.id = es.hold_id AND dead.expires_at <= now())))
        """

    public enum HoldOutcome: Sendable {
        case held(HoldRecord)
        /// Nothing was held; these seats were not available.
        case unavailable(seatIDs: [Int])
    }

    /// Takes every seat or none, in one statement: the hold row and the seat update run as
    /// data-modifying CTEs, and `quorix_require` aborts the statement — and with it both writes —
    /// unless every seat changed. No lock outlives the statement.
    public func hold(
        eventID: Int, seatIDs: [Int], customer: String, apiKeyID: String?, tokenHash: [UInt8],
        ttlSeconds: Int, lifetimeSeconds: Int
    ) async throws -> HoldOutcome {
        do {
            let result = try await pool.query("""
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
                )
                SELECT id, \(unsafeSQL: SQLTime.rfc3339("created_at")) AS created_at, \(unsafeSQL: SQLTime.rfc3339("expires_at")) AS expires_at
                FROM hold
                WHERE quorix_require((SELECT count(*) FROM taken) = \(seatIDs.count), 'seats_unavailable')
                """)
            guard let row = result.first else { throw PGError(kind: .decoding, message: "the hold statement returned no row") }
            return .held(HoldRecord(
                id: try row.int("id"), eventID: eventID, customer: customer, apiKeyID: apiKeyID, seatIDs: seatIDs,
                status: "active", createdAt: try row.string("created_at"), expiresAt: try row.string("expires_at"), bookingID: nil))
        } catch let error as PGError where error.sqlState == "QX409" {
            // Lost: name the seats that were not available (a read, nothing locked).
            let taken = try await pool.query("""
                SELECT es.seat_id FROM event_seats es
                WHERE es.event_id = \(eventID) AND es.seat_id = ANY(\(seatIDs)::bigint[]) AND NOT \(unsafeSQL: HoldStore.available)
                """)
            return .unavailable(seatIDs: try taken.rows.map { try $0.int("seat_id") })
        }
    }

    public struct Run: Sendable {
        public let rowID: Int
        public let rowRank: Int
        public let firstOrdinal: Int
        public let seatIDs: [Int]
    }

    /// Runs of adjacent available seats (consecutive ordinals in one row) of at least `quantity`,
    /// front rows first.
    public func adjacentRuns(eventID: Int, quantity: Int, category: String?, sectionID: Int?, limit: Int = 20) async throws -> [Run] {
        let result = try await pool.query("""
            WITH open AS (
                SELECT es.seat_id, es.row_id, es.row_rank, es.ordinal,
                       es.ordinal - row_number() OVER (PARTITION BY es.row_id ORDER BY es.ordinal) AS island
                FROM event_seats es
                WHERE es.event_id = \(eventID) AND \(unsafeSQL: HoldStore.available)
                  AND (\(category)::text IS NULL OR es.category = \(category))
                  AND (\(sectionID)::bigint IS NULL OR es.section_id = \(sectionID))
            )
            SELECT row_id, min(row_rank) AS row_rank, min(ordinal) AS first_ordinal,
                   array_to_string(array_agg(seat_id ORDER BY ordinal), ',') AS seats
            FROM open GROUP BY row_id, island HAVING count(*) >= \(quantity)
            ORDER BY min(row_rank), row_id, min(ordinal) LIMIT \(limit)
            """)
        return try result.rows.map { row in
            Run(rowID: try row.int("row_id"), rowRank: try row.int("row_rank"), firstOrdinal: try row.int("first_ordinal"),
                seatIDs: try row.string("seats").split(separator: ",").compactMap { Int($0) })
        }
    }

    /// Any available seats, front rows first (best available with `adjacent: false`).
    public func anySeats(eventID: Int, quantity: Int, category: String?, sectionID: Int?) async throws -> [Int] {
        let result = try await pool.query("""
            SELECT es.seat_id FROM event_seats es
            WHERE es.event_id = \(eventID) AND \(unsafeSQL: HoldStore.available)
              AND (\(category)::text IS NULL OR es.category = \(category))
              AND (\(sectionID)::bigint IS NULL OR es.section_id = \(sectionID))
            ORDER BY es.row_rank, es.row_id, es.ordinal LIMIT \(quantity)
            """)
        return try result.rows.map { try $0.int("seat_id") }
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
            try await connection.query("""
                UPDATE event_seats SET status = 'free', hold_id = NULL, version = nextval('seat_change_version')
                WHERE event_id = \(eventID) AND hold_id = \(hold.id) AND status = 'held'
                """)
            try await connection.query("""
                UPDATE holds SET status = 'released', released_at = now() WHERE event_id = \(eventID) AND id = \(hold.id)
                """)
            return .done(hold)
        }
    }
}

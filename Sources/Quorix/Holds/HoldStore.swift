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
    private var batcher: HoldBatcher!

    /// `concurrentStatements`: hold statements running at once (see `HoldBatcher`).
    public init(pool: PGPool, concurrentStatements: Int) {
        self.pool = pool
        batcher = HoldBatcher(pool: pool, store: self, concurrentStatements: concurrentStatements)
    }

    /// Holds queued for a statement.
    public var waiting: Int { batcher.waiting }

    /// Whether a hold being decided now wants any of these seats (best available tries other
    /// candidates first).
    func isPending(eventID: Int, seatIDs: [Int]) -> Bool {
        batcher.isPending(eventID: eventID, seatIDs: seatIDs)
    }

    /// Hears each hold statement with the number of holds in it (metrics: the mean batch size).
    public var onHoldStatement: ((Int) -> Void)? {
        get { batcher.onStatement }
        set { batcher.onStatement = newValue }
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

    /// One request's hold, as it waits for a statement.
    struct HoldAttempt: Sendable {
        let eventID: Int
        let seatIDs: [Int]
        let customer: String
        let apiKeyID: String?
        let tokenHash: [UInt8]
        let ttlSeconds: Int
        let lifetimeSeconds: Int
    }

    /// Takes every seat or none. Holds that wait for a connection at the same time go into one
    /// statement together (see `HoldBatcher`); each is still all or nothing on its own.
    ///
    /// `knownTaken` is asked once a connection is free for this hold (after any wait, when more
    /// may be known): seats it names are refused without a statement. `report` hears the outcome
    /// before the caller resumes, so the holds queued behind it are judged knowing it.
    func hold(
        _ attempt: HoldAttempt, knownTaken: @escaping @LoopActor () -> [Int]? = { nil },
        report: @escaping @LoopActor (HoldOutcome) -> Void = { _ in }
    ) async throws -> HoldOutcome {
        try await batcher.hold(attempt, knownTaken: knownTaken, report: report)
    }

    /// A hold alone, in one statement: the hold row and the seat update run as data-modifying
    /// CTEs, and `quorix_require` aborts the statement — and with it both writes — unless every
    /// seat changed. No lock outlives the statement. A loser learns which seats were not
    /// available from the same statement (the refusal names them), so losing costs one
    /// statement and one rolled-back transaction.
    ///
    /// The hold commits without waiting for its WAL to reach disk (`synchronous_commit` off for
    /// this transaction only): a crash may forget holds of the last fraction of a second, which
    /// frees their seats, and never a booking: a confirm commits synchronously, which flushes the
    /// WAL up to it, its hold included.
    func holdAlone(_ attempt: HoldAttempt, on connection: PGConnection) async throws -> HoldOutcome {
        let eventID = attempt.eventID, seatIDs = attempt.seatIDs
        do {
            let result = try await connection.query("""
                WITH hold AS (
                    INSERT INTO holds (event_id, token_hash, customer, api_key_id, seat_ids, expires_at, max_expires_at)
                    VALUES (\(eventID), \(PGBytes(attempt.tokenHash)), \(attempt.customer), \(attempt.apiKeyID)::uuid, \(seatIDs)::bigint[],
                            now() + \(attempt.ttlSeconds) * interval '1 second', now() + \(attempt.lifetimeSeconds) * interval '1 second')
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
            return .held(try HoldStore.heldRecord(attempt, row))
        } catch let error as PGError where error.sqlState == "QX409" {
            return .unavailable(seatIDs: HoldStore.refusedSeatIDs(error.message))
        }
    }

    /// Several holds with no seat in common (of one event or several), in one statement and one
    /// transaction: one commit and one announcement for all of them. The seats still available
    /// are locked in (event, seat) order — the order the one-hold statement's index scan takes
    /// them in, so the two cannot deadlock — a hold row is inserted for each request whose seats
    /// are all among them, and only those seats change. A request with a seat not available gets
    /// its refusal from the same rows. Commits asynchronously, like `holdAlone`.
    func holdTogether(_ attempts: [HoldAttempt], on connection: PGConnection) async throws -> [HoldOutcome] {
        var owners: [Int] = [], events: [Int] = [], seats: [Int] = []
        for (n, attempt) in attempts.enumerated() {
            owners += Array(repeating: n + 1, count: attempt.seatIDs.count)
            events += Array(repeating: attempt.eventID, count: attempt.seatIDs.count)
            seats += attempt.seatIDs
        }
        let result = try await connection.query("""
            WITH wanted AS MATERIALIZED (
                SELECT w.n, w.event_id, w.seat_id, w.ord
                FROM unnest(\(owners)::int[], \(events)::bigint[], \(seats)::bigint[]) WITH ORDINALITY AS w(n, event_id, seat_id, ord)
            ), available AS MATERIALIZED (
                SELECT es.event_id, es.seat_id FROM wanted w
                JOIN event_seats es ON es.event_id = w.event_id AND es.seat_id = w.seat_id
                WHERE \(unsafeSQL: HoldStore.available)
                ORDER BY es.event_id, es.seat_id
                FOR UPDATE OF es
            ), winner AS MATERIALIZED (
                SELECT w.n, array_agg(w.seat_id ORDER BY w.ord) AS seat_ids FROM wanted w
                GROUP BY w.n HAVING bool_and((w.event_id, w.seat_id) IN (SELECT event_id, seat_id FROM available))
            ), request AS MATERIALIZED (
                SELECT * FROM unnest(\(attempts.map(\.eventID))::bigint[], \(attempts.map { PGBytes($0.tokenHash) })::bytea[],
                                     \(attempts.map(\.customer))::text[], \(attempts.map { $0.apiKeyID ?? "" })::text[],
                                     \(attempts.map(\.ttlSeconds))::int[], \(attempts.map(\.lifetimeSeconds))::int[])
                    WITH ORDINALITY AS r(event_id, token_hash, customer, api_key_id, ttl, lifetime, n)
            ), hold AS (
                INSERT INTO holds (event_id, token_hash, customer, api_key_id, seat_ids, expires_at, max_expires_at)
                SELECT r.event_id, r.token_hash, r.customer, nullif(r.api_key_id, '')::uuid, winner.seat_ids,
                       now() + r.ttl * interval '1 second', now() + r.lifetime * interval '1 second'
                FROM request r JOIN winner ON winner.n = r.n
                RETURNING id, event_id, token_hash, seat_ids, created_at, expires_at
            ), taken AS (
                UPDATE event_seats es SET status = 'held', hold_id = hold.id, version = nextval('seat_change_version')
                FROM hold CROSS JOIN LATERAL unnest(hold.seat_ids) AS held(seat_id)
                WHERE es.event_id = hold.event_id AND es.seat_id = held.seat_id
                RETURNING es.seat_id
            ), relaxed AS (
                SELECT set_config('synchronous_commit', 'off', true)
            )
            SELECT r.n, hold.id, \(unsafeSQL: SQLTime.rfc3339("hold.created_at")) AS created_at,
                   \(unsafeSQL: SQLTime.rfc3339("hold.expires_at")) AS expires_at,
                   CASE WHEN hold.id IS NULL THEN (SELECT string_agg(w.seat_id::text, ',' ORDER BY w.ord) FROM wanted w
                        WHERE w.n = r.n AND (w.event_id, w.seat_id) NOT IN (SELECT event_id, seat_id FROM available)) END AS refused
            FROM request r LEFT JOIN hold ON hold.token_hash = r.token_hash, relaxed
            WHERE quorix_require((SELECT count(*) FROM taken) = (SELECT coalesce(sum(cardinality(seat_ids)), 0) FROM hold),
                                 'held seats changed under the statement')
            ORDER BY r.n
            """)
        guard result.rows.count == attempts.count else {
            throw PGError(kind: .decoding, message: "the batched hold statement returned \(result.rows.count) rows for \(attempts.count) holds")
        }
        return try zip(attempts, result.rows).map { attempt, row in
            if try row.optionalInt("id") == nil {
                return .unavailable(seatIDs: try row.string("refused").split(separator: ",").compactMap { Int($0) })
            }
            return .held(try HoldStore.heldRecord(attempt, row))
        }
    }

    private static func heldRecord(_ attempt: HoldAttempt, _ row: PGRow) throws -> HoldRecord {
        HoldRecord(
            id: try row.int("id"), eventID: attempt.eventID, customer: attempt.customer, apiKeyID: attempt.apiKeyID,
            seatIDs: attempt.seatIDs, status: "active", createdAt: try row.string("created_at"),
            expiresAt: try row.string("expires_at"), bookingID: nil)
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
    ///
    /// With `shared`, a read for the same filter and page already in flight is joined instead of
    /// repeated (when sales open, a thousand best-available requests arrive before the first
    /// answers): `shared` is the snapshot's count of freed seats, so a request never joins a read
    /// begun before a seat it could see was freed.
    func openSeats(
        eventID: Int, filter: BestAvailableFilter, from: (rank: Int, rowID: Int)?, limit: Int,
        shared generation: Int? = nil, knownNone: @escaping @LoopActor () -> Bool = { false }
    ) async throws -> [OpenSeat] {
        guard let generation else {
            return try await readOpenSeats(eventID: eventID, filter: filter, from: from, limit: limit, knownNone: knownNone)
        }
        let key = OpenSeatsRead(eventID: eventID, filter: filter, fromRank: from?.rank, fromRowID: from?.rowID, limit: limit, freeGeneration: generation)
        return try await sharedOpenSeatReads.value(for: key) {
            try await readOpenSeats(eventID: eventID, filter: filter, from: from, limit: limit, knownNone: knownNone)
        } ?? []
    }

    private struct OpenSeatsRead: Hashable, Sendable {
        let eventID: Int
        let filter: BestAvailableFilter
        let fromRank: Int?
        let fromRowID: Int?
        let limit: Int
        let freeGeneration: Int
    }

    private let sharedOpenSeatReads = CoalescingCache<OpenSeatsRead, [OpenSeat]>(maxAgeMilliseconds: nil, keepsValues: false)

    private func readOpenSeats(
        eventID: Int, filter: BestAvailableFilter, from: (rank: Int, rowID: Int)?, limit: Int, knownNone: @LoopActor () -> Bool
    ) async throws -> [OpenSeat] {
        let category = filter.category
        let sectionID = filter.sectionID
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
        /// With the versions the change gave the seats it freed (a release).
        case done(HoldRecord, freed: [SeatVersion])
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
        if let row = result.first { return .done(try HoldStore.record(row), freed: []) }
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
            let freed = try await HoldStore.releaseLocked(eventID: eventID, holdID: hold.id, seatIDs: hold.seatIDs, on: connection)
            return .done(hold, freed: freed)
        }
    }

    /// Inside the caller's transaction, which has locked the active hold: frees the seats still
    /// held by it, marks it released, lets its waitlist entry go if it was an offer, and offers
    /// the freed seats to the waitlist. Shared by release and by leaving the waitlist.
    static func releaseLocked(eventID: Int, holdID: Int, seatIDs: [Int], on connection: PGConnection) async throws -> [SeatVersion] {
        let freed = try await connection.query("""
            UPDATE event_seats SET status = 'free', hold_id = NULL, version = nextval('seat_change_version')
            WHERE event_id = \(eventID) AND seat_id = ANY(\(seatIDs)::bigint[]) AND hold_id = \(holdID) AND status = 'held'
            RETURNING seat_id, version
            """)
        try await connection.query("""
            UPDATE holds SET status = 'released', released_at = now() WHERE event_id = \(eventID) AND id = \(holdID)
            """)
        try await connection.query("""
            UPDATE waitlist_entries SET status = 'left', offer_token = NULL, updated_at = now()
            WHERE event_id = \(eventID) AND offer_hold_id = \(holdID) AND status = 'offered'
            """)
        try await WaitlistStore.promote(eventID: eventID, on: connection)
        return try SeatVersion.from(freed)
    }
}

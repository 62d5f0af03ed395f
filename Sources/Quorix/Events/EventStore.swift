public import Loop
public import PG

/// Seat counts by status.
public struct SeatCounts: Sendable, Equatable {
    public var free = 0, held = 0, booked = 0, blocked = 0

    public var json: JSONValue {
        .object([("free", .int(free)), ("held", .int(held)), ("booked", .int(booked)), ("blocked", .int(blocked))])
    }

    mutating func add(status: String, count: Int) {
        switch status {
        case "free": free += count
        case "held": held += count
        case "booked": booked += count
        case "blocked": blocked += count
        default: break
        }
    }
}

/// An event as stored.
public struct Event: Sendable {
    public let id: Int
    public let seatmapID: Int
    public let ownerKeyID: String?
    public var name: String
    public var startsAt: Timestamp
    /// Category key → price in cents, in the order given.
    public var prices: [(String, Int)]
    public var holdTTLSeconds: Int
    public var maxSeatsPerHold: Int
    public var waitlistOfferTTLSeconds: Int
    public let createdAt: String
    public let updatedAt: String

    public func json(counts: SeatCounts) -> JSONValue {
        .object([
            ("id", .int(id)), ("name", .string(name)), ("seatmap_id", .int(seatmapID)),
            ("starts_at", .string(startsAt.rfc3339)),
            ("prices", .object(prices.map { ($0.0, .int($0.1)) })),
            ("hold_ttl_seconds", .int(holdTTLSeconds)), ("max_seats_per_hold", .int(maxSeatsPerHold)),
            ("waitlist_offer_ttl_seconds", .int(waitlistOfferTTLSeconds)),
            ("counts", counts.json), ("created_at", .string(createdAt)), ("updated_at", .string(updatedAt)),
        ])
    }
}

/// Events and their seat inventory (`event_seats`).
@LoopActor
public final class EventStore {
    private let pool: PGPool

    public init(pool: PGPool) {
        self.pool = pool
    }

    private static let columns = """
        id, seatmap_id, owner_key_id, name, (extract(epoch FROM starts_at) * 1000)::bigint AS starts_at_ms,
        prices::text AS prices, hold_ttl_seconds, max_seats_per_hold, waitlist_offer_ttl_seconds,
        \(SQLTime.rfc3339("created_at")) AS created_at, \(SQLTime.rfc3339("updated_at")) AS updated_at
        """

    private static func event(from row: PGRow) throws -> Event {
        let prices = try JSONParser.parse(Array(try row.string("prices").utf8))
        var pairs: [(String, Int)] = []
        if case .object(let members) = prices {
            for (key, value) in members {
                if case .number(let number) = value, let cents = number.integer { pairs.append((key, Int(cents))) }
            }
        }
        return Event(
            id: try row.int("id"), seatmapID: try row.int("seatmap_id"), ownerKeyID: try row.optionalString("owner_key_id"),
            name: try row.string("name"), startsAt: Timestamp(millisecondsSinceEpoch: Int64(try row.int("starts_at_ms"))),
            prices: pairs, holdTTLSeconds: try row.int("hold_ttl_seconds"), maxSeatsPerHold: try row.int("max_seats_per_hold"),
            waitlistOfferTTLSeconds: try row.int("waitlist_offer_ttl_seconds"),
            createdAt: try row.string("created_at"), updatedAt: try row.string("updated_at"))
    }

    private static func pricesJSON(_ prices: [(String, Int)]) -> String {
        JSONWriter.string(.object(prices.map { ($0.0, .int($0.1)) }))
    }

    /// Creates the event and every seat's inventory row (`free`) in one transaction, then
    /// refreshes the planner's statistics so that holds on the new event use the
    /// `(event_id, seat_id)` index instead of scanning the event.
    public func create(_ draft: Event, ownerKeyID: String?) async throws -> Event {
        let event = try await pool.withTransaction { connection in
            let inserted = try await connection.query("""
                INSERT INTO events (seatmap_id, owner_key_id, name, starts_at, prices, hold_ttl_seconds,
                                    max_seats_per_hold, waitlist_offer_ttl_seconds)
                VALUES (\(draft.seatmapID), \(ownerKeyID)::uuid, \(draft.name),
                        to_timestamp(\(draft.startsAt.millisecondsSinceEpoch)::double precision / 1000),
                        \(EventStore.pricesJSON(draft.prices))::jsonb, \(draft.holdTTLSeconds), \(draft.maxSeatsPerHold),
                        \(draft.waitlistOfferTTLSeconds))
                RETURNING \(unsafeSQL: EventStore.columns)
                """)
            guard let row = inserted.first else { throw PGError(kind: .decoding, message: "INSERT returned no row") }
            let event = try EventStore.event(from: row)
            try await connection.query("""
                INSERT INTO event_seats (event_id, seat_id, section_id, row_id, row_rank, ordinal, category)
                SELECT \(event.id), s.id, s.section_id, s.row_id, r.rank, s.ordinal, s.category
                FROM seats s JOIN seat_rows r ON r.id = s.row_id
                WHERE s.seatmap_id = \(event.seatmapID)
                """)
            return event
        }
        // The event is committed: a failed ANALYZE must not turn its creation into an error the
        // client would retry (and so create the event twice). It is reported to the caller.
        do {
            try await pool.query("ANALYZE event_seats")
        } catch {
            statisticsFailure?(error)
        }
        return event
    }

    /// Told when refreshing statistics after creating an event failed (the event exists).
    public var statisticsFailure: ((PGError) -> Void)?

    /// Events as read at most a second ago, for the hot paths (holds, seat status): a hold must
    /// not pay a round trip for settings that change only by PATCH. This process's PATCHes
    /// refresh it at once; another process's are seen within the second.
    private let recent = CoalescingCache<Int, Event>(maxAgeMilliseconds: 1_000)

    /// The event as stored now.
    public func event(id: Int) async throws -> Event? {
        let result = try await pool.query("SELECT \(unsafeSQL: EventStore.columns) FROM events WHERE id = \(id)")
        let event = try result.first.map(EventStore.event(from:))
        if let event { recent.store(event, for: id) }
        return event
    }

    /// The event as read at most a second ago (see `recent`).
    public func recentEvent(id: Int) async throws -> Event? {
        try await recent.value(for: id) { try await event(id: id) }
    }

    public func list(afterID: Int, limit: Int) async throws -> [Event] {
        let result = try await pool.query("""
            SELECT \(unsafeSQL: EventStore.columns) FROM events WHERE id > \(afterID) ORDER BY id LIMIT \(limit)
            """)
        return try result.rows.map(EventStore.event(from:))
    }

    public func counts(eventIDs: [Int]) async throws -> [Int: SeatCounts] {
        guard !eventIDs.isEmpty else { return [:] }
        let result = try await pool.query("""
            SELECT event_id, status, count(*) AS n FROM event_seats
            WHERE event_id = ANY(\(eventIDs)::bigint[]) GROUP BY event_id, status
            """)
        var counts: [Int: SeatCounts] = [:]
        for id in eventIDs { counts[id] = SeatCounts() }
        for row in result.rows {
            counts[try row.int("event_id"), default: SeatCounts()].add(status: try row.string("status"), count: try row.int("n"))
        }
        return counts
    }

    /// Writes the fields named in `fields` (API names; nil: all of them) and leaves the others as
    /// they are in the row, so that concurrent PATCHes of different fields do not undo each other
    /// by writing back what they read.
    public func update(_ event: Event, fields: Set<String>? = nil) async throws -> Event? {
        func sets(_ field: String) -> Bool { fields?.contains(field) ?? true }
        let result = try await pool.query("""
            UPDATE events SET
                name = CASE WHEN \(sets("name"))::boolean THEN \(event.name)::text ELSE name END,
                starts_at = CASE WHEN \(sets("starts_at"))::boolean
                    THEN to_timestamp(\(event.startsAt.millisecondsSinceEpoch)::double precision / 1000) ELSE starts_at END,
                prices = CASE WHEN \(sets("prices"))::boolean THEN \(EventStore.pricesJSON(event.prices))::jsonb ELSE prices END,
                hold_ttl_seconds = CASE WHEN \(sets("hold_ttl_seconds"))::boolean
                    THEN \(event.holdTTLSeconds)::integer ELSE hold_ttl_seconds END,
                max_seats_per_hold = CASE WHEN \(sets("max_seats_per_hold"))::boolean
                    THEN \(event.maxSeatsPerHold)::integer ELSE max_seats_per_hold END,
                waitlist_offer_ttl_seconds = CASE WHEN \(sets("waitlist_offer_ttl_seconds"))::boolean
                    THEN \(event.waitlistOfferTTLSeconds)::integer ELSE waitlist_offer_ttl_seconds END,
                updated_at = now()
            WHERE id = \(event.id)
            RETURNING \(unsafeSQL: EventStore.columns)
            """)
        let updated = try result.first.map(EventStore.event(from:))
        if let updated { recent.store(updated, for: updated.id) }
        return updated
    }

    /// The event's seat version: the sum of its seats' versions. Every change gives the changed
    /// seats new values from one sequence, each larger than the value it replaces, so the sum
    /// grows with every committed change whatever order concurrent transactions commit in (a
    /// per-event counter row would serialise every hold on the event behind one row lock).
    public func version(eventID: Int, on connection: PGConnection? = nil) async throws -> Int64 {
        let query: PGQuery = "SELECT coalesce(sum(version), 0)::bigint AS version FROM event_seats WHERE event_id = \(eventID)"
        let result = if let connection { try await connection.query(query) } else { try await pool.query(query) }
        return Int64(try result.first?.int("version") ?? 0)
    }

    /// Every seat's status, and the version they belong to, read in one statement.
    public func statuses(eventID: Int) async throws -> (version: Int64, seats: [(seatID: Int, status: String)]) {
        let result = try await pool.query("SELECT seat_id, status, version FROM event_seats WHERE event_id = \(eventID)")
        var version: Int64 = 0
        var seats: [(seatID: Int, status: String)] = []
        seats.reserveCapacity(result.count)
        for row in result.rows {
            seats.append((try row.int("seat_id"), try row.string("status")))
            version += Int64(try row.int("version"))
        }
        return (version, seats)
    }

    public enum SeatChange: Sendable {
        case block, unblock

        var from: String { self == .block ? "free" : "blocked" }
        var to: String { self == .block ? "blocked" : "free" }
    }

    public enum ChangeOutcome: Sendable {
        /// The event's version after it, and the versions the change gave the seats.
        case changed(version: Int64, seats: [SeatVersion])
        /// Nothing changed: these seats were not in the state the change needs.
        case refused(seatIDs: [Int])
    }

    /// Blocks or unblocks all of `seatIDs`, or none: one statement flips the seats still in the
    /// required state; if any was not, the transaction rolls back and the others are named.
    public func change(_ change: SeatChange, eventID: Int, seatIDs: [Int]) async throws -> ChangeOutcome {
        do {
            return try await pool.withTransaction { connection in
                let changed = try await connection.query("""
                    UPDATE event_seats SET status = \(change.to), version = nextval('seat_change_version')
                    WHERE event_id = \(eventID) AND seat_id = ANY(\(seatIDs)::bigint[]) AND status = \(change.from)
                    RETURNING seat_id, version
                    """)
                if changed.count < seatIDs.count {
                    let flipped = Set(try changed.rows.map { try $0.int("seat_id") })
                    throw Refusal(seatIDs: seatIDs.filter { !flipped.contains($0) })
                }
                if change == .unblock { try await WaitlistStore.promote(eventID: eventID, on: connection) }
                return .changed(version: try await version(eventID: eventID, on: connection), seats: try SeatVersion.from(changed))
            }
        } catch let refusal as Refusal {
            return .refused(seatIDs: refusal.seatIDs)
        }
    }

    private struct Refusal: Error {
        let seatIDs: [Int]
    }
}

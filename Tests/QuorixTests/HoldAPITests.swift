import Foundation
import PG
import Quorix
import QuorixTestSupport
import Testing

/// A hold request `POST /v1/events/{id}/holds` must refuse with 422, and the detail path it must name.
struct RefusedHold: Sendable, CustomTestStringConvertible {
    let label: String
    /// The body; the event allows 600 s holds of at most 4 seats.
    let body: String
    /// Detail paths, any of which the answer may name (a path or a prefix of one).
    let paths: [String]

    var testDescription: String { label }

    static let all: [RefusedHold] = [
        RefusedHold(label: "unknown row", body: #"{"customer": "u-1", "seats": ["STALLS-A-1", "STALLS-Z-1"]}"#, paths: ["seats"]),
        RefusedHold(label: "unknown section", body: #"{"customer": "u-1", "seats": ["NOPE-A-1"]}"#, paths: ["seats"]),
        RefusedHold(label: "unknown seat number", body: #"{"customer": "u-1", "seats": ["STALLS-A-33"]}"#, paths: ["seats"]),
        RefusedHold(label: "not a label", body: #"{"customer": "u-1", "seats": ["STALLS"]}"#, paths: ["seats"]),
        RefusedHold(label: "lower-case label", body: #"{"customer": "u-1", "seats": ["stalls-a-1"]}"#, paths: ["seats"]),
        RefusedHold(label: "duplicate seat", body: #"{"customer": "u-1", "seats": ["STALLS-A-1", "STALLS-A-2", "STALLS-A-1"]}"#, paths: ["seats"]),
        RefusedHold(label: "zero seats", body: #"{"customer": "u-1", "seats": []}"#, paths: ["seats"]),
        RefusedHold(
            label: "more than max_seats_per_hold",
            body: #"{"customer": "u-1", "seats": ["STALLS-A-1", "STALLS-A-2", "STALLS-A-3", "STALLS-A-4", "STALLS-A-5"]}"#, paths: ["seats"]),
        RefusedHold(label: "ttl_seconds 0", body: #"{"customer": "u-1", "seats": ["STALLS-A-1"], "ttl_seconds": 0}"#, paths: ["ttl_seconds"]),
        RefusedHold(label: "ttl_seconds -5", body: #"{"customer": "u-1", "seats": ["STALLS-A-1"], "ttl_seconds": -5}"#, paths: ["ttl_seconds"]),
        RefusedHold(
            label: "ttl_seconds above the event's hold_ttl_seconds",
            body: #"{"customer": "u-1", "seats": ["STALLS-A-1"], "ttl_seconds": 601}"#, paths: ["ttl_seconds"]),
        RefusedHold(label: "no customer", body: #"{"seats": ["STALLS-A-1"]}"#, paths: ["customer"]),
        RefusedHold(label: "empty customer", body: #"{"customer": "", "seats": ["STALLS-A-1"]}"#, paths: ["customer"]),
        RefusedHold(
            label: "customer of 129 characters",
            body: #"{"customer": "\#(String(repeating: "c", count: 129))", "seats": ["STALLS-A-1"]}"#, paths: ["customer"]),
        RefusedHold(label: "neither seats nor best_available", body: #"{"customer": "u-1"}"#, paths: ["seats", "best_available"]),
        RefusedHold(
            label: "both seats and best_available",
            body: #"{"customer": "u-1", "seats": ["STALLS-A-1"], "best_available": {"quantity": 1}}"#, paths: ["seats", "best_available"]),
        RefusedHold(label: "best_available quantity 0", body: #"{"customer": "u-1", "best_available": {"quantity": 0}}"#, paths: ["best_available"]),
        RefusedHold(label: "best_available without quantity", body: #"{"customer": "u-1", "best_available": {}}"#, paths: ["best_available"]),
        RefusedHold(
            label: "best_available over max_seats_per_hold", body: #"{"customer": "u-1", "best_available": {"quantity": 5}}"#,
            paths: ["best_available"]),
        RefusedHold(
            label: "best_available unknown category",
            body: #"{"customer": "u-1", "best_available": {"quantity": 2, "category": "vip"}}"#, paths: ["best_available"]),
        RefusedHold(
            label: "best_available unknown section",
            body: #"{"customer": "u-1", "best_available": {"quantity": 2, "section": "NOPE"}}"#, paths: ["best_available"]),
    ]
}

@Suite struct HoldAPITests {
    // MARK: - Explicit holds

    @Test func explicitHoldTakesTheSeats() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let before = try sale.seatStatus(id)
        #expect(before.seats.values.allSatisfy { $0 == "free" })
        let etag = try sale.send("GET", "/v1/events/\(id)/seats", key: nil).header("ETag")

        let response = try sale.hold(id, seats: ["STALLS-A-1", "STALLS-A-2"], customer: "u-42")
        #expect(response.status == 201, "\(response)")
        #expect(response.header("Content-Type")?.hasPrefix("application/json") == true)
        let hold = try sale.parseHold(response)
        #expect(hold.json["id"]?.catalogInt == hold.id, "id and hold_id differ: \(response)")
        #expect(hold.eventID == id)
        #expect(hold.customer == "u-42")
        #expect(Set(hold.seats) == ["STALLS-A-1", "STALLS-A-2"] && hold.seats.count == 2, "\(response)")
        #expect(hold.json["status"]?.catalogString == "active", "\(response)")
        #expect(isContractTime(hold.expiresAt), "expires_at \(hold.expiresAt)")
        // expires_at = now + the event's hold_ttl_seconds (600 by default), in database time.
        let remaining = try #require(try await sale.server.sql(
            "SELECT extract(epoch FROM (\(hold.expiresAt)::timestamptz - now()))::float8 AS d").first).double("d")
        #expect(remaining > 590 && remaining <= 600.5, "expires in \(remaining) s")

        // The seats are held: seat status, counts, a new version.
        let after = try sale.seatStatus(id)
        #expect(after.seats["STALLS-A-1"] == "held" && after.seats["STALLS-A-2"] == "held")
        #expect(after.seats["STALLS-A-3"] == "free")
        #expect(after.seats.values.filter { $0 == "held" }.count == 2)
        #expect(after.version > before.version, "version \(before.version) → \(after.version)")
        if let etag {
            let revalidated = try sale.send("GET", "/v1/events/\(id)/seats", key: nil, headers: [("If-None-Match", etag)])
            #expect(revalidated.status == 200, "a hold left the seat status ETag unchanged: \(revalidated)")
        }
        let counts = try sale.eventCounts(id)
        #expect(counts == ["free": SampleMaps.theatre.seats - 2, "held": 2, "booked": 0, "blocked": 0], "\(counts)")

        // Stored: the hold row, its seats pointing at it, the token only as its SHA-256.
        let row = try #require(try await sale.server.sql("""
            SELECT status, customer, cardinality(seat_ids) AS seats,
                   encode(token_hash, 'hex') = encode(sha256(convert_to(\(hold.token), 'UTF8')), 'hex') AS hashed,
                   encode(token_hash, 'hex') <> \(hold.token) AND token_hash <> convert_to(\(hold.token), 'UTF8') AS not_plain,
                   strpos(h::text, \(hold.token)) = 0 AS token_absent
            FROM holds h WHERE event_id = \(id) AND id = \(hold.id)
            """).first, "no holds row \(hold.id)")
        #expect(try row.string("status") == "active")
        #expect(try row.string("customer") == "u-42")
        #expect(try row.int("seats") == 2)
        #expect(try row.bool("hashed"), "token_hash is not the SHA-256 of the token")
        #expect(try row.bool("not_plain"))
        #expect(try row.bool("token_absent"), "the token is stored in the holds row")
        let pointing = try await sale.server.sqlInt("""
            SELECT count(*) AS n FROM event_seats e JOIN seats s ON s.id = e.seat_id
            WHERE e.event_id = \(id) AND e.status = 'held' AND e.hold_id = \(hold.id) AND s.label IN ('STALLS-A-1', 'STALLS-A-2')
            """)
        #expect(pointing == 2)

        // Read back with the token.
        let read = try sale.getHold(hold.token)
        #expect(read.status == 200, "\(read)")
        let json = try read.json()
        #expect(json["hold_id"]?.catalogInt == hold.id)
        #expect(json["id"]?.catalogInt == hold.id)
        #expect(json["event_id"]?.catalogInt == id)
        #expect(json["customer"]?.catalogString == "u-42")
        #expect(json["status"]?.catalogString == "active")
        #expect(json["expires_at"]?.catalogString == hold.expiresAt)
        #expect(Set(json["seats"]?.catalogArray?.compactMap(\.catalogString) ?? []) == Set(hold.seats))
        // Whoever has the token may read the hold, with a client key; not without a key.
        #expect(try sale.getHold(hold.token, key: sale.otherClient).status == 200)
        expectError(try sale.send("GET", "/v1/holds/\(pathSegment(hold.token))", key: nil), status: 401)

        // The token is a secret: not in the server's log.
        #expect(!sale.server.logLines.contains { $0.contains(hold.token) }, "the hold token was logged")
        try await sale.expectConsistent(id)
    }

    @Test func shorterTTLIsHonoured() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent(holdTTL: 120)
        let hold = try sale.requireHold(id, seats: ["CIRCLE-A-1"], ttl: 30)
        let remaining = try #require(try await sale.server.sql(
            "SELECT extract(epoch FROM (expires_at - now()))::float8 AS d FROM holds WHERE event_id = \(id) AND id = \(hold.id)").first).double("d")
        #expect(remaining > 25 && remaining <= 30.5, "expires in \(remaining) s")
        // Compared in one statement: the answer is the stored value, to the millisecond.
        let difference = try #require(try await sale.server.sql("""
            SELECT extract(epoch FROM (expires_at - \(hold.expiresAt)::timestamptz))::float8 AS d
            FROM holds WHERE event_id = \(id) AND id = \(hold.id)
            """).first).double("d")
        #expect(abs(difference) < 0.001, "the answer's expires_at is not the stored one")
        // The event's own TTL is allowed; default is the event's TTL.
        #expect(try sale.hold(id, seats: ["CIRCLE-A-2"], ttl: 120).status == 201)
        let plain = try sale.requireHold(id, seats: ["CIRCLE-A-3"])
        let plainRemaining = try #require(try await sale.server.sql(
            "SELECT extract(epoch FROM (\(plain.expiresAt)::timestamptz - now()))::float8 AS d").first).double("d")
        #expect(plainRemaining > 110 && plainRemaining <= 120.5, "expires in \(plainRemaining) s")
    }

    @Test func holdIsAllOrNothing() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let first = try sale.requireHold(id, seats: ["STALLS-B-3"])
        let version = try sale.seatStatus(id).version

        let refused = try sale.hold(id, seats: ["STALLS-B-2", "STALLS-B-3", "STALLS-B-4"], customer: "u-7")
        expectError(refused, status: 409, code: "seats_unavailable")
        #expect(errorSeats(refused) == ["STALLS-B-3"], "\(refused)")
        let statuses = try await sale.storedStatuses(id, ["STALLS-B-2", "STALLS-B-3", "STALLS-B-4"])
        #expect(statuses == ["STALLS-B-2": "free", "STALLS-B-3": "held", "STALLS-B-4": "free"])
        #expect(try await sale.liveHoldCount(id) == 1, "a refused request left a hold")
        #expect(try await sale.server.sqlInt("SELECT count(*) AS n FROM holds WHERE event_id = \(id) AND status = 'active'") == 1)
        #expect(try sale.seatStatus(id).version == version, "a refused hold changed the version")
        #expect(try sale.eventCounts(id)["held"] == 1)

        // Blocked, booked and held seats are all "not free"; the free one beside them stays free.
        try sale.block(id, ["STALLS-B-10"])
        let booking = try sale.book(id, seats: ["STALLS-B-11"])
        #expect(booking.seats == ["STALLS-B-11"])
        _ = try sale.requireHold(id, seats: ["STALLS-B-12"])
        let mixed = try sale.hold(id, seats: ["STALLS-B-13", "STALLS-B-12", "STALLS-B-11", "STALLS-B-10"])
        expectError(mixed, status: 409, code: "seats_unavailable")
        #expect(Set(errorSeats(mixed) ?? []) == ["STALLS-B-10", "STALLS-B-11", "STALLS-B-12"], "\(mixed)")
        #expect((errorSeats(mixed) ?? []).count == 3, "\(mixed)")
        #expect(try await sale.storedStatuses(id, ["STALLS-B-13"]) == ["STALLS-B-13": "free"])

        // Each of them alone.
        let blocked = try sale.hold(id, seats: ["STALLS-B-10"])
        expectError(blocked, status: 409, code: "seats_unavailable")
        #expect(errorSeats(blocked) == ["STALLS-B-10"])
        let booked = try sale.hold(id, seats: ["STALLS-B-11"])
        expectError(booked, status: 409, code: "seats_unavailable")
        #expect(errorSeats(booked) == ["STALLS-B-11"])
        let held = try sale.hold(id, seats: [first.seats[0]], customer: "u-42")
        expectError(held, status: 409, code: "seats_unavailable")
        #expect(errorSeats(held) == ["STALLS-B-3"])

        #expect(try await sale.liveHoldCount(id) == 2)
        let counts = try sale.eventCounts(id)
        #expect(counts == ["free": SampleMaps.theatre.seats - 4, "held": 2, "booked": 1, "blocked": 1], "\(counts)")
        try await sale.expectConsistent(id)
    }

    @Test(arguments: RefusedHold.all)
    func invalidHoldIs422(_ refused: RefusedHold) async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent(maxSeatsPerHold: 4)
        let response = try sale.send("POST", "/v1/events/\(id)/holds", key: sale.client, json: refused.body)
        expectValidation(response, paths: refused.paths)
        #expect(try await sale.server.sqlInt("SELECT count(*) AS n FROM holds WHERE event_id = \(id)") == 0)
        #expect(try sale.eventCounts(id)["free"] == SampleMaps.theatre.seats)
    }

    @Test func maxSeatsPerHoldIsInclusive() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent(maxSeatsPerHold: 4)
        let hold = try sale.requireHold(id, seats: ["STALLS-A-1", "STALLS-A-2", "STALLS-A-3", "STALLS-A-4"])
        #expect(hold.seats.count == 4)
        let best = try sale.holdBest(id, quantity: 4)
        #expect(best.status == 201, "\(best)")
        // 128 characters is a valid customer.
        let long = String(repeating: "c", count: 128)
        let response = try sale.hold(id, seats: ["CIRCLE-K-1"], customer: long)
        #expect(response.status == 201, "\(response)")
        #expect(try sale.parseHold(response).customer == long)
    }

    @Test func wrongTypesAre400() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        for body in [
            #"{"customer": "u-1", "seats": "STALLS-A-1"}"#,
            #"{"customer": 42, "seats": ["STALLS-A-1"]}"#,
            #"{"customer": "u-1", "seats": [1, 2]}"#,
            #"{"customer": "u-1", "seats": ["STALLS-A-1"], "ttl_seconds": "60"}"#,
            #"{"customer": "u-1", "seats": ["STALLS-A-1"], "ttl_seconds": 1.5}"#,
            #"{"customer": "u-1", "best_available": 4}"#,
            #"{"customer": "u-1", "best_available": {"quantity": "4"}}"#,
            #"{"customer": "u-1", "best_available": {"quantity": 2, "adjacent": "yes"}}"#,
            #"["STALLS-A-1"]"#,
            #"{"customer": "u-1", "seats": ["STALLS-A-1"]"#,
        ] {
            expectError(try sale.send("POST", "/v1/events/\(id)/holds", key: sale.client, json: body), status: 400)
        }
        #expect(try await sale.server.sqlInt("SELECT count(*) AS n FROM holds WHERE event_id = \(id)") == 0)
    }

    @Test func rolesAndUnknownEvents() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        expectError(try sale.hold(id, seats: ["STALLS-A-1"], key: sale.organizer), status: 403)
        expectError(try sale.holdBest(id, quantity: 2, key: sale.organizer), status: 403)
        let anonymous = try sale.send("POST", "/v1/events/\(id)/holds", key: nil, json: #"{"customer": "u-1", "seats": ["STALLS-A-1"]}"#)
        expectError(anonymous, status: 401)
        expectError(try sale.hold(id, seats: ["STALLS-A-1"], key: "not-a-key-at-all-0000"), status: 401)
        #expect(try await sale.server.sqlInt("SELECT count(*) AS n FROM holds WHERE event_id = \(id)") == 0)
        #expect(try sale.eventCounts(id)["held"] == 0)
        // Admin may do everything.
        let admin = try sale.hold(id, seats: ["STALLS-A-1"], key: sale.server.adminKey)
        #expect(admin.status == 201, "\(admin)")

        expectError(try sale.hold(999_999, seats: ["STALLS-A-1"]), status: 404, code: "not_found")
        expectError(try sale.holdBest(999_999, quantity: 1), status: 404, code: "not_found")

        // Seat labels of the other map are unknown here.
        expectValidation(try sale.hold(id, seats: ["NL4-12-15"]), paths: ["seats"])

        // Hold endpoints with an organizer key: 403; without a key: 401.
        let hold = try sale.requireHold(id, seats: ["STALLS-A-2"])
        let path = "/v1/holds/\(pathSegment(hold.token))"
        for (method, suffix, body) in [("GET", "", nil), ("POST", "/extend", #"{"ttl_seconds": 60}"#), ("POST", "/confirm", nil), ("DELETE", "", nil)] {
            expectError(try sale.send(method, path + suffix, key: sale.organizer, json: body), status: 403)
            expectError(try sale.send(method, path + suffix, key: nil, json: body), status: 401)
        }
        // Methods the contract does not list.
        expectError(try sale.send("PUT", path, key: sale.client, json: "{}"), status: 405)
        expectError(try sale.send("GET", path + "/confirm", key: sale.client), status: 405)
        expectError(try sale.send("DELETE", "/v1/events/\(id)/holds", key: sale.client), status: 405)
        // None of that changed the hold.
        let read = try sale.getHold(hold.token)
        #expect(try read.json()["status"]?.catalogString == "active")
        #expect(try read.json()["expires_at"]?.catalogString == hold.expiresAt)
        #expect(try await sale.storedStatuses(id, ["STALLS-A-2"]) == ["STALLS-A-2": "held"])
    }

    // MARK: - Best available

    @Test func bestAvailableTakesAdjacentSeatsInTheFrontRow() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()

        let response = try sale.holdBest(id, quantity: 4, section: "STALLS")
        #expect(response.status == 201, "\(response)")
        let hold = try sale.parseHold(response)
        #expect(hold.seats.count == 4)
        #expect(areAdjacentInOneRow(hold.seats), "not side by side: \(hold.seats)")
        #expect(hold.seats.allSatisfy { $0.hasPrefix("STALLS-A-") }, "not the front row: \(hold.seats)")
        #expect(hold.json["status"]?.catalogString == "active")
        let statuses = try await sale.storedStatuses(id, hold.seats)
        #expect(statuses.count == 4 && statuses.values.allSatisfy { $0 == "held" }, "\(statuses)")

        // Row A of the stalls keeps only runs of three: four go to row B.
        let rowA = (1...32).map { "STALLS-A-\($0)" }
        let taken = Set(hold.seats)
        let keepFree = Set(["STALLS-A-1", "STALLS-A-2", "STALLS-A-3", "STALLS-A-30", "STALLS-A-31", "STALLS-A-32"].filter { !taken.contains($0) })
        try sale.block(id, rowA.filter { !keepFree.contains($0) && !taken.contains($0) })
        let back = try sale.parseHold(try sale.holdBest(id, quantity: 4, section: "STALLS"))
        #expect(back.seats.allSatisfy { $0.hasPrefix("STALLS-B-") }, "not the next row: \(back.seats)")
        #expect(areAdjacentInOneRow(back.seats), "\(back.seats)")
        // Three still fit in row A.
        let three = try sale.parseHold(try sale.holdBest(id, quantity: 3, section: "STALLS"))
        #expect(three.seats.allSatisfy { $0.hasPrefix("STALLS-A-") } && areAdjacentInOneRow(three.seats), "\(three.seats)")
        #expect(Set(three.seats).isSubset(of: keepFree))
        try await sale.expectConsistent(id)

        // Without a section, on a fresh event: a first row of some section, side by side.
        let fresh = try sale.newEvent()
        let anywhere = try sale.parseHold(try sale.holdBest(fresh, quantity: 4))
        #expect(areAdjacentInOneRow(anywhere.seats), "\(anywhere.seats)")
        #expect(anywhere.seats.allSatisfy { SaleLabel($0)?.row == "A" }, "not a front row: \(anywhere.seats)")
    }

    @Test func bestAvailableSkipsTakenSeatsAndKeepsSeatsTogether() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        // BOXL: rows A and B of four. With A-2 held, row A's longest run is A-3..A-4.
        _ = try sale.requireHold(id, seats: ["BOXL-A-2"])
        let pair = try sale.parseHold(try sale.holdBest(id, quantity: 2, section: "BOXL"))
        #expect(Set(pair.seats) == ["BOXL-A-3", "BOXL-A-4"], "\(pair.seats)")
        let trio = try sale.parseHold(try sale.holdBest(id, quantity: 3, section: "BOXL"))
        #expect(trio.seats.allSatisfy { $0.hasPrefix("BOXL-B-") } && areAdjacentInOneRow(trio.seats), "\(trio.seats)")
        // Left: BOXL-A-1 and one seat of row B, not side by side.
        let none = try sale.holdBest(id, quantity: 2, section: "BOXL")
        expectError(none, status: 409, code: "no_seats_available")
        // Adjacent is the default; without it two single seats will do.
        let apart = try sale.holdBest(id, quantity: 2, section: "BOXL", adjacent: false)
        #expect(apart.status == 201, "\(apart)")
        if apart.status == 201 {
            #expect(try sale.parseHold(apart).seats.count == 2)
        }
        expectError(try sale.holdBest(id, quantity: 1, section: "BOXL"), status: 409, code: "no_seats_available")
        let statuses = try await sale.storedStatuses(id).filter { $0.key.hasPrefix("BOXL-") }
        #expect(statuses.values.allSatisfy { $0 == "held" } && statuses.count == 8, "\(statuses)")
        try await sale.expectConsistent(id)
    }

    @Test func bestAvailableRespectsCategoryAndSection() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()

        let box = try sale.parseHold(try sale.holdBest(id, quantity: 2, category: "box"))
        #expect(box.seats.allSatisfy { $0.hasPrefix("BOXL-") || $0.hasPrefix("BOXR-") }, "\(box.seats)")
        #expect(areAdjacentInOneRow(box.seats), "\(box.seats)")

        // Premium in the stalls: rows C–M, not the three standard end seats; front first: row C.
        let premium = try sale.parseHold(try sale.holdBest(id, quantity: 6, category: "premium", section: "STALLS"))
        let categories = try await sale.categories(premium.seats)
        #expect(categories.count == 6 && categories.values.allSatisfy { $0 == "premium" }, "\(categories)")
        #expect(premium.seats.allSatisfy { $0.hasPrefix("STALLS-C-") }, "\(premium.seats)")
        #expect(areAdjacentInOneRow(premium.seats), "\(premium.seats)")

        // Restricted view: CIRCLE only; the seats behind the pillars.
        let restricted = try sale.parseHold(try sale.holdBest(id, quantity: 2, category: "restricted"))
        #expect(try await sale.categories(restricted.seats).values.allSatisfy { $0 == "restricted" })
        #expect(restricted.seats.allSatisfy { $0.hasPrefix("CIRCLE-E-") }, "front restricted row is E: \(restricted.seats)")
        #expect(areAdjacentInOneRow(restricted.seats), "\(restricted.seats)")

        let circle = try sale.parseHold(try sale.holdBest(id, quantity: 5, section: "CIRCLE"))
        #expect(circle.seats.allSatisfy { $0.hasPrefix("CIRCLE-A-") } && areAdjacentInOneRow(circle.seats), "\(circle.seats)")

        // A known category that the section does not have: nothing to find (409, not 422).
        expectError(try sale.holdBest(id, quantity: 1, category: "box", section: "STALLS"), status: 409, code: "no_seats_available")
        // More side by side than any box row has.
        expectError(try sale.holdBest(id, quantity: 5, category: "box"), status: 409, code: "no_seats_available")
        expectValidation(try sale.holdBest(id, quantity: 2, category: "vip"), paths: ["best_available"])
        expectValidation(try sale.holdBest(id, quantity: 2, section: "PIT"), paths: ["best_available"])
        expectValidation(try sale.holdBest(id, quantity: 2, section: "stalls"), paths: ["best_available"])
        try await sale.expectConsistent(id)
    }

    @Test func bestAvailableOnRangeRows() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent(stadium: true)
        let hold = try sale.parseHold(try sale.holdBest(id, quantity: 6, section: "NL4"))
        #expect(hold.seats.allSatisfy { $0.hasPrefix("NL4-1-") }, "not the front row: \(hold.seats)")
        #expect(areAdjacentInOneRow(hold.seats), "not consecutive: \(hold.seats)")
        let family = try sale.parseHold(try sale.holdBest(id, quantity: 10, category: "family"))
        #expect(try await sale.categories(family.seats, stadium: true).values.allSatisfy { $0 == "family" })
        #expect(family.seats.allSatisfy { SaleLabel($0)?.row == "1" && $0.hasPrefix("WL") }, "\(family.seats)")
        #expect(areAdjacentInOneRow(family.seats), "\(family.seats)")
        // Rows of 27 seats: 10 side by side fit, but more than a row never fit (and the limit is 10).
        expectValidation(try sale.holdBest(id, quantity: 11, section: "NL4"), paths: ["best_available"])
        // Upper-tier corner rows: still one row, consecutive numbers.
        let corner = try sale.parseHold(try sale.holdBest(id, quantity: 3, section: "NEU2"))
        #expect(corner.seats.allSatisfy { $0.hasPrefix("NEU2-30-") } && areAdjacentInOneRow(corner.seats), "\(corner.seats)")
        try await sale.expectConsistent(id, seatCount: SampleMaps.stadium.seats)
    }

    // MARK: - Reading, releasing, extending

    @Test func unknownTokensAre404() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let hold = try sale.requireHold(id, seats: ["STALLS-D-5"])
        // A token differing in its last character, one of another shape, and nonsense.
        var altered = hold.token
        let last = altered.removeLast()
        altered.append(last == "A" ? "B" : "A")
        for token in [altered, "qh_\(id)_" + String(repeating: "A", count: 43), "nope", "0", String(repeating: "x", count: 300)] {
            expectError(try sale.getHold(token), status: 404, code: "not_found")
            expectError(try sale.extend(token, ttl: 60), status: 404, code: "not_found")
            expectError(try sale.release(token), status: 404, code: "not_found")
            expectError(try sale.confirm(token), status: 404, code: "not_found")
        }
        #expect(try sale.getHold(hold.token).status == 200)
        #expect(try await sale.storedStatuses(id, ["STALLS-D-5"]) == ["STALLS-D-5": "held"])
    }

    @Test func releaseFreesTheSeatsAtOnce() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let hold = try sale.requireHold(id, seats: ["CIRCLE-C-10", "CIRCLE-C-11", "CIRCLE-C-12"])
        let heldVersion = try sale.seatStatus(id).version

        let released = try sale.release(hold.token)
        #expect(released.status == 204, "\(released)")
        #expect(released.body.isEmpty)
        // Free at once, for the API and in the database; a new version.
        let after = try sale.seatStatus(id)
        #expect(hold.seats.allSatisfy { after.seats[$0] == "free" }, "\(hold.seats.map { after.seats[$0] ?? "?" })")
        #expect(after.version > heldVersion)
        #expect(try await sale.storedStatuses(id, hold.seats).values.allSatisfy { $0 == "free" })
        #expect(try sale.eventCounts(id)["held"] == 0)
        #expect(try await sale.server.sqlInt(
            "SELECT count(*) AS n FROM event_seats WHERE event_id = \(id) AND hold_id IS NOT NULL") == 0)
        let read = try sale.getHold(hold.token)
        #expect(read.status == 200, "\(read)")
        #expect(try read.json()["status"]?.catalogString == "released")

        // A released hold: 409 hold_not_active for release, extend and confirm.
        expectError(try sale.release(hold.token), status: 409, code: "hold_not_active")
        expectError(try sale.extend(hold.token, ttl: 60), status: 409, code: "hold_not_active")
        expectError(try sale.confirm(hold.token), status: 409, code: "hold_not_active")
        #expect(try await sale.bookingCount(id) == 0)

        // Someone else can hold them now; the released hold still cannot take them back.
        let next = try sale.requireHold(id, seats: ["CIRCLE-C-11"], customer: "u-99", key: sale.otherClient)
        #expect(next.seats == ["CIRCLE-C-11"])
        expectError(try sale.confirm(hold.token), status: 409, code: "hold_not_active")
        #expect(try await sale.storedStatuses(id, ["CIRCLE-C-11"]) == ["CIRCLE-C-11": "held"])
        try await sale.expectConsistent(id)
    }

    @Test func extendMovesExpiry() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent(holdTTL: 300)
        let hold = try sale.requireHold(id, seats: ["STALLS-E-8"], ttl: 30)

        let longer = try sale.extend(hold.token, ttl: 300)
        #expect(longer.status == 200, "\(longer)")
        let json = try longer.json()
        #expect(json["hold_id"]?.catalogInt == hold.id)
        #expect(json["status"]?.catalogString == "active")
        let expiresAt = try #require(json["expires_at"]?.catalogString)
        #expect(isContractTime(expiresAt))
        let remaining = try #require(try await sale.server.sql(
            "SELECT extract(epoch FROM (\(expiresAt)::timestamptz - now()))::float8 AS d").first).double("d")
        #expect(remaining > 295 && remaining <= 300.5, "expires in \(remaining) s")
        let stored = try #require(try await sale.server.sql(
            "SELECT (abs(extract(epoch FROM expires_at - \(expiresAt)::timestamptz)) < 0.001) AS same FROM holds WHERE event_id = \(id) AND id = \(hold.id)").first)
        #expect(try stored.bool("same"), "the stored expires_at is not the answered one")
        #expect(try sale.getHold(hold.token).json()["expires_at"]?.catalogString == expiresAt)

        // now + ttl, also when that is sooner.
        let shorter = try sale.extend(hold.token, ttl: 10)
        #expect(shorter.status == 200, "\(shorter)")
        let soon = try #require(try shorter.json()["expires_at"]?.catalogString)
        let soonRemaining = try #require(try await sale.server.sql(
            "SELECT extract(epoch FROM (\(soon)::timestamptz - now()))::float8 AS d").first).double("d")
        #expect(soonRemaining > 5 && soonRemaining <= 10.5, "expires in \(soonRemaining) s")

        // Bounds: 1 .. the event's hold_ttl_seconds; ttl_seconds is required.
        for ttl in [0, 301, -1] {
            expectValidation(try sale.extend(hold.token, ttl: ttl), paths: ["ttl_seconds"])
        }
        expectValidation(try sale.extend(hold.token, ttl: nil), paths: ["ttl_seconds"])
        expectError(try sale.send("POST", "/v1/holds/\(pathSegment(hold.token))/extend", key: sale.client, json: #"{"ttl_seconds": "60"}"#), status: 400)
        #expect(try sale.getHold(hold.token).json()["expires_at"]?.catalogString == soon, "a refused extension changed expires_at")
        // Whoever has the token may extend it.
        #expect(try sale.extend(hold.token, ttl: 60, key: sale.otherClient).status == 200)
    }

    @Test func extensionStopsAtThreeTimesTheTTL() async throws {
        let sale = try await saleServer.get()
        // hold_ttl_seconds 1: a hold lives at most 3 s from its creation.
        let id = try sale.newEvent(holdTTL: 1)
        let created = ContinuousClock.now
        let hold = try sale.requireHold(id, seats: ["STALLS-F-20", "STALLS-F-21"])
        var lastExpiry = hold.expiresAt
        var refusal: HTTPTestResponse?
        var refusedAfter: Duration = .zero
        // Keep it alive, 1 s at a time, until the limit refuses.
        while ContinuousClock.now - created < .seconds(4) {
            try await Task.sleep(for: .milliseconds(300))
            let response = try sale.extend(hold.token, ttl: 1)
            if response.status == 200 {
                lastExpiry = try #require(try response.json()["expires_at"]?.catalogString)
                continue
            }
            refusal = response
            refusedAfter = ContinuousClock.now - created
            break
        }
        let refused = try #require(refusal, "no extension was refused within 4 s")
        expectError(refused, status: 409, code: "hold_limit")
        // now + 1 s passes creation + 3 s only after about 2 s.
        #expect(refusedAfter > .milliseconds(1_700), "refused after \(refusedAfter)")
        // Nothing changed: the last extension's expires_at stands.
        let read = try sale.getHold(hold.token)
        #expect(try read.json()["expires_at"]?.catalogString == lastExpiry, "\(read) vs \(lastExpiry)")
        let inLimit = try #require(try await sale.server.sql("""
            SELECT (abs(extract(epoch FROM expires_at - \(lastExpiry)::timestamptz)) < 0.001) AS same, (expires_at <= created_at + interval '3 seconds') AS within
            FROM holds WHERE event_id = \(id) AND id = \(hold.id)
            """).first)
        #expect(try inLimit.bool("same"))
        #expect(try inLimit.bool("within"), "the hold lives beyond 3 x hold_ttl_seconds")

        // Past its expiry: 410 hold_expired for extend, release and confirm; seats not booked.
        try await sale.waitUntilExpired(id, hold.id)
        let expiredRead = try sale.getHold(hold.token)
        #expect(expiredRead.status == 200, "\(expiredRead)")
        #expect(try expiredRead.json()["status"]?.catalogString == "expired", "\(expiredRead)")
        expectError(try sale.extend(hold.token, ttl: 1), status: 410, code: "hold_expired")
        expectError(try sale.release(hold.token), status: 410, code: "hold_expired")
        expectError(try sale.confirm(hold.token), status: 410, code: "hold_expired")
        #expect(try await sale.bookingCount(id) == 0)
        #expect(try await sale.storedStatuses(id, hold.seats).values.allSatisfy { $0 != "booked" })
    }

    @Test func expiredHoldsDoNotBlock() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let old = try sale.requireHold(id, seats: ["STALLS-G-5", "STALLS-G-6"], customer: "slow", ttl: 1)
        try await sale.waitUntilExpired(id, old.id)
        #expect(try sale.getHold(old.token).json()["status"]?.catalogString == "expired")

        // No sweeper: the seats may still be stored as held, but they can be taken.
        let fresh = try sale.requireHold(id, seats: ["STALLS-G-6", "STALLS-G-7"], customer: "quick", key: sale.otherClient)
        #expect(Set(fresh.seats) == ["STALLS-G-6", "STALLS-G-7"])
        let best = try sale.holdBest(id, quantity: 1, section: "STALLS")
        #expect(best.status == 201, "\(best)")
        // A seat of the expired hold is not named as taken; a live one is.
        let live = try sale.requireHold(id, seats: ["STALLS-G-9"])
        let mixed = try sale.hold(id, seats: ["STALLS-G-5", "STALLS-G-9"])
        expectError(mixed, status: 409, code: "seats_unavailable")
        #expect(errorSeats(mixed) == ["STALLS-G-9"], "\(mixed)")
        #expect(live.seats == ["STALLS-G-9"])
        expectError(try sale.confirm(old.token), status: 410, code: "hold_expired")
        // The seat the old hold lost is the new hold's; the confirm of the old one changed nothing.
        #expect(try await sale.storedStatuses(id, ["STALLS-G-6", "STALLS-G-7"]) == ["STALLS-G-6": "held", "STALLS-G-7": "held"])
        let owner = try await sale.server.sqlInt("""
            SELECT e.hold_id AS n FROM event_seats e JOIN seats s ON s.id = e.seat_id WHERE e.event_id = \(id) AND s.label = 'STALLS-G-6'
            """)
        #expect(owner == fresh.id)
        let booking = try sale.parseBooking(try sale.confirm(fresh.token, key: sale.otherClient))
        #expect(Set(booking.seats) == ["STALLS-G-6", "STALLS-G-7"])
        try await sale.expectConsistent(id)
    }
}

@Suite struct BestAvailablePagingTests {
    /// Best available reads free seats a page (200) at a time, front rows first. With every
    /// other seat blocked in the first 700 seats of that order, no pair fits in the first pages:
    /// the pair must come from the first rank further back that has two free seats side by side
    /// (among that rank's rows, the window nearest a row's middle wins).
    @Test func findsAPairPastPagesOfSingleSeats() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent(stadium: true)
        let ordered = try await sale.server.sql("""
            SELECT s.label, es.row_id, es.row_rank, es.ordinal FROM event_seats es JOIN seats s ON s.id = es.seat_id
            WHERE es.event_id = \(id) ORDER BY es.row_rank, es.row_id, es.ordinal
            """).rows.map {
                (label: try $0.string("label"), row: try $0.int("row_id"), rank: try $0.int("row_rank"), ordinal: try $0.int("ordinal"))
            }
        let blocked = Set(ordered.prefix(700).enumerated().filter { $0.offset % 2 == 1 }.map(\.element.label))
        for chunk in stride(from: 0, to: blocked.count, by: 300) {
            try sale.block(id, Array(blocked.sorted()[chunk..<min(chunk + 300, blocked.count)]))
        }
        // The first rank, in best-available order, with two free seats side by side in a row.
        var expectedRank: Int?
        for (previous, seat) in zip(ordered, ordered.dropFirst())
        where previous.row == seat.row && seat.ordinal == previous.ordinal + 1 && !blocked.contains(previous.label) && !blocked.contains(seat.label) {
            expectedRank = seat.rank
            break
        }
        let hold = try sale.parseHold(try sale.holdBest(id, quantity: 2))
        #expect(areAdjacentInOneRow(hold.seats), "\(hold.seats)")
        let ranks = Set(ordered.filter { hold.seats.contains($0.label) }.map(\.rank))
        #expect(ranks == [try #require(expectedRank)], "took \(hold.seats), the first fitting rank is \(expectedRank ?? -1)")
        // Past three whole pages of single seats: the paging was needed.
        let positions = ordered.indices.filter { hold.seats.contains(ordered[$0].label) }
        #expect(positions.allSatisfy { $0 >= 3 * 200 }, "positions \(positions)")
        #expect(hold.seats.allSatisfy { !blocked.contains($0) })
        try await sale.expectConsistent(id, seatCount: SampleMaps.stadium.seats)
    }

    /// Refusals may come from the process's memory of seats just taken; freeing seats (release,
    /// cancel, unblock) must make them available again at once, not after the memory fades.
    @Test func freedSeatsAreAvailableAtOnceDespiteTheMemoryOfRefusals() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let seats = ["BOXR-A-1", "BOXR-A-2"]
        let first = try sale.requireHold(id, seats: seats)
        expectError(try sale.hold(id, seats: seats, customer: "u-2"), status: 409, code: "seats_unavailable")
        #expect(try sale.release(first.token).status == 204)
        let second = try sale.requireHold(id, seats: seats, customer: "u-2")

        // Sold out for best available in the section, then a cancelled booking frees two seats.
        let booking = try sale.parseBooking(try sale.confirm(second.token))
        let rest = try await sale.labels(seatmapID: sale.theatreID).filter { $0.hasPrefix("BOXR-") && !seats.contains($0) }
        try sale.block(id, rest)
        expectError(try sale.holdBest(id, quantity: 2, section: "BOXR"), status: 409, code: "no_seats_available")
        expectError(try sale.holdBest(id, quantity: 2, section: "BOXR"), status: 409, code: "no_seats_available")
        #expect(try sale.cancel(booking.id).status == 200)
        let again = try sale.parseHold(try sale.holdBest(id, quantity: 2, section: "BOXR"))
        #expect(Set(again.seats) == Set(seats))

        // Blocked seats refused, then unblocked: available at once.
        #expect(try sale.release(again.token).status == 204)
        try sale.block(id, seats)
        expectError(try sale.hold(id, seats: seats, customer: "u-3"), status: 409, code: "seats_unavailable")
        #expect(try sale.send("POST", "/v1/events/\(id)/unblock", key: sale.organizer, json: #"{"seats": \#(jsonList(seats))}"#).status == 200)
        _ = try sale.requireHold(id, seats: seats, customer: "u-3")
        try await sale.expectConsistent(id)
    }
}

extension CatalogServer.Fixture {
    /// Waits (at most 5 s) until the hold's `expires_at` has passed in database time, plus a margin.
    func waitUntilExpired(_ eventID: Int, _ holdID: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            let left = try #require(try await server.sql("""
                SELECT extract(epoch FROM (expires_at - now()))::float8 AS d FROM holds WHERE event_id = \(eventID) AND id = \(holdID)
                """).first).double("d")
            if left < -0.05 { return }
            try await Task.sleep(for: .milliseconds(max(20, Int((left + 0.1) * 1_000))))
        }
        throw SupportError("hold \(holdID) did not expire within 5 s")
    }
}

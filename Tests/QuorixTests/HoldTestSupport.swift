import Foundation
import PG
import Quorix
import QuorixTestSupport
import Synchronization
import Testing

/// Helpers for the hold, booking and race suites (API.md "Holds" and "Bookings"): one server with
/// the theatre and the stadium uploaded, shared by the three suites; every test works on events of
/// its own, so nothing one test does can be seen by another.

/// The server of `HoldAPITests`, `BookingAPITests` and `HoldRaceTests`.
/// The sale suites share one server of their own (their events and keys stay apart from the catalog suites).
let saleServer = CatalogServer()

/// Distinct prices per category, so that a total names the categories it was made of.
enum SalePrices {
    static let theatre = ["premium": 7_500, "standard": 4_000, "restricted": 2_500, "box": 12_000]
    static let stadium = ["premium": 9_000, "standard": 5_000, "family": 3_000, "economy": 2_000]

    static func json(_ prices: [String: Int]) -> String {
        "{" + prices.keys.sorted().map { "\"\($0)\": \(prices[$0]!)" }.joined(separator: ", ") + "}"
    }
}


/// A hold as a 201 answer shows it.
struct SaleHold: Sendable {
    let id: Int
    let token: String
    let eventID: Int
    let customer: String
    let seats: [String]
    let expiresAt: String
    let json: JSONValue
}

/// A booking as the API shows it.
struct SaleBooking: Sendable {
    let id: Int
    let eventID: Int
    let customer: String
    let seats: [String]
    let totalCents: Int
    let status: String
    let json: JSONValue
}

/// A seat label's parts (`STALLS-A-12` → STALLS, A, 12); keys never contain `-`.
struct SaleLabel: Hashable, Sendable, CustomStringConvertible {
    let section: String
    let row: String
    let seat: String

    init?(_ label: String) {
        let parts = label.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        section = String(parts[0])
        row = String(parts[1])
        seat = String(parts[2])
    }

    var sectionRow: String { "\(section)-\(row)" }
    var number: Int? { Int(seat) }
    var description: String { "\(section)-\(row)-\(seat)" }
}

/// True when `labels` are side by side in one row: one SECTION-ROW and consecutive seat numbers
/// (in the sample maps seat numbers follow the seats' order along the row, README "Orientation").
func areAdjacentInOneRow(_ labels: [String]) -> Bool {
    let parsed = labels.compactMap(SaleLabel.init)
    guard parsed.count == labels.count, !parsed.isEmpty, Set(parsed.map(\.sectionRow)).count == 1 else { return false }
    let numbers = parsed.compactMap(\.number).sorted()
    guard numbers.count == parsed.count else { return false }
    return zip(numbers, numbers.dropFirst()).allSatisfy { $1 == $0 + 1 }
}

func jsonList(_ labels: [String]) -> String {
    "[" + labels.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
}

/// The contract's time format: RFC 3339 UTC with milliseconds.
func isContractTime(_ text: String?) -> Bool {
    guard let text else { return false }
    return text.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil
}

/// A path segment with everything but RFC 3986 unreserved characters percent-encoded.
func pathSegment(_ text: String) -> String {
    var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(128)))
    allowed.insert(charactersIn: "-._~")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
}

/// One request on a connection of its own, for threads: never throws, reports what went wrong.
func saleRequest(
    port: Int, _ method: String, _ path: String, key: String?, body: String? = nil, headers: [(String, String)] = [],
    timeout: Duration = .seconds(20)
) -> Result<HTTPTestResponse, HTTPTestClientError> {
    var all = headers
    if let key { all.append(bearer(key)) }
    if body != nil { all.append(("Content-Type", "application/json")) }
    do {
        let client = try HTTPTestClient(port: port, timeout: timeout)
        defer { client.close() }
        return .success(try client.request(method, path, headers: all, body: body.map { Array($0.utf8) }))
    } catch let error as HTTPTestClientError {
        return .failure(error)
    } catch {
        return .failure(.malformedResponse("\(error)"))
    }
}

extension CatalogServer.Fixture {
    var port: Int { server.port }

    // MARK: - Requests

    /// One request with `key` (nil: no Authorization header) and an optional JSON body.
    func send(
        _ method: String, _ path: String, key: String?, json: String? = nil, headers: [(String, String)] = []
    ) throws -> HTTPTestResponse {
        var all = headers
        if let key { all.append(bearer(key)) }
        if json != nil { all.append(("Content-Type", "application/json")) }
        return try server.slowRequest(method, path, headers: all, body: json.map { Array($0.utf8) }, timeout: .seconds(30))
    }

    // MARK: - Events

    /// A new event on the theatre (or the stadium) with distinct prices; its id.
    func newEvent(
        stadium: Bool = false, holdTTL: Int? = nil, maxSeatsPerHold: Int? = nil, _ prefix: String = "Sale night"
    ) throws -> Int {
        var fields = #""name": "\#(uniqueName(prefix))", "seatmap_id": \#(stadium ? stadiumID : theatreID), "#
            + #""starts_at": "2026-12-01T20:00:00Z", "prices": \#(SalePrices.json(stadium ? SalePrices.stadium : SalePrices.theatre))"#
        if let holdTTL { fields += #", "hold_ttl_seconds": \#(holdTTL)"# }
        if let maxSeatsPerHold { fields += #", "max_seats_per_hold": \#(maxSeatsPerHold)"# }
        let response = try send("POST", "/v1/events", key: organizer, json: "{\(fields)}")
        guard response.status == 201, let id = try response.json()["id"]?.catalogInt else {
            throw SupportError("creating an event failed: \(response)")
        }
        return id
    }

    func block(_ eventID: Int, _ labels: [String]) throws {
        let response = try send("POST", "/v1/events/\(eventID)/block", key: organizer, json: #"{"seats": \#(jsonList(labels))}"#)
        guard response.status == 200 else { throw SupportError("blocking \(labels.prefix(5)) failed: \(response)") }
    }

    /// `counts` of `GET /v1/events/{id}`.
    func eventCounts(_ eventID: Int) throws -> [String: Int] {
        let response = try send("GET", "/v1/events/\(eventID)", key: nil)
        guard response.status == 200, let members = try response.json()["counts"]?.catalogMembers else {
            throw SupportError("reading event \(eventID) failed: \(response)")
        }
        return Dictionary(members.map { ($0.0, $0.1.catalogInt ?? -1) }, uniquingKeysWith: { first, _ in first })
    }

    /// Every label of a sample map, from the database.
    func labels(seatmapID: Int) async throws -> [String] {
        try await server.sql("SELECT label FROM seats WHERE seatmap_id = \(seatmapID) ORDER BY id").rows.map { try $0.string("label") }
    }

    /// label → category of the theatre's or stadium's seats named.
    func categories(_ labels: [String], stadium: Bool = false) async throws -> [String: String] {
        let rows = try await server.sql("""
            SELECT label, category FROM seats WHERE seatmap_id = \(stadium ? stadiumID : theatreID) AND label = ANY(\(labels)::text[])
            """)
        var categories: [String: String] = [:]
        for row in rows.rows { categories[try row.string("label")] = try row.string("category") }
        return categories
    }

    /// Seat statuses of an event straight from the database (all seats, or those named).
    func storedStatuses(_ eventID: Int, _ labels: [String]? = nil) async throws -> [String: String] {
        let rows = try await server.sql("""
            SELECT s.label, e.status FROM event_seats e JOIN seats s ON s.id = e.seat_id
            WHERE e.event_id = \(eventID) AND (\(labels)::text[] IS NULL OR s.label = ANY(\(labels)::text[]))
            """)
        var statuses: [String: String] = [:]
        for row in rows.rows { statuses[try row.string("label")] = try row.string("status") }
        return statuses
    }

    /// Holds of an event with `status = 'active'` whose `expires_at` has not passed.
    func liveHoldCount(_ eventID: Int) async throws -> Int {
        try await server.sqlInt("""
            SELECT count(*) AS n FROM holds WHERE event_id = \(eventID) AND status = 'active' AND expires_at > now()
            """)
    }

    func bookingCount(_ eventID: Int) async throws -> Int {
        try await server.sqlInt("SELECT count(*) AS n FROM bookings WHERE event_id = \(eventID)")
    }

    // MARK: - Holds

    func hold(
        _ eventID: Int, seats: [String], customer: String = "u-42", ttl: Int? = nil, key: String? = nil
    ) throws -> HTTPTestResponse {
        var body = #"{"customer": "\#(customer)", "seats": \#(jsonList(seats))"#
        if let ttl { body += #", "ttl_seconds": \#(ttl)"# }
        return try send("POST", "/v1/events/\(eventID)/holds", key: key ?? client, json: body + "}")
    }

    static func bestBody(quantity: Int, category: String? = nil, section: String? = nil, adjacent: Bool? = nil, customer: String = "u-42") -> String {
        var best = #""quantity": \#(quantity)"#
        if let category { best += #", "category": "\#(category)""# }
        if let section { best += #", "section": "\#(section)""# }
        if let adjacent { best += #", "adjacent": \#(adjacent)"# }
        return #"{"customer": "\#(customer)", "best_available": {\#(best)}}"#
    }

    func holdBest(
        _ eventID: Int, quantity: Int, category: String? = nil, section: String? = nil, adjacent: Bool? = nil,
        customer: String = "u-42", key: String? = nil
    ) throws -> HTTPTestResponse {
        try send(
            "POST", "/v1/events/\(eventID)/holds", key: key ?? client,
            json: Self.bestBody(quantity: quantity, category: category, section: section, adjacent: adjacent, customer: customer))
    }

    /// The hold of a 201 answer (failing the test when it is anything else).
    func parseHold(_ response: HTTPTestResponse, sourceLocation: SourceLocation = #_sourceLocation) throws -> SaleHold {
        guard response.status == 201 else { throw SupportError("expected a 201 hold: \(response)") }
        let json = try response.json()
        guard let id = json["hold_id"]?.catalogInt, let token = json["token"]?.catalogString, !token.isEmpty,
            let eventID = json["event_id"]?.catalogInt, let customer = json["customer"]?.catalogString,
            let seats = json["seats"]?.catalogArray?.compactMap(\.catalogString), let expiresAt = json["expires_at"]?.catalogString
        else { throw SupportError("not a hold: \(response)") }
        return SaleHold(id: id, token: token, eventID: eventID, customer: customer, seats: seats, expiresAt: expiresAt, json: json)
    }

    func requireHold(
        _ eventID: Int, seats: [String], customer: String = "u-42", ttl: Int? = nil, key: String? = nil
    ) throws -> SaleHold {
        try parseHold(try hold(eventID, seats: seats, customer: customer, ttl: ttl, key: key))
    }

    func getHold(_ token: String, key: String? = nil) throws -> HTTPTestResponse {
        try send("GET", "/v1/holds/\(pathSegment(token))", key: key ?? client)
    }

    func extend(_ token: String, ttl: Int?, key: String? = nil) throws -> HTTPTestResponse {
        try send("POST", "/v1/holds/\(pathSegment(token))/extend", key: key ?? client, json: ttl.map { #"{"ttl_seconds": \#($0)}"# } ?? "{}")
    }

    func release(_ token: String, key: String? = nil) throws -> HTTPTestResponse {
        try send("DELETE", "/v1/holds/\(pathSegment(token))", key: key ?? client)
    }

    func confirm(_ token: String, idempotencyKey: String? = nil, key: String? = nil) throws -> HTTPTestResponse {
        try send(
            "POST", "/v1/holds/\(pathSegment(token))/confirm", key: key ?? client,
            headers: idempotencyKey.map { [("Idempotency-Key", $0)] } ?? [])
    }

    func parseBooking(_ response: HTTPTestResponse) throws -> SaleBooking {
        guard response.status == 200 || response.status == 201 else { throw SupportError("expected a booking: \(response)") }
        let json = try response.json()
        guard let id = json["booking_id"]?.catalogInt, let eventID = json["event_id"]?.catalogInt,
            let customer = json["customer"]?.catalogString, let seats = json["seats"]?.catalogArray?.compactMap(\.catalogString),
            let total = json["total_cents"]?.catalogInt, let status = json["status"]?.catalogString
        else { throw SupportError("not a booking: \(response)") }
        return SaleBooking(id: id, eventID: eventID, customer: customer, seats: seats, totalCents: total, status: status, json: json)
    }

    /// Holds `seats` and confirms the hold: the booking.
    func book(_ eventID: Int, seats: [String], customer: String = "u-42", key: String? = nil) throws -> SaleBooking {
        let hold = try requireHold(eventID, seats: seats, customer: customer, key: key)
        let response = try confirm(hold.token, key: key)
        guard response.status == 201 else { throw SupportError("confirming failed: \(response)") }
        return try parseBooking(response)
    }

    func getBooking(_ id: Int, key: String? = nil) throws -> HTTPTestResponse {
        try send("GET", "/v1/bookings/\(id)", key: key ?? client)
    }

    /// `POST /v1/bookings/{id}/cancel`, with `{"seats": [...]}` or with no body at all.
    func cancel(_ id: Int, seats: [String]? = nil, key: String? = nil) throws -> HTTPTestResponse {
        try send("POST", "/v1/bookings/\(id)/cancel", key: key ?? client, json: seats.map { #"{"seats": \#(jsonList($0))}"# })
    }

    // MARK: - Database invariants

    /// What is wrong with the event's inventory, holds and bookings as stored; empty when nothing.
    /// `seatCount` is the map's number of seats.
    func inventoryProblems(_ eventID: Int, seatCount: Int) async throws -> [String] {
        var problems: [String] = []
        func rows(_ query: PGQuery) async throws -> [String] {
            try await server.sql(query).rows.map { row in try row.string("problem") }
        }
        // No seat in two live holds.
        problems += try await rows("""
            SELECT 'seat ' || seat_id || ' is in ' || count(*) || ' active holds' AS problem
            FROM holds, unnest(seat_ids) AS seat_id
            WHERE event_id = \(eventID) AND status = 'active' AND expires_at > now()
            GROUP BY seat_id HAVING count(*) > 1
            """)
        // A live hold holds every one of its seats (no partial hold).
        problems += try await rows("""
            SELECT 'active hold ' || h.id || ' does not hold its seat ' || s.seat_id
                   || ' (status ' || coalesce(e.status, 'missing') || ', hold ' || coalesce(e.hold_id::text, 'none') || ')' AS problem
            FROM holds h CROSS JOIN LATERAL unnest(h.seat_ids) AS s(seat_id)
            LEFT JOIN event_seats e ON e.event_id = h.event_id AND e.seat_id = s.seat_id
            WHERE h.event_id = \(eventID) AND h.status = 'active' AND h.expires_at > now()
              AND (e.status IS DISTINCT FROM 'held' OR e.hold_id IS DISTINCT FROM h.id)
            """)
        // A held seat belongs to an active hold that lists it.
        problems += try await rows("""
            SELECT 'held seat ' || e.seat_id || ' names hold ' || coalesce(e.hold_id::text, 'none')
                   || ' (' || coalesce(h.status, 'missing') || ')' AS problem
            FROM event_seats e LEFT JOIN holds h ON h.event_id = e.event_id AND h.id = e.hold_id
            WHERE e.event_id = \(eventID) AND e.status = 'held'
              AND (h.id IS NULL OR h.status <> 'active' OR NOT (e.seat_id = ANY(h.seat_ids)))
            """)
        // A booked seat has exactly one live seat_bookings row, of its booking; and the other way round.
        problems += try await rows("""
            SELECT 'booked seat ' || e.seat_id || ' has ' || count(sb.seat_id) || ' live seat_bookings rows' AS problem
            FROM event_seats e
            LEFT JOIN seat_bookings sb ON sb.event_id = e.event_id AND sb.seat_id = e.seat_id AND sb.cancelled_at IS NULL
                                      AND sb.booking_id = e.booking_id
            WHERE e.event_id = \(eventID) AND e.status = 'booked'
            GROUP BY e.seat_id HAVING count(sb.seat_id) <> 1
            """)
        problems += try await rows("""
            SELECT 'seat ' || sb.seat_id || ' has a live seat_bookings row of booking ' || sb.booking_id
                   || ' but is ' || coalesce(e.status, 'missing') AS problem
            FROM seat_bookings sb LEFT JOIN event_seats e ON e.event_id = sb.event_id AND e.seat_id = sb.seat_id
            WHERE sb.event_id = \(eventID) AND sb.cancelled_at IS NULL
              AND (e.status IS DISTINCT FROM 'booked' OR e.booking_id IS DISTINCT FROM sb.booking_id)
            """)
        // One booking per hold, only of confirmed holds.
        problems += try await rows("""
            SELECT 'hold ' || b.hold_id || ' (' || coalesce(h.status, 'missing') || ') has ' || count(*) || ' bookings' AS problem
            FROM bookings b LEFT JOIN holds h ON h.event_id = b.event_id AND h.id = b.hold_id
            WHERE b.event_id = \(eventID)
            GROUP BY b.hold_id, h.status HAVING count(*) > 1 OR h.status IS DISTINCT FROM 'confirmed'
            """)
        // Never a booking made after its hold's expiry.
        problems += try await rows("""
            SELECT 'booking ' || b.id || ' was made at ' || b.created_at || ', after its hold expired at ' || h.expires_at AS problem
            FROM bookings b JOIN holds h ON h.event_id = b.event_id AND h.id = b.hold_id
            WHERE b.event_id = \(eventID) AND b.created_at >= h.expires_at
            """)
        // The inventory is the whole map, and the API's counts are the stored ones.
        let stored = try await server.sql("""
            SELECT status, count(*) AS n FROM event_seats WHERE event_id = \(eventID) GROUP BY status
            """)
        var storedCounts: [String: Int] = ["free": 0, "held": 0, "booked": 0, "blocked": 0]
        for row in stored.rows { storedCounts[try row.string("status")] = try row.int("n") }
        let total = storedCounts.values.reduce(0, +)
        if total != seatCount { problems.append("the event has \(total) seats, the map \(seatCount)") }
        let counts = try eventCounts(eventID)
        let sum = ["free", "held", "booked", "blocked"].map { counts[$0] ?? -1_000_000 }.reduce(0, +)
        if sum != seatCount { problems.append("counts \(counts) add up to \(sum), not \(seatCount)") }
        if counts["booked"] != storedCounts["booked"] || counts["blocked"] != storedCounts["blocked"] {
            problems.append("counts \(counts) differ from the stored \(storedCounts)")
        }
        return problems
    }

    /// `inventoryProblems` as test issues.
    func expectConsistent(_ eventID: Int, seatCount: Int = SampleMaps.theatre.seats, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let problems = try await inventoryProblems(eventID, seatCount: seatCount)
        #expect(problems.isEmpty, "\(problems.prefix(20))", sourceLocation: sourceLocation)
    }
}

/// Checks a 422: the contract's error shape, `validation_failed`, and a detail whose path starts
/// with one of `paths`.
func expectValidation(
    _ response: HTTPTestResponse, paths: [String], sourceLocation: SourceLocation = #_sourceLocation
) {
    expectError(response, status: 422, code: "validation_failed", sourceLocation: sourceLocation)
    let found = response.detailPaths
    #expect(!found.isEmpty, "422 without details: \(response)", sourceLocation: sourceLocation)
    #expect(
        found.contains { path in paths.contains { path == $0 || path.hasPrefix($0 + ".") || path.hasPrefix($0 + "[") } },
        "details \(found) name none of \(paths): \(response)", sourceLocation: sourceLocation)
}

/// The labels of `error.seats` of a 409.
func errorSeats(_ response: HTTPTestResponse) -> [String]? {
    (try? response.json())?["error"]?["seats"]?.catalogArray?.compactMap(\.catalogString)
}

/// Runs `whileLocked` inside a transaction that `lockSQL` (after `BEGIN`) opened on a connection
/// of its own, then commits (rolls back if it threw) and reads each client's answer.
func answersAfterLock(
    _ conninfo: String, _ lockSQL: String, whileLocked: () async throws -> [HTTPTestClient]
) async throws -> [HTTPTestResponse] {
    let locker = try await TestDatabase.connect(conninfo)
    try await TestDatabase.execute("BEGIN; " + lockSQL, on: locker)
    let clients: [HTTPTestClient]
    do {
        clients = try await whileLocked()
    } catch {
        _ = try? await TestDatabase.execute("ROLLBACK", on: locker)
        await TestDatabase.close(locker)
        throw error
    }
    try await TestDatabase.execute("COMMIT", on: locker)
    await TestDatabase.close(locker)
    return try clients.map { client in
        defer { client.close() }
        return try client.readResponse()
    }
}

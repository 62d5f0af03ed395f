import Foundation
import PG
import Quorix
import QuorixTestSupport
import Testing

/// Real concurrent clients (a thread and a connection each, released together) against the real
/// server; afterwards the stored inventory, holds and bookings are checked in SQL.
@Suite struct HoldRaceTests {
    /// 200 clients race for the same 10 seats with explicit and best-available holds.
    @Test(.timeLimit(.minutes(1)))
    func hundredsOfClientsRaceForTenSeats() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent(holdTTL: 600)
        // Everything but STALLS-A-1 … A-10 out of sale: best available can only find those.
        let contested = (1...10).map { "STALLS-A-\($0)" }
        let all = try await sale.labels(seatmapID: sale.theatreID)
        try sale.block(id, all.filter { !contested.contains($0) })
        #expect(try sale.eventCounts(id) == ["free": 10, "held": 0, "booked": 0, "blocked": SampleMaps.theatre.seats - 10])

        let clients = 200
        // Explicit requests of 1–3 seats (adjacent or not), best available of 1–3.
        let requests: [(explicit: [String]?, quantity: Int)] = (0..<clients).map { index in
            var generator = SystemRandomNumberGenerator()
            let count = Int.random(in: 1...3, using: &generator)
            if index % 2 == 0 {
                return (Array(contested.shuffled(using: &generator).prefix(count)), count)
            }
            return (nil, count)
        }
        let port = sale.port
        let key = sale.client
        let started = ContinuousClock.now
        let outcomes = await onThreads(clients) { index in
            let request = requests[index]
            let body = request.explicit.map { #"{"customer": "racer-\#(index)", "seats": \#(jsonList($0))}"# }
                ?? CatalogServer.Fixture.bestBody(quantity: request.quantity, customer: "racer-\(index)")
            return saleRequest(port: port, "POST", "/v1/events/\(id)/holds", key: key, body: body)
        }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed < .seconds(20), "the race took \(elapsed)")

        var won: [(index: Int, seats: [String], token: String)] = []
        var statuses: [Int: Int] = [:]
        for (index, outcome) in outcomes.enumerated() {
            let request = requests[index]
            switch outcome {
            case .failure(let error):
                Issue.record("client \(index) got no answer: \(error)")
            case .success(let response):
                statuses[response.status, default: 0] += 1
                if response.status == 201 {
                    let hold = try sale.parseHold(response)
                    if let explicit = request.explicit {
                        #expect(Set(hold.seats) == Set(explicit), "\(response)")
                    } else {
                        #expect(hold.seats.count == request.quantity && areAdjacentInOneRow(hold.seats), "\(response)")
                    }
                    won.append((index, hold.seats, hold.token))
                } else if request.explicit != nil {
                    expectError(response, status: 409, code: "seats_unavailable")
                    let named = errorSeats(response) ?? []
                    #expect(!named.isEmpty && Set(named).isSubset(of: Set(request.explicit!)), "\(response)")
                } else {
                    // Also after losing a race: no_seats_available, never seats_unavailable.
                    expectError(response, status: 409, code: "no_seats_available")
                }
            }
        }
        #expect(statuses.keys.allSatisfy { $0 == 201 || $0 == 409 }, "statuses: \(statuses)")
        let wonSeats = won.flatMap(\.seats)
        #expect(!won.isEmpty)
        #expect(Set(wonSeats).count == wonSeats.count, "a seat was won twice: \(won.map(\.seats))")
        #expect(wonSeats.count <= contested.count)
        #expect(Set(wonSeats).isSubset(of: Set(contested)))

        // Stored: every won seat held by its hold, the others free; no seat in two active holds.
        let stored = try await sale.storedStatuses(id, contested)
        for seat in contested {
            #expect(stored[seat] == (wonSeats.contains(seat) ? "held" : "free"), "\(seat) is \(stored[seat] ?? "?")")
        }
        let doubles = try await sale.server.sql("""
            SELECT seat_id FROM holds, unnest(seat_ids) AS seat_id
            WHERE event_id = \(id) AND status = 'active' GROUP BY 1 HAVING count(*) > 1
            """)
        let doubled = doubles.rows.compactMap { try? $0.int("seat_id") }
        #expect(doubles.isEmpty, "seats in two active holds: \(doubled)")
        #expect(try await sale.liveHoldCount(id) == won.count)
        let counts = try sale.eventCounts(id)
        #expect(counts["held"] == wonSeats.count && counts["free"] == 10 - wonSeats.count, "\(counts)")
        try await sale.expectConsistent(id)

        // The winners confirm at once, all of them; then everything is booked or free.
        let tokens = won.map(\.token)
        let confirms = await onThreads(tokens.count) { index in
            saleRequest(port: port, "POST", "/v1/holds/\(pathSegment(tokens[index]))/confirm", key: key)
        }
        for outcome in confirms {
            guard case .success(let response) = outcome else {
                Issue.record("a confirm got no answer: \(outcome)")
                continue
            }
            #expect(response.status == 201, "\(response)")
        }
        #expect(try sale.eventCounts(id)["booked"] == wonSeats.count)
        try await sale.expectConsistent(id)
    }

    /// 20 confirms of one hold at once: one booking, and every answer names it.
    @Test(.timeLimit(.minutes(1)))
    func concurrentConfirmsMakeOneBooking() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let hold = try sale.requireHold(id, seats: ["STALLS-N-20", "STALLS-N-21", "STALLS-N-22"])
        let port = sale.port
        let key = sale.client
        let idempotencyKey = "race-" + TestCluster.randomHex(bytes: 6)
        let path = "/v1/holds/\(pathSegment(hold.token))/confirm"
        // Half send an Idempotency-Key, half do not: all the same confirmation.
        let outcomes = await onThreads(20) { index in
            saleRequest(port: port, "POST", path, key: key, headers: index % 2 == 0 ? [("Idempotency-Key", idempotencyKey)] : [])
        }
        var bookingIDs: Set<Int> = []
        var created = 0
        for outcome in outcomes {
            guard case .success(let response) = outcome else {
                Issue.record("a confirm got no answer: \(outcome)")
                continue
            }
            #expect(response.status == 201 || response.status == 200, "\(response)")
            if response.status == 201 { created += 1 }
            if let booking = try? response.json()["booking_id"]?.catalogInt { bookingIDs.insert(booking) }
        }
        #expect(created == 1, "\(created) confirms answered 201")
        #expect(bookingIDs.count == 1, "booking ids \(bookingIDs)")
        #expect(try await sale.server.sqlInt("SELECT count(*) AS n FROM bookings WHERE event_id = \(id) AND hold_id = \(hold.id)") == 1)
        #expect(try await sale.server.sqlInt("SELECT count(*) AS n FROM seat_bookings WHERE event_id = \(id)") == 3)
        #expect(try sale.eventCounts(id)["booked"] == 3)
        try await sale.expectConsistent(id)
    }

    /// Confirm and release of the same hold at once: one of them wins, never both.
    @Test(.timeLimit(.minutes(1)))
    func confirmRacesRelease() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let rounds = 12
        let holds = try (0..<rounds).map { round in
            try sale.requireHold(id, seats: ["STALLS-P-\(2 * round + 1)", "STALLS-P-\(2 * round + 2)"])
        }
        let port = sale.port
        let key = sale.client
        let tokens = holds.map(\.token)
        // Thread 2r confirms hold r, thread 2r+1 releases it; all released together.
        let outcomes = await onThreads(2 * rounds) { index in
            let path = "/v1/holds/\(pathSegment(tokens[index / 2]))"
            return index % 2 == 0
                ? saleRequest(port: port, "POST", path + "/confirm", key: key)
                : saleRequest(port: port, "DELETE", path, key: key)
        }
        var booked = 0
        var released = 0
        for round in 0..<rounds {
            guard case .success(let confirm) = outcomes[2 * round], case .success(let release) = outcomes[2 * round + 1] else {
                Issue.record("round \(round): no answer: \(outcomes[2 * round]) / \(outcomes[2 * round + 1])")
                continue
            }
            let seats = holds[round].seats
            let stored = try await sale.storedStatuses(id, seats)
            let bookings = try await sale.server.sqlInt(
                "SELECT count(*) AS n FROM bookings WHERE event_id = \(id) AND hold_id = \(holds[round].id)")
            let holdStatus = try sale.getHold(tokens[round]).json()["status"]?.catalogString
            if confirm.status == 201 {
                booked += 1
                expectError(release, status: 409, code: "hold_not_active")
                #expect(stored.values.allSatisfy { $0 == "booked" }, "round \(round): \(stored)")
                #expect(bookings == 1)
                #expect(holdStatus == "confirmed")
            } else {
                released += 1
                expectError(confirm, status: 409, code: "hold_not_active")
                #expect(release.status == 204, "round \(round): \(release)")
                #expect(stored.values.allSatisfy { $0 == "free" }, "round \(round): \(stored)")
                #expect(bookings == 0)
                #expect(holdStatus == "released")
            }
        }
        #expect(booked + released == rounds)
        #expect(try sale.eventCounts(id)["booked"] == 2 * booked)
        #expect(try sale.eventCounts(id)["held"] == 0)
        try await sale.expectConsistent(id)
    }

    /// Confirms sent around the moment a 1 s hold expires: booked before, 410 after, never a booking
    /// of an expired hold.
    @Test(.timeLimit(.minutes(1)))
    func confirmAtTheMomentOfExpiry() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        // Offsets from the hold's creation; the first and last are clear of the edge.
        let offsets = [300, 850, 900, 950, 980, 1_000, 1_020, 1_050, 1_100, 1_700]
        let port = sale.port
        let key = sale.client
        typealias Attempt = (token: String?, confirm: Result<HTTPTestResponse, HTTPTestClientError>?)
        let outcomes = await onThreads(offsets.count) { index -> Attempt in
            let seat = "STALLS-Q-\(index + 1)"
            let body = #"{"customer": "edge-\#(index)", "seats": ["\#(seat)"], "ttl_seconds": 1}"#
            let created = ContinuousClock.now
            guard case .success(let response) = saleRequest(port: port, "POST", "/v1/events/\(id)/holds", key: key, body: body),
                response.status == 201, let token = try? response.json()["token"]?.catalogString
            else { return (nil, nil) }
            let wait = created + .milliseconds(offsets[index]) - ContinuousClock.now
            if wait > .zero { Thread.sleep(forTimeInterval: Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18) }
            return (token, saleRequest(port: port, "POST", "/v1/holds/\(pathSegment(token))/confirm", key: key))
        }
        for (index, (token, outcome)) in outcomes.enumerated() {
            let seat = "STALLS-Q-\(index + 1)"
            guard let token, case .success(let response)? = outcome else {
                Issue.record("offset \(offsets[index]) ms: no hold or no answer: \(String(describing: outcome))")
                continue
            }
            let stored = try await sale.storedStatuses(id, [seat])[seat]
            let holdID = try #require(try sale.getHold(token).json()["hold_id"]?.catalogInt)
            let bookings = try await sale.server.sqlInt("SELECT count(*) AS n FROM bookings WHERE event_id = \(id) AND hold_id = \(holdID)")
            switch response.status {
            case 201:
                #expect(stored == "booked", "offset \(offsets[index]): \(seat) is \(stored ?? "?")")
                #expect(bookings == 1)
            case 410:
                expectError(response, status: 410, code: "hold_expired")
                #expect(stored != "booked", "offset \(offsets[index]): refused, but \(seat) is booked")
                #expect(bookings == 0)
            default:
                Issue.record("offset \(offsets[index]) ms: \(response)")
            }
            if index == 0 { #expect(response.status == 201, "300 ms into a 1 s hold: \(response)") }
            if index == offsets.count - 1 { #expect(response.status == 410, "1.7 s into a 1 s hold: \(response)") }
        }
        // Never a booking made at or after its hold's expires_at.
        let late = try await sale.server.sqlInt("""
            SELECT count(*) AS n FROM bookings b JOIN holds h ON h.event_id = b.event_id AND h.id = b.hold_id
            WHERE b.event_id = \(id) AND b.created_at >= h.expires_at
            """)
        #expect(late == 0)
        try await sale.expectConsistent(id)
    }

    /// Overlapping multi-seat holds at once: each is all or nothing.
    @Test(.timeLimit(.minutes(1)))
    func overlappingHoldsAreAllOrNothing() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        // Row R has 48 seats: 60 requests of 2–4 seats from random places along it, some reversed.
        let requests: [[String]] = (0..<60).map { index in
            var generator = SystemRandomNumberGenerator()
            let count = Int.random(in: 2...4, using: &generator)
            let start = Int.random(in: 1...(48 - count + 1), using: &generator)
            let seats = (start..<(start + count)).map { "STALLS-R-\($0)" }
            return index % 3 == 0 ? seats.reversed() : seats
        }
        let port = sale.port
        let key = sale.client
        let outcomes = await onThreads(requests.count) { index in
            saleRequest(
                port: port, "POST", "/v1/events/\(id)/holds", key: key,
                body: #"{"customer": "overlap-\#(index)", "seats": \#(jsonList(requests[index]))}"#)
        }
        var won: [[String]] = []
        var refusedNamed: Set<String> = []
        for (index, outcome) in outcomes.enumerated() {
            guard case .success(let response) = outcome else {
                Issue.record("request \(index) got no answer: \(outcome)")
                continue
            }
            if response.status == 201 {
                let hold = try sale.parseHold(response)
                #expect(Set(hold.seats) == Set(requests[index]), "\(response)")
                won.append(hold.seats)
            } else {
                expectError(response, status: 409, code: "seats_unavailable")
                let named = errorSeats(response) ?? []
                #expect(!named.isEmpty && Set(named).isSubset(of: Set(requests[index])), "\(response)")
                refusedNamed.formUnion(named)
            }
        }
        let wonSeats = won.flatMap { $0 }
        #expect(!won.isEmpty)
        #expect(Set(wonSeats).count == wonSeats.count, "a seat was won twice: \(won)")
        // A refusal names only seats some winner holds (nothing was released meanwhile).
        #expect(refusedNamed.isSubset(of: Set(wonSeats)), "refused \(refusedNamed.sorted()), won \(won)")

        let rowR = (1...48).map { "STALLS-R-\($0)" }
        let stored = try await sale.storedStatuses(id, rowR)
        let heldStored = Set(stored.filter { $0.value == "held" }.keys)
        #expect(heldStored == Set(wonSeats), "held \(heldStored.sorted()) vs won \(wonSeats.sorted())")
        // Each stored hold holds all its seats, and there is one per winner.
        let partial = try await sale.server.sql("""
            SELECT h.id FROM holds h
            WHERE h.event_id = \(id) AND h.status = 'active'
              AND (SELECT count(*) FROM event_seats e WHERE e.event_id = h.event_id AND e.hold_id = h.id AND e.status = 'held')
                  <> cardinality(h.seat_ids)
            """)
        let partialIDs = partial.rows.compactMap { try? $0.int("id") }
        #expect(partial.isEmpty, "partial holds: \(partialIDs)")
        #expect(try await sale.liveHoldCount(id) == won.count)
        #expect(try sale.eventCounts(id)["held"] == wonSeats.count)
        try await sale.expectConsistent(id)
    }
    /// One Idempotency-Key sent with the confirms of several holds at once: one confirm is made,
    /// the others are 409 idempotency_key_reused and leave their holds alone.
    @Test(.timeLimit(.minutes(1)))
    func oneIdempotencyKeyForManyHoldsAtOnce() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let holds = try (1...8).map { try sale.requireHold(id, seats: ["STALLS-S-\($0)"]) }
        let port = sale.port
        let key = sale.client
        let idempotencyKey = "shared-" + TestCluster.randomHex(bytes: 6)
        let tokens = holds.map(\.token)
        let outcomes = await onThreads(tokens.count) { index in
            saleRequest(port: port, "POST", "/v1/holds/\(pathSegment(tokens[index]))/confirm", key: key,
                        headers: [("Idempotency-Key", idempotencyKey)])
        }
        var confirmed: [Int] = []
        for (index, outcome) in outcomes.enumerated() {
            guard case .success(let response) = outcome else {
                Issue.record("confirm \(index) got no answer: \(outcome)")
                continue
            }
            if response.status == 201 {
                confirmed.append(index)
            } else {
                expectError(response, status: 409, code: "idempotency_key_reused")
            }
        }
        #expect(confirmed.count == 1, "\(confirmed.count) holds were confirmed with one Idempotency-Key")
        #expect(try await sale.bookingCount(id) == 1)
        for (index, hold) in holds.enumerated() where !confirmed.contains(index) {
            #expect(try sale.getHold(hold.token).json()["status"]?.catalogString == "active")
        }
        // The key still names the confirmed hold: a retry there gets its booking.
        if let winner = confirmed.first {
            let retry = try sale.confirm(tokens[winner], idempotencyKey: idempotencyKey)
            #expect(retry.status == 200, "\(retry)")
        }
        try await sale.expectConsistent(id)
    }

    /// Seats of an expired (unswept) hold, raced for by many: still never held twice.
    @Test(.timeLimit(.minutes(1)))
    func raceForTheSeatsOfAnExpiredHold() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let seats = (1...6).map { "STALLS-T-\($0)" }
        let old = try sale.requireHold(id, seats: seats, ttl: 1)
        try await sale.waitUntilExpired(id, old.id)
        let port = sale.port
        let key = sale.client
        let requests: [[String]] = (0..<40).map { index in
            var generator = SystemRandomNumberGenerator()
            return Array(seats.shuffled(using: &generator).prefix(index % 3 + 1))
        }
        let outcomes = await onThreads(requests.count) { index in
            saleRequest(port: port, "POST", "/v1/events/\(id)/holds", key: key,
                        body: #"{"customer": "late-\#(index)", "seats": \#(jsonList(requests[index]))}"#)
        }
        var won: [String] = []
        for (index, outcome) in outcomes.enumerated() {
            guard case .success(let response) = outcome else {
                Issue.record("request \(index) got no answer: \(outcome)")
                continue
            }
            if response.status == 201 {
                won += try sale.parseHold(response).seats
            } else {
                expectError(response, status: 409, code: "seats_unavailable")
            }
        }
        #expect(!won.isEmpty)
        #expect(Set(won).count == won.count, "a seat was won twice: \(won)")
        let stored = try await sale.storedStatuses(id, won)
        #expect(stored.count == won.count && stored.values.allSatisfy { $0 == "held" }, "\(stored)")
        let stillOld = try await sale.server.sqlInt("""
            SELECT count(*) AS n FROM event_seats e JOIN seats s ON s.id = e.seat_id
            WHERE e.event_id = \(id) AND e.hold_id = \(old.id) AND s.label = ANY(\(won)::text[])
            """)
        #expect(stillOld == 0, "won seats still name the expired hold")
        #expect(try sale.eventCounts(id)["booked"] == 0)
        expectError(try sale.confirm(old.token), status: 410, code: "hold_expired")
        try await sale.expectConsistent(id)
    }

    /// Cancels of one booking at once (seat by seat, and all): every seat freed once, and the
    /// booking ends `cancelled`.
    @Test(.timeLimit(.minutes(1)))
    func concurrentCancelsOfOneBooking() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let seats = (10...13).map { "STALLS-U-\($0)" }
        let booking = try sale.book(id, seats: seats)
        let port = sale.port
        let key = sale.client
        // Four cancel one seat each, two cancel everything.
        let outcomes = await onThreads(6) { index in
            saleRequest(port: port, "POST", "/v1/bookings/\(booking.id)/cancel", key: key,
                        body: index < 4 ? #"{"seats": ["\#(seats[index])"]}"# : nil)
        }
        var statuses: [String] = []
        for (index, outcome) in outcomes.enumerated() {
            guard case .success(let response) = outcome else {
                Issue.record("cancel \(index) got no answer: \(outcome)")
                continue
            }
            switch response.status {
            case 200: statuses.append(try response.json()["status"]?.catalogString ?? "?")
            case 409: expectError(response, status: 409, code: "booking_cancelled")
            case 422: expectError(response, status: 422)
            default: Issue.record("cancel \(index): \(response)")
            }
        }
        #expect(statuses.filter { $0 == "cancelled" }.count == 1, "\(statuses)")
        #expect(statuses.allSatisfy { $0 == "cancelled" || $0 == "partially_cancelled" }, "\(statuses)")
        #expect(try sale.getBooking(booking.id).json()["status"]?.catalogString == "cancelled")
        #expect(try await sale.storedStatuses(id, seats).values.allSatisfy { $0 == "free" })
        #expect(try await sale.server.sqlInt("""
            SELECT count(*) AS n FROM seat_bookings WHERE event_id = \(id) AND booking_id = \(booking.id) AND cancelled_at IS NOT NULL
            """) == 4)
        try await sale.expectConsistent(id)
    }
}

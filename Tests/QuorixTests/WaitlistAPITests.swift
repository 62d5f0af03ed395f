import Foundation
import PG
import Quorix
import QuorixTestSupport
import Testing

extension CatalogServer.Fixture {
    func joinWaitlist(_ eventID: Int, _ body: String, key: String? = nil) throws -> HTTPTestResponse {
        try send("POST", "/v1/events/\(eventID)/waitlist", key: key ?? client, json: body)
    }

    /// Joins and returns the entry's id.
    func requireEntry(_ eventID: Int, customer: String, quantity: Int, extra: String = "") throws -> Int {
        let response = try joinWaitlist(eventID, #"{"customer": "\#(customer)", "quantity": \#(quantity)\#(extra)}"#)
        guard response.status == 201, let id = try response.json()["entry_id"]?.catalogInt else {
            throw SupportError("joining the waitlist failed: \(response)")
        }
        return id
    }

    func entry(_ id: Int, key: String? = nil) throws -> JSONValue {
        let response = try send("GET", "/v1/waitlist/\(id)", key: key ?? client)
        guard response.status == 200 else { throw SupportError("reading waitlist entry \(id) failed: \(response)") }
        return try response.json()
    }

    /// Every seat of the theatre except `keep`, blocked.
    func blockAllBut(_ eventID: Int, _ keep: Set<String>) async throws {
        let labels = try await labels(seatmapID: theatreID).filter { !keep.contains($0) }
        try block(eventID, labels)
    }

    /// Polls the entry (through the API) until `done` holds, for at most `seconds`.
    func waitForEntry(_ id: Int, seconds: Int = 6, _ done: (JSONValue) -> Bool) async throws -> JSONValue {
        let deadline = ContinuousClock.now + .seconds(seconds)
        var current = try entry(id)
        while !done(current), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            current = try entry(id)
        }
        return current
    }
}

func offerSeats(_ entry: JSONValue) -> [String] {
    (entry["offer"]?["seats"]?.catalogArray ?? []).compactMap(\.catalogString)
}

@Suite struct WaitlistAPITests {
    @Test func freedSeatsGoToTheOldestEntryTheyFitInOrder() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let box = ["BOXR-A-1", "BOXR-A-2", "BOXR-A-3", "BOXR-A-4", "BOXR-B-1", "BOXR-B-2", "BOXR-B-3", "BOXR-B-4"]
        try await sale.blockAllBut(id, Set(box))
        let front = try sale.requireHold(id, seats: Array(box[0..<4]), customer: "x")
        let back = try sale.requireHold(id, seats: Array(box[4..<8]), customer: "x")

        let five = try sale.requireEntry(id, customer: "w-five", quantity: 5)
        let joined = try sale.joinWaitlist(id, #"{"customer": "w-two", "quantity": 2}"#)
        #expect(joined.status == 201, "\(joined)")
        let two = try #require(try joined.json()["entry_id"]?.catalogInt)
        #expect(try joined.json()["status"]?.catalogString == "waiting")
        #expect(try joined.json()["position"]?.catalogInt == 2)
        let otherTwo = try sale.requireEntry(id, customer: "w-two-b", quantity: 2)
        #expect(try sale.entry(otherTwo)["position"]?.catalogInt == 3)
        #expect(try sale.entry(five)["offer"]?.isCatalogNull == true)

        // Four seats free: five does not fit and is skipped; the two pairs go to the next two.
        #expect(try sale.release(front.token).status == 204)
        let skipped = try sale.entry(five)
        #expect(skipped["status"]?.catalogString == "waiting" && skipped["position"]?.catalogInt == 1, "\(skipped)")
        let offered = try sale.entry(two)
        #expect(offered["status"]?.catalogString == "offered", "\(offered)")
        #expect(offerSeats(offered) == ["BOXR-A-1", "BOXR-A-2"])
        #expect(isContractTime(offered["offer"]?["expires_at"]?.catalogString))
        let second = try sale.entry(otherTwo)
        #expect(Set(offerSeats(second)) == ["BOXR-A-3", "BOXR-A-4"])
        // Nobody else can take offered seats.
        expectError(try sale.hold(id, seats: ["BOXR-A-1"], customer: "racer", key: sale.otherClient), status: 409, code: "seats_unavailable")
        #expect(try await sale.storedStatuses(id, Array(box[0..<4])).values.allSatisfy { $0 == "held" })

        // An offer is an ordinary hold: confirmed with the ordinary call, it converts the entry.
        let token = try #require(offered["offer"]?["token"]?.catalogString)
        let booking = try sale.parseBooking(try sale.confirm(token))
        #expect(Set(booking.seats) == ["BOXR-A-1", "BOXR-A-2"] && booking.customer == "w-two")
        let converted = try sale.entry(two)
        #expect(converted["status"]?.catalogString == "converted" && converted["offer"]?.isCatalogNull == true, "\(converted)")

        // Leaving with an offer releases it; two free seats still do not fit five.
        #expect(try sale.send("DELETE", "/v1/waitlist/\(otherTwo)", key: sale.client).status == 204)
        #expect(try sale.entry(otherTwo)["status"]?.catalogString == "left")
        expectError(try sale.send("DELETE", "/v1/waitlist/\(otherTwo)", key: sale.client), status: 409, code: "waitlist_entry_closed")
        #expect(try await sale.storedStatuses(id, ["BOXR-A-3", "BOXR-A-4"]) == ["BOXR-A-3": "free", "BOXR-A-4": "free"])
        #expect(try sale.entry(five)["status"]?.catalogString == "waiting")
        // Four more: now five fit, front rows first.
        #expect(try sale.release(back.token).status == 204)
        let big = try sale.entry(five)
        #expect(big["status"]?.catalogString == "offered", "\(big)")
        #expect(Set(offerSeats(big)) == ["BOXR-A-3", "BOXR-A-4", "BOXR-B-1", "BOXR-B-2", "BOXR-B-3"])
        try await sale.expectConsistent(id)

        let report = try sale.send("GET", "/v1/events/\(id)/report", key: sale.organizer).json()
        #expect(report["waitlist"]?["offered"]?.catalogInt == 1)
        #expect(report["waitlist"]?["converted"]?.catalogInt == 1)
        #expect(report["waitlist"]?["left"]?.catalogInt == 1)
        #expect(report["waitlist"]?["offers_made"]?.catalogInt == 3)
    }

    @Test func anExpiredOfferPassesTheSeatsOnAndCancelAndUnblockPromote() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let patched = try sale.send("PATCH", "/v1/events/\(id)", key: sale.organizer, json: #"{"waitlist_offer_ttl_seconds": 1}"#)
        #expect(patched.status == 200, "\(patched)")
        try await sale.blockAllBut(id, ["BOXL-A-1"])
        let hold = try sale.requireHold(id, seats: ["BOXL-A-1"], customer: "x")
        let first = try sale.requireEntry(id, customer: "w-1", quantity: 1)
        let second = try sale.requireEntry(id, customer: "w-2", quantity: 1)
        #expect(try sale.release(hold.token).status == 204)
        #expect(offerSeats(try sale.entry(first)) == ["BOXL-A-1"])

        // No request touches the offer: it expires, and the seat goes on to the next entry.
        let lapsed = try await sale.waitForEntry(first) { $0["status"]?.catalogString == "expired" }
        #expect(lapsed["status"]?.catalogString == "expired", "\(lapsed)")
        let next = try await sale.waitForEntry(second, seconds: 2) { $0["status"]?.catalogString == "offered" }
        #expect(offerSeats(next) == ["BOXL-A-1"], "\(next)")
        let lapsedToo = try await sale.waitForEntry(second) { $0["status"]?.catalogString == "expired" }
        #expect(lapsedToo["status"]?.catalogString == "expired")
        let expiredToken = try #require(next["offer"]?["token"]?.catalogString)
        expectError(try sale.confirm(expiredToken), status: 410, code: "hold_expired")

        // Unblocking frees seats: the waiting entry gets an offer at once.
        let third = try sale.requireEntry(id, customer: "w-3", quantity: 1)
        #expect(try sale.send("POST", "/v1/events/\(id)/unblock", key: sale.organizer, json: #"{"seats": ["BOXL-A-2"]}"#).status == 200)
        let unblocked = try sale.entry(third)
        #expect(unblocked["status"]?.catalogString == "offered" && offerSeats(unblocked) == ["BOXL-A-1"], "\(unblocked)")
        let booking = try sale.parseBooking(try sale.confirm(try #require(unblocked["offer"]?["token"]?.catalogString)))

        // A cancelled booking's seats go to the waitlist too.
        _ = try sale.requireHold(id, seats: ["BOXL-A-2"], customer: "x")
        let fourth = try sale.requireEntry(id, customer: "w-4", quantity: 1)
        #expect(try sale.cancel(booking.id).status == 200)
        let cancelled = try sale.entry(fourth)
        #expect(cancelled["status"]?.catalogString == "offered" && offerSeats(cancelled) == ["BOXL-A-1"], "\(cancelled)")
        try await sale.expectConsistent(id)
    }

    @Test func badEntriesAre422AndOthersEntriesAreNotFound() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent(maxSeatsPerHold: 4)
        for body in [
            #"{"quantity": 1}"#, #"{"customer": "", "quantity": 1}"#, #"{"customer": "u", "quantity": 0}"#,
            #"{"customer": "u", "quantity": 5}"#, #"{"customer": "u", "quantity": 1, "category": "vip"}"#,
            #"{"customer": "u", "quantity": 1, "section": "NOPE"}"#, #"{"customer": "u", "quantity": 1, "colour": "red"}"#,
        ] {
            let response = try sale.joinWaitlist(id, body)
            expectError(response, status: 422, code: "validation_failed")
        }
        expectError(try sale.joinWaitlist(id, #"{"customer": "u", "quantity": "two"}"#), status: 400)
        expectError(try sale.joinWaitlist(id, #"{"customer": "u", "quantity": 1}"#, key: sale.organizer), status: 403)
        let mine = try sale.requireEntry(id, customer: "u", quantity: 1, extra: #", "category": "premium", "section": "STALLS""#)
        expectError(try sale.send("GET", "/v1/waitlist/\(mine)", key: sale.otherClient), status: 404)
        expectError(try sale.send("DELETE", "/v1/waitlist/\(mine)", key: sale.otherClient), status: 404)
        expectError(try sale.send("GET", "/v1/waitlist/999999999", key: sale.client), status: 404)
        expectError(try sale.send("GET", "/v1/waitlist/abc", key: sale.client), status: 404)
        #expect(try sale.send("DELETE", "/v1/waitlist/\(mine)", key: sale.client).status == 204)
        #expect(try sale.entry(mine)["position"]?.isCatalogNull == true)
    }
}

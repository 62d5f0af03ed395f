import Foundation
import PG
import Quorix
import QuorixTestSupport
import Testing

@Suite struct BookingAPITests {
    // MARK: - Confirming

    @Test func confirmBooksTheSeatsAtTheEventsPrices() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        // One seat of each category: standard, premium, box, restricted.
        let seats = ["STALLS-A-1", "STALLS-C-10", "BOXL-A-1", "CIRCLE-F-11"]
        let categories = try await sale.categories(seats)
        #expect(categories == ["STALLS-A-1": "standard", "STALLS-C-10": "premium", "BOXL-A-1": "box", "CIRCLE-F-11": "restricted"])
        let expectedTotal = seats.map { SalePrices.theatre[categories[$0] ?? ""] ?? 0 }.reduce(0, +)
        #expect(expectedTotal == 4_000 + 7_500 + 12_000 + 2_500)

        let hold = try sale.requireHold(id, seats: seats, customer: "cust-1")
        let heldVersion = try sale.seatStatus(id).version
        let response = try sale.confirm(hold.token)
        #expect(response.status == 201, "\(response)")
        let booking = try sale.parseBooking(response)
        #expect(booking.json["id"]?.catalogInt == booking.id, "id and booking_id differ: \(response)")
        #expect(booking.eventID == id)
        #expect(booking.customer == "cust-1")
        #expect(Set(booking.seats) == Set(seats) && booking.seats.count == 4, "\(response)")
        #expect(booking.totalCents == expectedTotal, "\(response)")
        #expect(booking.status == "confirmed")
        #expect(isContractTime(booking.json["created_at"]?.catalogString), "\(response)")

        // Booked for the API, a new version, counts.
        let status = try sale.seatStatus(id)
        #expect(seats.allSatisfy { status.seats[$0] == "booked" }, "\(seats.map { status.seats[$0] ?? "?" })")
        #expect(status.version > heldVersion)
        #expect(try sale.eventCounts(id) == ["free": SampleMaps.theatre.seats - 4, "held": 0, "booked": 4, "blocked": 0])

        // Stored: one booking of this hold, one seat_bookings row per seat at its category's price.
        let bookingRow = try #require(try await sale.server.sql("""
            SELECT hold_id, customer, total_cents, status FROM bookings WHERE event_id = \(id) AND id = \(booking.id)
            """).first)
        #expect(try bookingRow.int("hold_id") == hold.id)
        #expect(try bookingRow.int("total_cents") == expectedTotal)
        #expect(try bookingRow.string("status") == "confirmed")
        let seatRows = try await sale.server.sql("""
            SELECT s.label, sb.price_cents FROM seat_bookings sb JOIN seats s ON s.id = sb.seat_id
            WHERE sb.event_id = \(id) AND sb.booking_id = \(booking.id) AND sb.cancelled_at IS NULL
            """)
        var prices: [String: Int] = [:]
        for row in seatRows.rows { prices[try row.string("label")] = try row.int("price_cents") }
        #expect(seatRows.count == 4)
        #expect(prices == Dictionary(uniqueKeysWithValues: seats.map { ($0, SalePrices.theatre[categories[$0]!]!) }), "\(prices)")
        #expect(try await sale.server.sqlInt("""
            SELECT count(*) AS n FROM event_seats WHERE event_id = \(id) AND status = 'booked' AND booking_id = \(booking.id)
            """) == 4)
        #expect(try await sale.server.sqlInt(
            "SELECT count(*) AS n FROM holds WHERE event_id = \(id) AND id = \(hold.id) AND status = 'confirmed'") == 1)

        // The hold reads as confirmed; it can no longer be released or extended.
        let read = try sale.getHold(hold.token)
        #expect(read.status == 200, "\(read)")
        #expect(try read.json()["status"]?.catalogString == "confirmed")
        expectError(try sale.release(hold.token), status: 409, code: "hold_not_active")
        expectError(try sale.extend(hold.token, ttl: 60), status: 409, code: "hold_not_active")

        // Confirming again: the same booking, 200, nothing new.
        let again = try sale.confirm(hold.token)
        #expect(again.status == 200, "\(again)")
        #expect(jsonDifference(try again.json(), booking.json) == nil, "\(again) vs \(response)")
        // Whoever has the token may confirm: the other client gets the same booking too.
        let other = try sale.confirm(hold.token, key: sale.otherClient)
        #expect(other.status == 200, "\(other)")
        #expect(try other.json()["booking_id"]?.catalogInt == booking.id)
        #expect(try await sale.bookingCount(id) == 1)
        #expect(try await sale.server.sqlInt("SELECT count(*) AS n FROM seat_bookings WHERE event_id = \(id)") == 4)

        // Booked seats cannot be held.
        let taken = try sale.hold(id, seats: ["STALLS-A-1", "STALLS-A-2"])
        expectError(taken, status: 409, code: "seats_unavailable")
        #expect(errorSeats(taken) == ["STALLS-A-1"])
        try await sale.expectConsistent(id)
    }

    @Test func idempotencyKeys() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let key = "order-" + TestCluster.randomHex(bytes: 8)
        let first = try sale.requireHold(id, seats: ["STALLS-H-10"])
        let second = try sale.requireHold(id, seats: ["STALLS-H-11"])

        let created = try sale.confirm(first.token, idempotencyKey: key)
        #expect(created.status == 201, "\(created)")
        let booking = try sale.parseBooking(created)
        // A retry with the key: the same booking.
        let retry = try sale.confirm(first.token, idempotencyKey: key)
        #expect(retry.status == 200, "\(retry)")
        #expect(jsonDifference(try retry.json(), booking.json) == nil, "\(retry) vs \(created)")

        // The key with another hold: 409, and that hold is untouched.
        let reused = try sale.confirm(second.token, idempotencyKey: key)
        expectError(reused, status: 409, code: "idempotency_key_reused")
        #expect(try sale.getHold(second.token).json()["status"]?.catalogString == "active")
        #expect(try await sale.storedStatuses(id, ["STALLS-H-11"]) == ["STALLS-H-11": "held"])
        #expect(try await sale.bookingCount(id) == 1)
        // With a key of its own it confirms.
        let own = try sale.confirm(second.token, idempotencyKey: key + "-2")
        #expect(own.status == 201, "\(own)")
        #expect(try own.json()["booking_id"]?.catalogInt != booking.id)

        // Keys are scoped to the API key that sent them: the other client may use the same key.
        let third = try sale.requireHold(id, seats: ["STALLS-H-12"], key: sale.otherClient)
        let scoped = try sale.confirm(third.token, idempotencyKey: key, key: sale.otherClient)
        #expect(scoped.status == 201, "\(scoped)")

        // A key whose confirm failed may be used again.
        let released = try sale.requireHold(id, seats: ["STALLS-H-13"])
        #expect(try sale.release(released.token).status == 204)
        let failedKey = "order-" + TestCluster.randomHex(bytes: 8)
        expectError(try sale.confirm(released.token, idempotencyKey: failedKey), status: 409, code: "hold_not_active")
        let fourth = try sale.requireHold(id, seats: ["STALLS-H-14"])
        let reusedAfterFailure = try sale.confirm(fourth.token, idempotencyKey: failedKey)
        #expect(reusedAfterFailure.status == 201, "\(reusedAfterFailure)")
        #expect(try await sale.bookingCount(id) == 4)
        try await sale.expectConsistent(id)
    }

    @Test func expiredHoldIsNotConfirmed() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let seats = ["CIRCLE-B-20", "CIRCLE-B-21"]
        let hold = try sale.requireHold(id, seats: seats, ttl: 1)
        try await sale.waitUntilExpired(id, hold.id)

        let expired = try sale.confirm(hold.token, idempotencyKey: "late-" + TestCluster.randomHex(bytes: 6))
        expectError(expired, status: 410, code: "hold_expired")
        #expect(try await sale.bookingCount(id) == 0)
        #expect(try await sale.server.sqlInt("SELECT count(*) AS n FROM seat_bookings WHERE event_id = \(id)") == 0)
        #expect(try await sale.storedStatuses(id, seats).values.allSatisfy { $0 != "booked" })
        #expect(try sale.eventCounts(id)["booked"] == 0)
        #expect(try sale.getHold(hold.token).json()["status"]?.catalogString == "expired")

        // The seats can be held and booked again.
        let again = try sale.book(id, seats: seats, customer: "u-2")
        #expect(Set(again.seats) == Set(seats))
        expectError(try sale.confirm(hold.token), status: 410, code: "hold_expired")
        #expect(try await sale.bookingCount(id) == 1)
        try await sale.expectConsistent(id)
    }

    // MARK: - Reading

    @Test func bookingIsReadable() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let booking = try sale.book(id, seats: ["STALLS-J-5", "STALLS-J-6"], customer: "reader")
        let read = try sale.getBooking(booking.id)
        #expect(read.status == 200, "\(read)")
        #expect(jsonDifference(try read.json(), booking.json) == nil, "\(read) vs \(booking.json)")

        expectError(try sale.getBooking(999_999_999), status: 404, code: "not_found")
        expectError(try sale.send("GET", "/v1/bookings/abc", key: sale.client), status: 404)
        expectError(try sale.send("GET", "/v1/bookings/\(booking.id)", key: nil), status: 401)
        expectError(try sale.getBooking(booking.id, key: sale.organizer), status: 403)
        // Another client's booking is not its to read (403 not the owner, or 404).
        let foreign = try sale.getBooking(booking.id, key: sale.otherClient)
        #expect(foreign.status == 403 || foreign.status == 404, "\(foreign)")
        // Nor to cancel.
        let foreignCancel = try sale.cancel(booking.id, key: sale.otherClient)
        #expect(foreignCancel.status == 403 || foreignCancel.status == 404, "\(foreignCancel)")
        #expect(try await sale.storedStatuses(id, booking.seats).values.allSatisfy { $0 == "booked" })
    }

    @Test func customerHistoryIsNewestFirstAndPaginated() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let customer = "hist-" + TestCluster.randomHex(bytes: 6)
        var made: [SaleBooking] = []
        for seat in ["STALLS-K-1", "STALLS-K-2", "STALLS-K-3"] {
            made.append(try sale.book(id, seats: [seat], customer: customer))
            try await Task.sleep(for: .milliseconds(5))
        }
        // Someone else's booking is not in the history.
        _ = try sale.book(id, seats: ["STALLS-K-4"], customer: customer + "-other")

        let all = try sale.send("GET", "/v1/customers/\(customer)/bookings", key: sale.client)
        #expect(all.status == 200, "\(all)")
        let json = try all.json()
        let items = try #require(json["items"]?.catalogArray, "\(all)")
        #expect(items.compactMap { $0["booking_id"]?.catalogInt } == made.reversed().map(\.id), "not newest first: \(all)")
        #expect(json["next_cursor"]?.isCatalogNull == true, "\(all)")
        for item in items {
            let mine = try #require(made.first { $0.id == item["booking_id"]?.catalogInt })
            #expect(jsonDifference(item, mine.json) == nil, "\(item) vs \(mine.json)")
        }
        let times = items.compactMap { $0["created_at"]?.catalogString }
        #expect(times == times.sorted(by: >), "\(times)")

        // One at a time.
        var walked: [Int] = []
        var cursor: String?
        var pages = 0
        repeat {
            pages += 1
            let page = try sale.send(
                "GET", "/v1/customers/\(customer)/bookings?limit=1" + (cursor.map { "&cursor=\(pathSegment($0))" } ?? ""), key: sale.client)
            #expect(page.status == 200, "\(page)")
            let pageJSON = try page.json()
            let pageItems = try #require(pageJSON["items"]?.catalogArray, "\(page)")
            #expect(pageItems.count <= 1)
            walked += pageItems.compactMap { $0["booking_id"]?.catalogInt }
            let next = try #require(pageJSON["next_cursor"], "\(page)")
            cursor = next.catalogString
            #expect(cursor != nil || next.isCatalogNull, "\(page)")
        } while cursor != nil && pages < 6
        #expect(cursor == nil, "the walk did not end")
        #expect(walked == made.reversed().map(\.id), "\(walked)")
        #expect(pages <= 4)

        let none = try sale.send("GET", "/v1/customers/nobody-\(TestCluster.randomHex(bytes: 6))/bookings", key: sale.client)
        #expect(none.status == 200, "\(none)")
        #expect(try none.json()["items"]?.catalogArray?.isEmpty == true)
        #expect(try none.json()["next_cursor"]?.isCatalogNull == true)

        for query in ["cursor=garbage", "limit=0", "limit=501", "limit=x"] {
            expectError(try sale.send("GET", "/v1/customers/\(customer)/bookings?\(query)", key: sale.client), status: 400)
        }
        expectError(try sale.send("GET", "/v1/customers/\(customer)/bookings", key: nil), status: 401)
        expectError(try sale.send("GET", "/v1/customers/\(customer)/bookings", key: sale.organizer), status: 403)
    }

    @Test func customerIdsAreAnyTextUpTo128Characters() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        // Spaces, a slash, non-ASCII: the history path takes the id percent-encoded.
        let customer = "Zoë Smith/42 \(TestCluster.randomHex(bytes: 4))"
        let booking = try sale.book(id, seats: ["STALLS-M-20"], customer: customer)
        #expect(booking.customer == customer)
        let history = try sale.send("GET", "/v1/customers/\(pathSegment(customer))/bookings", key: sale.client)
        #expect(history.status == 200, "\(history)")
        let items = try history.json()["items"]?.catalogArray ?? []
        #expect(items.compactMap { $0["booking_id"]?.catalogInt } == [booking.id], "\(history)")
        #expect(items.first?["customer"]?.catalogString == customer)

        // 128 characters of two UTF-8 bytes each are 128 characters.
        let accented = String(repeating: "é", count: 128)
        let long = try sale.hold(id, seats: ["STALLS-M-21"], customer: accented)
        #expect(long.status == 201, "\(long)")
        // Combining marks: whichever way they are counted, the answer is 201 or 422, never a 5xx.
        let combining = String(repeating: "e\u{301}", count: 100)
        let marked = try sale.hold(id, seats: ["STALLS-M-22"], customer: combining)
        #expect(marked.status == 201 || marked.status == 422, "\(marked)")
        // A NUL character (valid JSON, not storable as PostgreSQL text): refused, or kept exactly.
        let nul = try sale.send(
            "POST", "/v1/events/\(id)/holds", key: sale.client, json: #"{"customer": "a\u0000b", "seats": ["STALLS-M-23"]}"#)
        #expect(nul.status == 201 || nul.status == 422, "\(nul)")
        if nul.status == 201 {
            #expect(try nul.json()["customer"]?.catalogString == "a\u{0}b", "\(nul)")
            let token = try #require(try nul.json()["token"]?.catalogString)
            #expect(try sale.getHold(token).json()["customer"]?.catalogString == "a\u{0}b", "the customer was not kept as sent")
        }
        try await sale.expectConsistent(id)
    }

    // MARK: - Cancelling

    @Test func cancelSomeSeatsThenTheRest() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let seats = ["STALLS-L-10", "STALLS-L-11", "STALLS-L-12", "STALLS-L-13"]
        let booking = try sale.book(id, seats: seats, customer: "canceller")
        let bookedVersion = try sale.seatStatus(id).version

        let partial = try sale.cancel(booking.id, seats: ["STALLS-L-11"])
        #expect(partial.status == 200, "\(partial)")
        #expect(try partial.json()["status"]?.catalogString == "partially_cancelled", "\(partial)")
        #expect(try partial.json()["booking_id"]?.catalogInt == booking.id)
        let afterPartial = try sale.seatStatus(id)
        #expect(afterPartial.seats["STALLS-L-11"] == "free")
        #expect(["STALLS-L-10", "STALLS-L-12", "STALLS-L-13"].allSatisfy { afterPartial.seats[$0] == "booked" })
        #expect(afterPartial.version > bookedVersion)
        #expect(try sale.eventCounts(id)["booked"] == 3)
        #expect(try sale.getBooking(booking.id).json()["status"]?.catalogString == "partially_cancelled")
        #expect(try await sale.server.sqlInt("""
            SELECT count(*) AS n FROM seat_bookings WHERE event_id = \(id) AND booking_id = \(booking.id) AND cancelled_at IS NOT NULL
            """) == 1)

        // The freed seat can be sold again.
        let resold = try sale.book(id, seats: ["STALLS-L-11"], customer: "second-chance", key: sale.otherClient)
        #expect(resold.seats == ["STALLS-L-11"])

        // Already cancelled, not in the booking, unknown: 422, nothing changes.
        expectValidation(try sale.cancel(booking.id, seats: ["STALLS-L-11"]), paths: ["seats"])
        expectValidation(try sale.cancel(booking.id, seats: ["STALLS-L-14"]), paths: ["seats"])
        expectValidation(try sale.cancel(booking.id, seats: ["STALLS-L-10", "STALLS-L-14"]), paths: ["seats"])
        expectValidation(try sale.cancel(booking.id, seats: ["STALLS-Z-1"]), paths: ["seats"])
        expectError(try sale.send("POST", "/v1/bookings/\(booking.id)/cancel", key: sale.client, json: #"{"seats": "STALLS-L-10"}"#), status: 400)
        #expect(try await sale.storedStatuses(id, ["STALLS-L-10", "STALLS-L-12", "STALLS-L-13"]).values.allSatisfy { $0 == "booked" })
        #expect(try sale.getBooking(booking.id).json()["status"]?.catalogString == "partially_cancelled")

        // The rest, by naming no seats (an empty body needs no Content-Type).
        let rest = try sale.cancel(booking.id)
        #expect(rest.status == 200, "\(rest)")
        #expect(try rest.json()["status"]?.catalogString == "cancelled", "\(rest)")
        let afterAll = try sale.seatStatus(id)
        #expect(["STALLS-L-10", "STALLS-L-12", "STALLS-L-13"].allSatisfy { afterAll.seats[$0] == "free" })
        #expect(afterAll.seats["STALLS-L-11"] == "booked", "the resold seat was cancelled with the old booking")
        #expect(try sale.eventCounts(id)["booked"] == 1)
        #expect(try sale.getBooking(booking.id).json()["status"]?.catalogString == "cancelled")

        // A cancelled booking: 409, with or without seats.
        expectError(try sale.cancel(booking.id), status: 409, code: "booking_cancelled")
        expectError(try sale.cancel(booking.id, seats: ["STALLS-L-10"]), status: 409, code: "booking_cancelled")
        try await sale.expectConsistent(id)
    }

    @Test func cancelEverySeatByName() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let seats = ["CIRCLE-D-1", "CIRCLE-D-2"]
        let booking = try sale.book(id, seats: seats)
        let response = try sale.cancel(booking.id, seats: seats)
        #expect(response.status == 200, "\(response)")
        #expect(try response.json()["status"]?.catalogString == "cancelled", "\(response)")
        #expect(try await sale.storedStatuses(id, seats).values.allSatisfy { $0 == "free" })
        expectError(try sale.cancel(booking.id, seats: ["CIRCLE-D-1"]), status: 409, code: "booking_cancelled")

        // An empty list of seats is not "all".
        let other = try sale.book(id, seats: ["CIRCLE-D-5"])
        let empty = try sale.cancel(other.id, seats: [])
        #expect(empty.status == 422, "\(empty)")
        #expect(try await sale.storedStatuses(id, ["CIRCLE-D-5"]) == ["CIRCLE-D-5": "booked"])

        expectError(try sale.cancel(999_999_999), status: 404, code: "not_found")
        expectError(try sale.cancel(other.id, key: sale.organizer), status: 403)
        expectError(try sale.send("POST", "/v1/bookings/\(other.id)/cancel", key: nil), status: 401)
        try await sale.expectConsistent(id)
    }
}

import Foundation
import PG
import Quorix
import QuorixTestSupport
import Testing

/// Deliveries (API.md "Reports, webhooks, operations"): written in the transaction of the change,
/// POSTed signed with the API's own view of the object, retried with the same id until the
/// receiver takes them, kept across a crash.
@Suite struct WebhookDeliveryTests {
    /// The `data` of a delivery against the API's answer for the same object.
    func expectSameView(_ delivered: JSONValue?, _ api: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let delivered else {
            Issue.record("the delivery has no data", sourceLocation: sourceLocation)
            return
        }
        #expect(jsonDifference(delivered, api) == nil, "\(jsonDifference(delivered, api) ?? "")", sourceLocation: sourceLocation)
    }

    func expectEnvelope(_ delivery: ReceivedDelivery, type: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let json = delivery.json
        #expect(json["type"]?.catalogString == type, sourceLocation: sourceLocation)
        #expect(delivery.id.flatMap(UUID.init(uuidString:)) != nil, "id \(delivery.id ?? "none")", sourceLocation: sourceLocation)
        #expect(delivery.headers["quorix-delivery"] == delivery.id, sourceLocation: sourceLocation)
        #expect(isContractTime(json["created_at"]?.catalogString), "\(json)", sourceLocation: sourceLocation)
        #expect(delivery.headers["content-type"] == "application/json", sourceLocation: sourceLocation)
        #expect(delivery.path == "/hooks/quorix", sourceLocation: sourceLocation)
        let keys = Set(json.catalogMembers?.map(\.0) ?? [])
        #expect(keys == ["id", "type", "created_at", "data"], "\(keys)", sourceLocation: sourceLocation)
    }

    @Test(.timeLimit(.minutes(1)))
    func eachChangeIsDeliveredSignedWithTheAPIsViewOfItsObject() async throws {
        let sale = try await webhookServer.fixture()
        let receiver = try WebhookReceiver()
        let secret = try sale.subscribeAll(receiver)
        let id = try sale.newEvent()

        // booking.confirmed
        let booking = try sale.book(id, seats: ["STALLS-C-3", "STALLS-C-4", "STALLS-C-5"], customer: "hooked")
        let confirmed = try #require(try await receiver.waitFor("booking.confirmed").first)
        expectEnvelope(confirmed, type: "booking.confirmed")
        expectSigned(confirmed, secret: secret)
        expectSameView(confirmed.data, try sale.getBooking(booking.id).json())
        #expect(confirmed.data?["total_cents"]?.catalogInt == booking.totalCents && booking.totalCents > 0)

        // A waiting entry, and hold.released whose seats it is offered: waitlist.offered.
        let entry = try sale.requireEntry(id, customer: "waiting", quantity: 2)
        let released = try sale.requireHold(id, seats: ["STALLS-D-1", "STALLS-D-2"], customer: "changes-mind")
        #expect(try sale.release(released.token).status == 204)
        let releasedDelivery = try #require(try await receiver.waitFor("hold.released").first)
        expectEnvelope(releasedDelivery, type: "hold.released")
        expectSigned(releasedDelivery, secret: secret)
        expectSameView(releasedDelivery.data, try sale.getHold(released.token).json())
        #expect(releasedDelivery.data?["token"] == nil)
        let offered = try #require(try await receiver.waitFor("waitlist.offered").first)
        expectEnvelope(offered, type: "waitlist.offered")
        // As GET /v1/waitlist/{id} shows it, but without the offer's token (the customer's secret).
        var entryView = try sale.entry(entry)
        #expect(entryView["offer"]?["token"]?.catalogString?.isEmpty == false)
        if case .object(var members) = entryView, let offerIndex = members.firstIndex(where: { $0.0 == "offer" }),
            case .object(let offer) = members[offerIndex].1 {
            members[offerIndex].1 = .object(offer.filter { $0.0 != "token" })
            entryView = .object(members)
        }
        expectSameView(offered.data, entryView)
        #expect(offered.data?["status"]?.catalogString == "offered" && offered.data?["offer"]?["seats"]?.catalogArray?.count == 2)

        // hold.expired, released by the sweeper with no request touching the hold.
        let expiring = try sale.requireHold(id, seats: ["STALLS-E-7"], customer: "slow", ttl: 1)
        let expired = try #require(try await receiver.waitFor("hold.expired", seconds: 8).first)
        expectEnvelope(expired, type: "hold.expired")
        expectSigned(expired, secret: secret)
        expectSameView(expired.data, try sale.getHold(expiring.token).json())
        #expect(expired.data?["status"]?.catalogString == "expired")

        // booking.cancelled, partly and then wholly.
        #expect(try sale.cancel(booking.id, seats: ["STALLS-C-4"]).status == 200)
        let partly = try #require(try await receiver.waitFor("booking.cancelled").first)
        expectEnvelope(partly, type: "booking.cancelled")
        expectSameView(partly.data, try sale.getBooking(booking.id).json())
        #expect(partly.data?["status"]?.catalogString == "partially_cancelled")
        #expect(partly.data?["cancelled_seats"]?.catalogArray?.compactMap(\.catalogString) == ["STALLS-C-4"])
        #expect(try sale.cancel(booking.id).status == 200)
        let wholly = try #require(try await receiver.waitFor("booking.cancelled", count: 2).last)
        expectSameView(wholly.data, try sale.getBooking(booking.id).json())
        #expect(wholly.data?["status"]?.catalogString == "cancelled")

        // Each delivery once (the receiver answered 200 every time), each id its own, all recorded as delivered.
        let all = receiver.deliveries
        #expect(Set(all.compactMap(\.id)).count == all.count, "\(all.map { $0.type ?? "?" })")
        let metrics = String(decoding: try sale.server.slowRequest("GET", "/metrics").body, as: UTF8.self)
        #expect(metrics.contains(#"quorix_webhook_deliveries_total{outcome="delivered"}"#), "no delivery counter")
        #expect(try await sale.server.sqlInt("""
            SELECT count(*)::int AS n FROM webhook_outbox WHERE event_id = \(id) AND delivered_at IS NOT NULL AND attempts = 1
            """) == all.count)
    }

    @Test(.timeLimit(.minutes(1)))
    func anOfferThatLapsesIsAnnouncedAsWaitlistExpired() async throws {
        let sale = try await webhookServer.fixture()
        let receiver = try WebhookReceiver()
        _ = try sale.createWebhook(url: receiver.url, events: ["waitlist.expired", "hold.expired"])
        let id = try sale.newEvent()
        let patched = try sale.send("PATCH", "/v1/events/\(id)", key: sale.organizer, json: #"{"waitlist_offer_ttl_seconds": 1}"#)
        #expect(patched.status == 200, "\(patched)")
        let entry = try sale.requireEntry(id, customer: "too-late", quantity: 1)
        let hold = try sale.requireHold(id, seats: ["STALLS-K-1"])
        #expect(try sale.release(hold.token).status == 204)
        let lapsed = try #require(try await receiver.waitFor("waitlist.expired", seconds: 8).first)
        let view = try sale.entry(entry)
        #expect(view["status"]?.catalogString == "expired" && view["offer"]?.isCatalogNull == true, "\(view)")
        expectSameView(lapsed.data, view)
        // The offer was a hold of its own, and it expired too; the released hold was not subscribed to.
        let offerHold = try #require(try await receiver.waitFor("hold.expired").first)
        #expect(offerHold.data?["customer"]?.catalogString == "too-late" && offerHold.data?["status"]?.catalogString == "expired")
        #expect(receiver.deliveries.count == 2, "\(receiver.deliveries.map { $0.type ?? "?" })")
    }

    @Test(.timeLimit(.minutes(1)))
    func onlyTheOwnersEventsAndSubscribedTypesAreWrittenAndDelivered() async throws {
        let mine = try await webhookServer.fixture()
        let theirs = try await webhookServer.fixture()
        let receiver = try WebhookReceiver()
        _ = try mine.createWebhook(url: receiver.url, events: ["hold.released"])
        let myEvent = try mine.newEvent()
        let theirEvent = try theirs.newEvent()

        let other = try theirs.requireHold(theirEvent, seats: ["STALLS-A-1"])
        #expect(try theirs.release(other.token).status == 204)
        _ = try mine.book(myEvent, seats: ["STALLS-A-2"])
        let hold = try mine.requireHold(myEvent, seats: ["STALLS-A-1"])
        #expect(try mine.release(hold.token).status == 204)

        let delivered = try await receiver.waitFor("hold.released")
        #expect(delivered.count == 1 && delivered.first?.data?["hold_id"]?.catalogInt == hold.id)
        // Nothing written for the other organizer's event, nor for the type not subscribed to.
        #expect(try await mine.server.sqlInt("SELECT count(*)::int AS n FROM webhook_outbox WHERE event_id = \(theirEvent)") == 0)
        #expect(try await mine.server.sqlInt("SELECT count(*)::int AS n FROM webhook_outbox WHERE event_id = \(myEvent)") == 1)

        // A deleted webhook gets nothing more, and nothing more is written for it.
        let list = try mine.send("GET", "/v1/webhooks", key: mine.organizer).json()
        let webhookID = try #require(list["items"]?.catalogArray?.first?["id"]?.catalogInt)
        #expect(try mine.send("DELETE", "/v1/webhooks/\(webhookID)", key: mine.organizer).status == 204)
        let later = try mine.requireHold(myEvent, seats: ["STALLS-A-3"])
        #expect(try mine.release(later.token).status == 204)
        try await Task.sleep(for: .milliseconds(800))
        #expect(receiver.deliveries.count == 1)
        #expect(try await mine.server.sqlInt("SELECT count(*)::int AS n FROM webhook_outbox WHERE event_id = \(myEvent)") == 1)
    }

    @Test(.timeLimit(.minutes(1)))
    func aFailingReceiverGetsTheSameDeliveryAgainUntilItTakesIt() async throws {
        let sale = try await webhookServer.fixture()
        let receiver = try WebhookReceiver()
        receiver.answer(500)
        let secret = try sale.subscribeAll(receiver)
        let id = try sale.newEvent()
        let hold = try sale.requireHold(id, seats: ["STALLS-F-1"])
        #expect(try sale.release(hold.token).status == 204)

        // Refused twice with 500: the same id each time, each try signed anew.
        let refused = try await receiver.waitFor("hold.released", count: 2, seconds: 8)
        #expect(Set(refused.map(\.id)).count == 1, "\(refused.map(\.id))")
        for delivery in refused { expectSigned(delivery, secret: secret) }
        #expect(refused[1].receivedAt.timeIntervalSince(refused[0].receivedAt) >= 0.4, "retried without backing off")
        let stored = try #require(try await sale.server.sql("""
            SELECT delivery_id::text AS id, last_error FROM webhook_outbox WHERE event_id = \(id)
            """).first)
        #expect(try stored.string("id").lowercased() == refused[0].id?.lowercased())
        #expect(try stored.optionalString("last_error")?.contains("500") == true)
        let logged = try await sale.server.waitForLog(containing: refused[0].id ?? "no id")
        #expect(logged.contains(#""msg":"webhook delivery failed""#) && logged.contains("500"), "\(logged)")

        // Then down (connections refused), then up and answering 200.
        receiver.stop()
        let downAt = try await sale.server.sqlInt("SELECT attempts AS n FROM webhook_outbox WHERE event_id = \(id)")
        try await Task.sleep(for: .seconds(3))
        let whileDown = try await sale.server.sqlInt("SELECT attempts AS n FROM webhook_outbox WHERE event_id = \(id)")
        #expect(whileDown > downAt, "no try while the receiver was down (\(downAt) then \(whileDown))")
        receiver.answer(200)
        try receiver.restart()
        let deadline = ContinuousClock.now + .seconds(20)
        while try await sale.server.sqlInt("""
            SELECT count(*)::int AS n FROM webhook_outbox WHERE event_id = \(id) AND delivered_at IS NOT NULL
            """) == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        let final = try #require(try await sale.server.sql("""
            SELECT attempts, delivered_at IS NOT NULL AS delivered FROM webhook_outbox WHERE event_id = \(id)
            """).first)
        #expect(try final.bool("delivered"))
        #expect(try final.int("attempts") > 3)
        let all = receiver.deliveries
        #expect(all.count >= 3 && Set(all.map(\.id)).count == 1, "\(all.map(\.id))")
        expectSigned(try #require(all.last), secret: secret)
    }

    /// DNS rebinding: a name is accepted when the webhook is made, but each delivery looks it up
    /// again and does not connect when it resolves only to private addresses.
    @Test(.timeLimit(.minutes(1)))
    func aNameThatResolvesToAPrivateAddressIsNotDialled() async throws {
        // This machine's own name resolves to a private address (127.0.0.1 or 127.0.1.1 in
        // /etc/hosts, a container's bridge address): the test needs that, and says so otherwise.
        let name = ProcessInfo.processInfo.hostName.lowercased()
        let addresses = Host(name: name).addresses
        try #require(!addresses.isEmpty && addresses.allSatisfy { IPAddress($0)?.isPrivate == true },
            "this test needs the host name \(name) to resolve to private addresses only; it resolves to \(addresses)")
        let server = try await sharedServer.get()
        let sale = try await WebhookServer.fixture(on: server)
        let receiver = try WebhookReceiver()
        _ = try sale.createWebhook(url: "http://\(name):\(receiver.port)/hooks/quorix", events: ["hold.released"])
        let id = try sale.newEvent()
        let hold = try sale.requireHold(id, seats: ["STALLS-J-1"])
        #expect(try sale.release(hold.token).status == 204)
        let deadline = ContinuousClock.now + .seconds(10)
        var error: String?
        while error == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            error = try await server.sql("SELECT last_error FROM webhook_outbox WHERE event_id = \(id)").first?.optionalString("last_error")
        }
        #expect(error?.contains("resolves only to loopback, private or link-local addresses") == true, "\(error ?? "no try")")
        #expect(receiver.deliveries.isEmpty)
    }

    /// Two processes on one database deliver from one outbox without delivering anything twice.
    @Test(.timeLimit(.minutes(1)))
    func twoProcessesDeliverEachDeliveryOnce() async throws {
        let first = try await ServerProcess.start(environment: ["QUORIX_WEBHOOK_ALLOW_PRIVATE": "1"])
        let second = try await ServerProcess.start(database: first.databaseConninfo, environment: ["QUORIX_WEBHOOK_ALLOW_PRIVATE": "1"])
        let viaFirst = try await WebhookServer.fixture(on: first)
        let viaSecond = CatalogServer.Fixture(
            server: second, organizer: viaFirst.organizer, otherOrganizer: viaFirst.organizer, client: viaFirst.client,
            otherClient: viaFirst.client, theatreID: viaFirst.theatreID, stadiumID: viaFirst.theatreID)
        let receiver = try WebhookReceiver()
        _ = try viaFirst.createWebhook(url: receiver.url, events: ["hold.released"])
        let id = try viaFirst.newEvent()
        let count = 40
        for index in 0..<count {
            let fixture = index % 2 == 0 ? viaFirst : viaSecond
            let hold = try fixture.requireHold(id, seats: ["STALLS-L-\(index % 20 + 1)"], customer: "c\(index)")
            #expect(try fixture.release(hold.token).status == 204)
        }
        let delivered = try await receiver.waitFor("hold.released", count: count, seconds: 20)
        try await Task.sleep(for: .milliseconds(600))
        #expect(receiver.deliveries.count == count, "\(receiver.deliveries.count) requests for \(count) deliveries")
        #expect(Set(delivered.compactMap(\.id)).count == count)
        func deliveredBy(_ server: ServerProcess) throws -> Int {
            let text = String(decoding: try server.slowRequest("GET", "/metrics").body, as: UTF8.self)
            let line = text.split(separator: "\n").first { $0.hasPrefix(#"quorix_webhook_deliveries_total{outcome="delivered"}"#) }
            return line.flatMap { Double($0.split(separator: " ").last ?? "") }.map { Int($0) } ?? 0
        }
        let counted = (try deliveredBy(first), try deliveredBy(second))
        #expect(counted.0 + counted.1 == count, "first delivered \(counted.0), second \(counted.1)")
    }

    /// A process killed with deliveries pending loses none: the next one delivers them.
    @Test(.timeLimit(.minutes(2)))
    func pendingDeliveriesSurviveAKilledServer() async throws {
        let first = try await ServerProcess.start(environment: ["QUORIX_WEBHOOK_ALLOW_PRIVATE": "1"])
        let sale = try await WebhookServer.fixture(on: first)
        let receiver = try WebhookReceiver()
        receiver.stop()
        _ = try sale.subscribeAll(receiver)
        let id = try sale.newEvent()
        let booking = try sale.book(id, seats: ["STALLS-G-1", "STALLS-G-2"])
        let hold = try sale.requireHold(id, seats: ["STALLS-G-3"])
        #expect(try sale.release(hold.token).status == 204)
        // Tried (and refused) at least once before the kill.
        let deadline = ContinuousClock.now + .seconds(10)
        while try await first.sqlInt("SELECT coalesce(min(attempts), 0)::int AS n FROM webhook_outbox WHERE event_id = \(id)") < 1,
            ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try await first.sqlInt("SELECT count(*)::int AS n FROM webhook_outbox WHERE event_id = \(id) AND attempts >= 1") == 2)
        first.kill()
        #expect(await first.waitForExit(timeout: .seconds(10)) != nil)
        #expect(try await first.sqlInt("SELECT count(*)::int AS n FROM webhook_outbox WHERE event_id = \(id) AND delivered_at IS NULL") == 2)

        try receiver.restart()
        let second = try await ServerProcess.start(database: first.databaseConninfo, environment: ["QUORIX_WEBHOOK_ALLOW_PRIVATE": "1"])
        // A delivery claimed at the instant of the kill waits out its 30 s lease.
        let confirmed = try await receiver.waitFor("booking.confirmed", seconds: 45)
        let released = try await receiver.waitFor("hold.released", seconds: 45)
        #expect(confirmed.first?.data?["booking_id"]?.catalogInt == booking.id)
        #expect(released.first?.data?["hold_id"]?.catalogInt == hold.id)
        let undelivered = try await second.sqlInt("""
            SELECT count(*)::int AS n FROM webhook_outbox WHERE event_id = \(id) AND delivered_at IS NULL
            """)
        #expect(undelivered == 0)
        second.terminate()
        #expect(await second.waitForExit() == 0)
    }

    /// SIGTERM with a POST in flight to a receiver that never answers: the server exits at once
    /// with every handle closed, and the delivery stays in the outbox for the next process.
    @Test(.timeLimit(.minutes(1)))
    func shutdownAbandonsAPostInFlightAndClosesEveryHandle() async throws {
        let server = try await ServerProcess.start(environment: ["QUORIX_WEBHOOK_ALLOW_PRIVATE": "1"])
        let sale = try await WebhookServer.fixture(on: server)
        let receiver = try WebhookReceiver()
        receiver.answer(0)
        _ = try sale.subscribeAll(receiver)
        let id = try sale.newEvent()
        let hold = try sale.requireHold(id, seats: ["STALLS-H-9"])
        #expect(try sale.release(hold.token).status == 204)
        _ = try await receiver.waitFor("hold.released")

        let stopping = ContinuousClock.now
        server.terminate()
        let code = await server.waitForExit(timeout: .seconds(15))
        #expect(code == 0, "exit \(code.map(String.init) ?? "none"); stderr: \(server.process.standardError)")
        #expect(ContinuousClock.now - stopping < .seconds(4), "the server waited for the receiver")
        ShutdownTests.expectCleanStop(server)
        #expect(try await server.sqlInt("""
            SELECT count(*)::int AS n FROM webhook_outbox WHERE event_id = \(id) AND delivered_at IS NULL AND attempts = 1
            """) == 1)
    }
}

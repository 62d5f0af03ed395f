import Foundation
import PG
import QuorixTestSupport
import Synchronization
import Testing
@testable import Quorix

/// Live seat status over LISTEN/NOTIFY: `GET .../seats` from the in-memory snapshot, equal to the
/// database; the stream, in order and without gaps, with replay; across processes.
@Suite(.serialized) struct LiveSeatTests {
    /// Two processes on one database, with a theatre map and keys.
    struct Pair {
        let first: CatalogServer.Fixture
        let second: CatalogServer.Fixture
        let labels: [String]

        static func start(environment: [String: String] = [:]) async throws -> Pair {
            let first = try await ServerProcess.start(environment: environment)
            let second = try await ServerProcess.start(database: first.databaseConninfo, environment: environment)
            let organizer = try first.createKey(role: "organizer", name: "live organizer")
            let client = try first.createKey(role: "client", name: "live client")
            let theatre = try first.uploadSample(SampleMaps.theatre, key: organizer)
            func fixture(_ server: ServerProcess) -> CatalogServer.Fixture {
                CatalogServer.Fixture(
                    server: server, organizer: organizer, otherOrganizer: organizer, client: client, otherClient: client,
                    theatreID: theatre, stadiumID: theatre)
            }
            let pair = Pair(first: fixture(first), second: fixture(second), labels: [])
            return Pair(first: pair.first, second: pair.second, labels: try await pair.first.labels(seatmapID: theatre))
        }
    }

    /// The event's version and statuses as the database has them.
    static func stored(_ sale: CatalogServer.Fixture, _ eventID: Int) async throws -> (version: Int, statuses: [String: String]) {
        let version = try await sale.server.sqlInt("SELECT coalesce(sum(version), 0)::bigint AS n FROM event_seats WHERE event_id = \(eventID)")
        return (version, try await sale.storedStatuses(eventID))
    }

    /// `GET .../seats` of one process: version, statuses, ETag.
    static func served(_ sale: CatalogServer.Fixture, _ eventID: Int) throws -> (version: Int, statuses: [String: String], etag: String?) {
        let response = try sale.send("GET", "/v1/events/\(eventID)/seats", key: nil)
        guard response.status == 200 else { throw SupportError("GET seats: \(response)") }
        let json = try response.json()
        let seats = try #require(json["seats"]?.catalogMembers)
        return (json["version"]?.catalogInt ?? -1, Dictionary(uniqueKeysWithValues: seats.map { ($0.0, $0.1.catalogString ?? "?") }),
                response.header("ETag"))
    }

    /// Polls until the process serves the database's version (its announcements arrived).
    static func waitUntilCurrent(_ sale: CatalogServer.Fixture, _ eventID: Int, version: Int) async throws -> (version: Int, statuses: [String: String], etag: String?) {
        let deadline = ContinuousClock.now + .seconds(3)
        var seen = try served(sale, eventID)
        while seen.version != version, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            seen = try served(sale, eventID)
        }
        return seen
    }

    static func statementsSent(_ server: ServerProcess) throws -> Int {
        let text = String(decoding: try server.slowRequest("GET", "/metrics").body, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("quorix_db_statements_total ") {
            return Int(Double(line.split(separator: " ")[1]) ?? -1)
        }
        return -1
    }

    @Test func afterABurstAcrossTwoProcessesEachServesWhatTheDatabaseHas() async throws {
        let pair = try await Pair.start()
        let id = try pair.first.newEvent()
        // Both processes load the event's snapshot before the burst.
        _ = try Self.served(pair.first, id)
        _ = try Self.served(pair.second, id)
        // 16 threads race for 40 seats through both processes: holds, then confirm or release.
        let seats = Array(pair.labels.prefix(40))
        let outcomes = Mutex([Int: Int]())
        DispatchQueue.concurrentPerform(iterations: 16) { worker in
            for round in 0..<12 {
                let sale = (worker + round) % 2 == 0 ? pair.first : pair.second
                let other = (worker + round) % 2 == 0 ? pair.second : pair.first
                let pick = (worker * 7 + round * 3) % 39
                guard let response = try? sale.hold(id, seats: [seats[pick], seats[pick + 1]], customer: "w\(worker)") else { continue }
                outcomes.withLock { $0[response.status, default: 0] += 1 }
                guard response.status == 201, let hold = try? sale.parseHold(response) else { continue }
                // The other process finishes it: confirm most, release some.
                _ = try? (round % 3 == 0 ? other.release(hold.token) : other.confirm(hold.token))
            }
        }
        let counted = outcomes.withLock { $0 }
        #expect((counted[201] ?? 0) > 0 && (counted[409] ?? 0) > 0, "the burst should both win and lose: \(counted)")
        #expect(Set(counted.keys).isSubset(of: [201, 409]), "\(counted)")
        let truth = try await Self.stored(pair.first, id)
        for sale in [pair.first, pair.second] {
            let seen = try await Self.waitUntilCurrent(sale, id, version: truth.version)
            #expect(seen.version == truth.version)
            #expect(seen.statuses == truth.statuses, "\(truth.statuses.filter { seen.statuses[$0.key] != $0.value }.prefix(10))")
            #expect(seen.etag == "\"\(truth.version)\"")
        }
        try await pair.first.expectConsistent(id)
        // Served from memory: reading again, with and without a filter, sends no statement.
        _ = try Self.served(pair.second, id)
        let before = try Self.statementsSent(pair.second.server)
        for _ in 0..<50 { _ = try Self.served(pair.second, id) }
        let filtered = try pair.second.send("GET", "/v1/events/\(id)/seats?status=booked", key: nil)
        #expect(filtered.status == 200)
        let notModified = try pair.second.send("GET", "/v1/events/\(id)/seats", key: nil, headers: [("If-None-Match", "\"\(truth.version)\"")])
        #expect(notModified.status == 304)
        // The database path sends two statements a read (over 100 here); what remains is the
        // event row, re-read once a second, and the sweeper's backstop sweeps.
        let sent = try Self.statementsSent(pair.second.server) - before
        #expect(sent <= 10, "\(sent) statements for 52 reads")
    }

    /// A snapshot loaded after seats changed reads their states and each held seat's expiry:
    /// the second process, loading the event only now, refuses a held seat without a statement
    /// (it would send one for a seat whose hold it believed expired) and frees it once its hold
    /// runs out.
    @Test func aSnapshotLoadedLaterKnowsHeldSeatsAndTheirExpiry() async throws {
        let pair = try await Pair.start()
        let id = try pair.first.newEvent(holdTTL: 600)
        let held = try pair.first.requireHold(id, seats: [pair.labels[0], pair.labels[1]], customer: "early")
        let shortLived = try pair.first.requireHold(id, seats: [pair.labels[2]], customer: "brief", ttl: 2)
        _ = try pair.first.book(id, seats: [pair.labels[3]])
        try pair.first.block(id, [pair.labels[4]])
        let truth = try await Self.stored(pair.first, id)
        let seen = try await Self.waitUntilCurrent(pair.second, id, version: truth.version)
        #expect(seen.statuses == truth.statuses)
        #expect(seen.statuses[pair.labels[0]] == "held" && seen.statuses[pair.labels[3]] == "booked" && seen.statuses[pair.labels[4]] == "blocked")

        let before = try HoldBatchTests.metric(pair.second.server, "quorix_hold_statement_holds_total")
        let refused = try pair.second.hold(id, seats: [pair.labels[0], pair.labels[1]], customer: "late")
        expectError(refused, status: 409, code: "seats_unavailable")
        #expect(Set(errorSeats(refused) ?? []) == [pair.labels[0], pair.labels[1]])
        #expect(try HoldBatchTests.metric(pair.second.server, "quorix_hold_statement_holds_total") == before, "the refusal should come from the snapshot")
        #expect(try pair.first.getHold(held.token).status == 200)

        // Past the short hold's expiry the snapshot lets the seat go to the database, which takes it.
        try await Task.sleep(for: .milliseconds(2_300))
        let taken = try pair.second.hold(id, seats: [shortLived.seats[0]], customer: "after expiry")
        #expect(taken.status == 201, "\(taken)")
        try await pair.first.expectConsistent(id)
    }

    /// The changes of a stream applied to its opening snapshot give `statuses`; every version
    /// rises; returns the versions seen.
    static func replay(_ messages: [SSEMessage], onto start: [String: String]) throws -> (statuses: [String: String], versions: [Int]) {
        var statuses = start
        var versions: [Int] = []
        for message in messages {
            let json = try JSONParser.parse(Array(message.data.utf8))
            switch message.event {
            case "snapshot":
                statuses = Dictionary(uniqueKeysWithValues: try #require(json["seats"]?.catalogMembers).map { ($0.0, $0.1.catalogString ?? "?") })
                versions.append(json["version"]?.catalogInt ?? -1)
            case "seats":
                for change in json["changes"]?.catalogArray ?? [] {
                    statuses[change["seat"]?.catalogString ?? "?"] = change["status"]?.catalogString
                }
                versions.append(json["version"]?.catalogInt ?? -1)
            default:
                continue
            }
            #expect(message.id == versions.last.map(String.init), "id: is the version")
        }
        return (statuses, versions)
    }

    @Test func aStreamSeesEveryChangeInOrderFromBothProcessesAndReplaysAfterReconnecting() async throws {
        let pair = try await Pair.start(environment: ["QUORIX_STREAM_HEARTBEAT_MS": "200"])
        let id = try pair.first.newEvent()
        let stream = try SSETestClient(port: pair.first.port, path: "/v1/events/\(id)/stream")
        defer { stream.close() }
        #expect(stream.status == 200)
        #expect(stream.header("Content-Type") == "text/event-stream")
        let opening = try #require(try stream.next())
        #expect(opening.event == "snapshot", "without Last-Event-ID the stream opens with the whole status")
        // Changes through the second process, and seats blocked and unblocked through the first.
        var tokens: [String] = []
        for pair_ in 0..<6 {
            let hold = try pair.second.requireHold(id, seats: [pair.labels[2 * pair_], pair.labels[2 * pair_ + 1]], customer: "s\(pair_)")
            tokens.append(hold.token)
        }
        #expect(try pair.second.confirm(tokens[0]).status == 201)
        #expect(try pair.second.release(tokens[1]).status == 204)
        try pair.first.block(id, Array(pair.labels[100..<110]))
        let truth = try await Self.stored(pair.first, id)
        let messages = try stream.collect { ($0.id.flatMap { Int($0) } ?? 0) >= truth.version }
        let (statuses, versions) = try Self.replay([opening] + messages, onto: [:])
        #expect(versions.last == truth.version, "the stream reached the database's version: \(versions)")
        #expect(versions == versions.sorted() && Set(versions).count == versions.count, "versions rise: \(versions)")
        #expect(statuses == truth.statuses, "no gaps: the changes rebuild the database's state")
        #expect(messages.count >= 9, "each committed change is one event: \(messages.count)")
        // Heartbeats keep an idle stream open.
        try stream.pump(for: .milliseconds(500))
        #expect(stream.comments >= 1)

        // Reconnecting with the last id seen (at the other process) gets just what was missed.
        let middle = try #require(messages.dropLast(3).last?.id)
        #expect(try pair.second.release(tokens[2]).status == 204)
        let later = try await Self.stored(pair.first, id)
        _ = try await Self.waitUntilCurrent(pair.second, id, version: later.version)
        let resumed = try SSETestClient(port: pair.second.port, path: "/v1/events/\(id)/stream", headers: [("Last-Event-ID", middle)])
        defer { resumed.close() }
        let missed = try resumed.collect { ($0.id.flatMap { Int($0) } ?? 0) >= later.version }
        #expect(missed.first?.event == "seats", "a replay, not a snapshot: \(missed.first?.event ?? "nothing")")
        #expect(missed.count == 4, "the three after \(middle) and the release: \(missed.map { $0.id ?? "-" })")
        let rebuilt = try Self.replay([opening] + Array(messages.dropLast(3)) + missed, onto: [:]).statuses
        #expect(rebuilt == later.statuses)
        // An id this process never reached, or garbage, gets the whole status.
        for unknown in ["\(later.version + 1_000)", "yesterday"] {
            let stale = try SSETestClient(port: pair.second.port, path: "/v1/events/\(id)/stream?last_event_id=\(unknown)")
            defer { stale.close() }
            #expect(try stale.next()?.event == "snapshot", "last_event_id=\(unknown)")
        }
        // More changes than the replay buffer keeps (one statement each): the old id is too old.
        let seatID = try await pair.first.server.sqlInt("SELECT min(seat_id)::int AS n FROM event_seats WHERE event_id = \(id) AND status = 'free'")
        _ = try await pair.first.server.sql("""
            DO $$ BEGIN FOR i IN 1..1100 LOOP
                UPDATE event_seats SET version = nextval('seat_change_version') WHERE event_id = \(unsafeSQL: String(id)) AND seat_id = \(unsafeSQL: String(seatID));
            END LOOP; END $$
            """)
        let churned = try await Self.stored(pair.first, id)
        _ = try await Self.waitUntilCurrent(pair.second, id, version: churned.version)
        let tooOld = try SSETestClient(port: pair.second.port, path: "/v1/events/\(id)/stream", headers: [("Last-Event-ID", middle)])
        defer { tooOld.close() }
        let whole = try #require(try tooOld.next())
        #expect(whole.event == "snapshot" && whole.id == String(churned.version), "\(whole.event) \(whole.id ?? "-")")
    }

    @Test func aWaitlistOfferIsAnnouncedOnTheStream() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        let hold = try sale.requireHold(id, seats: ["STALLS-H-1", "STALLS-H-2"])
        let labels = try await sale.labels(seatmapID: sale.theatreID)
        try sale.block(id, labels.filter { !hold.seats.contains($0) })
        let joined = try sale.send("POST", "/v1/events/\(id)/waitlist", key: sale.client, json: #"{"customer": "w-1", "quantity": 2}"#)
        #expect(joined.status == 201)
        let entry = try #require(try joined.json()["entry_id"]?.catalogInt)
        let stream = try SSETestClient(port: sale.port, path: "/v1/events/\(id)/stream")
        defer { stream.close() }
        #expect(try stream.next()?.event == "snapshot")
        #expect(try sale.release(hold.token).status == 204)
        let seen = try stream.collect { $0.event == "waitlist_offer" }
        let offer = try #require(seen.last)
        #expect(offer.event == "waitlist_offer")
        let data = try JSONParser.parse(Array(offer.data.utf8))
        #expect(data["entry_id"]?.catalogInt == entry)
        #expect(isContractTime(data["expires_at"]?.catalogString))
        // The seats went straight from the released hold to the offer: the stream says held.
        let changes = seen.filter { $0.event == "seats" }.flatMap { (try? JSONParser.parse(Array($0.data.utf8)))?["changes"]?.catalogArray ?? [] }
        #expect(changes.last?["status"]?.catalogString == "held")
    }

    @Test func aProcessThatLostItsListenerReloadsAndItsStreamsCatchUp() async throws {
        let pair = try await Pair.start()
        let id = try pair.first.newEvent()
        let stream = try SSETestClient(port: pair.first.port, path: "/v1/events/\(id)/stream")
        defer { stream.close() }
        #expect(try stream.next()?.event == "snapshot")
        // Cut the first process's LISTEN connection, and change seats while it is away.
        let listeners = try await pair.first.server.sql("""
            SELECT pid FROM pg_stat_activity WHERE application_name = 'quorix seat listener' AND datname = current_database()
            """).rows.map { try $0.int("pid") }
        #expect(listeners.count == 2, "one listener per process: \(listeners)")
        for pid in listeners { _ = try await pair.first.server.sql("SELECT pg_terminate_backend(\(pid))") }
        for index in 0..<5 { _ = try pair.second.requireHold(id, seats: [pair.labels[index]], customer: "gap\(index)") }
        let truth = try await Self.stored(pair.first, id)
        for sale in [pair.first, pair.second] {
            let seen = try await Self.waitUntilCurrent(sale, id, version: truth.version)
            #expect(seen.statuses == truth.statuses && seen.version == truth.version)
        }
        let messages = try stream.collect { ($0.id.flatMap { Int($0) } ?? 0) >= truth.version }
        let held = Set(try Self.replay(messages, onto: [:]).statuses.filter { $0.value == "held" }.keys)
        #expect(held == Set(pair.labels.prefix(5)), "the stream learned every change made while its process was not listening")
        let deadline = ContinuousClock.now + .seconds(5)
        var again = 0
        while again != 2, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            again = try await pair.first.server.sqlInt("""
                SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'quorix seat listener' AND datname = current_database()
                """)
        }
        #expect(again == 2, "both processes listen again")
    }

    @Test func aReaderThatDoesNotReadIsCutOff() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent(stadium: true)
        let labels = try await sale.labels(seatmapID: sale.stadiumID)
        // Never read: the socket buffers fill, then the server's queue passes its limit.
        let idle = try HTTPTestClient(port: sale.port)
        defer { idle.close() }
        try idle.sendRequest("GET", "/v1/events/\(id)/stream")
        let reader = try SSETestClient(port: sale.port, path: "/v1/events/\(id)/stream")
        defer { reader.close() }
        #expect(try reader.next()?.event == "snapshot")
        let before = try cutOffs(sale.server)
        let chunk = Array(labels.prefix(20_000))
        for _ in 0..<8 {
            let blocked = try sale.send("POST", "/v1/events/\(id)/block", key: sale.organizer, json: #"{"seats": \#(jsonList(chunk))}"#)
            #expect(blocked.status == 200)
            let unblocked = try sale.send("POST", "/v1/events/\(id)/unblock", key: sale.organizer, json: #"{"seats": \#(jsonList(chunk))}"#)
            #expect(unblocked.status == 200)
            try reader.pump(for: .milliseconds(50))
        }
        let deadline = ContinuousClock.now + .seconds(5)
        while try cutOffs(sale.server) == before, ContinuousClock.now < deadline {
            try reader.pump(for: .milliseconds(100))
        }
        #expect(try cutOffs(sale.server) >= before + 1, "the reader that does not read was not cut off")
        #expect(!reader.isClosed, "the reader that reads keeps its stream")
    }

    func cutOffs(_ server: ServerProcess) throws -> Int {
        let text = String(decoding: try server.slowRequest("GET", "/metrics").body, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("quorix_stream_clients_cut_off_total") {
            return Int(Double(line.split(separator: " ").last ?? "") ?? -1)
        }
        return 0
    }

    @Test func aStreamOfAnUnknownEventIs404() async throws {
        let sale = try await saleServer.get()
        let stream = try SSETestClient(port: sale.port, path: "/v1/events/999999999/stream")
        defer { stream.close() }
        #expect(stream.status == 404)
        #expect(stream.errorBody.contains("not_found"))
    }
}

extension LiveSeatTests {
    @Test func withLiveSeatsOffSeatStatusComesFromTheDatabaseAndTheStreamIs503() async throws {
        let server = try await ServerProcess.start(environment: ["QUORIX_LIVE_SEATS": "off"])
        let organizer = try server.createKey(role: "organizer", name: "off organizer")
        let theatre = try server.uploadSample(SampleMaps.theatre, key: organizer)
        let sale = CatalogServer.Fixture(
            server: server, organizer: organizer, otherOrganizer: organizer, client: organizer, otherClient: organizer,
            theatreID: theatre, stadiumID: theatre)
        let id = try sale.newEvent()
        try sale.block(id, ["STALLS-A-1"])
        let truth = try await Self.stored(sale, id)
        let seen = try Self.served(sale, id)
        #expect(seen.version == truth.version && seen.statuses == truth.statuses)
        let stream = try SSETestClient(port: server.port, path: "/v1/events/\(id)/stream")
        defer { stream.close() }
        #expect(stream.status == 503)
        #expect(stream.header("Retry-After") != nil)
        #expect(stream.errorBody.contains("stream_unavailable"))
    }
}

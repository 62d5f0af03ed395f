import HTTP1
import Loop
import PG

/// Events, their seat inventory, and seat status.
@LoopActor
enum EventRoutes {
    static func register(in app: QuorixApp) {
        app.add("POST", "/v1/events", access: .roles([.organizer])) { [unowned app] context in
            var body = try context.jsonObject()
            let draft = try await EventFields.readNew(&body, seatMaps: app.seatMaps)
            let event = try await app.events.create(draft, ownerKeyID: context.principal?.keyID)
            let index = try await app.seatMaps.index(seatmapID: event.seatmapID)
            app.logger.info("event created", metadata: ["event_id": "\(event.id)", "seats": "\(index?.seatCount ?? 0)"])
            return .json(status: 201, event.json(counts: SeatCounts(free: index?.seatCount ?? 0)))
        }

        app.add("GET", "/v1/events", access: .publicRead) { [unowned app] context in
            let page = try Pagination.from(try context.queryItems())
            let events = try await app.events.list(afterID: page.afterID, limit: page.limit)
            let counts = try await app.events.counts(eventIDs: events.map(\.id))
            return .json(page.page(events.map { $0.json(counts: counts[$0.id] ?? SeatCounts()) }, lastID: events.last?.id))
        }

        app.add("GET", "/v1/events/{id}", access: .publicRead) { [unowned app] context in
            let event = try await findEvent(context, app)
            let counts = try await app.events.counts(eventIDs: [event.id])
            return .json(event.json(counts: counts[event.id] ?? SeatCounts()))
        }

        app.add("PATCH", "/v1/events/{id}", access: .roles([.organizer])) { [unowned app] context in
            var event = try await ownedEvent(context, app)
            var body = try context.jsonObject()
            try await EventFields.applyChanges(&body, to: &event, seatMaps: app.seatMaps)
            // Only the fields this request sets: another PATCH may have changed the others since we read them.
            let fields = Set(body.members.filter { $0.1 != .null }.map(\.0))
            guard let updated = try await app.events.update(event, fields: fields) else { throw APIError.notFound("There is no event \(event.id).") }
            let counts = try await app.events.counts(eventIDs: [updated.id])
            return .json(updated.json(counts: counts[updated.id] ?? SeatCounts()))
        }

        for change in [EventStore.SeatChange.block, .unblock] {
            let path = change == .block ? "/v1/events/{id}/block" : "/v1/events/{id}/unblock"
            app.add("POST", path, access: .roles([.organizer])) { [unowned app] context in
                let event = try await ownedEvent(context, app)
                let index = try await seatMapIndex(for: event, app)
                var body = try context.jsonObject()
                let labels = try body.required("seats") { reader throws(APIError) in try reader.stringArray("seats") } ?? []
                body.rejectUnknown(["seats"])
                try body.throwIfProblems()
                let seatIDs = try SeatSelection.resolve(labels, in: index, path: "seats")
                // Starts the snapshot's load if there is none, so that the next change finds it.
                _ = app.live.currentSnapshot(eventID: event.id, index: index)
                switch try await app.events.change(change, eventID: event.id, seatIDs: seatIDs) {
                case .changed(let version, let changed):
                    app.live.noteLocalChange(eventID: event.id, frees: change == .unblock, mark: app.live.mark(eventID: event.id, changed: changed))
                    return .json(.object([("event_id", .int(event.id)), ("version", .int(Int(version))), ("seats", .array(labels.map { .string($0) }))]))
                case .refused(let refusedIDs):
                    let refusedLabels = refusedIDs.compactMap { index.labelsBySeatID[$0] }
                    var error = change == .block
                        ? APIError(status: 409, code: "seats_unavailable", message: "Only free seats can be blocked; nothing was changed.")
                        : APIError(status: 409, code: "seats_not_blocked", message: "These seats are not blocked; nothing was changed.")
                    error.extra = [("seats", .array(refusedLabels.map { .string($0) }))]
                    throw error
                }
            }
        }

        app.add("GET", "/v1/events/{id}/seats", access: .publicRead) { [unowned app] context in
            let event = try await findEvent(context, app, recent: true)
            let index = try await seatMapIndex(for: event, app)
            var statusFilter: String?
            var sectionFilter: String?
            for (name, value) in try context.queryItems() {
                switch name {
                case "status":
                    guard ["free", "held", "booked", "blocked"].contains(value) else {
                        throw APIError.badRequest("status must be free, held, booked or blocked (got \"\(value)\").")
                    }
                    statusFilter = value
                case "section":
                    guard index.sectionKeys.contains(value) else {
                        throw APIError.badRequest("This event's seat map has no section \"\(value)\".")
                    }
                    sectionFilter = value
                default:
                    continue
                }
            }
            // From the live snapshot when this process listens; from the database otherwise.
            let snapshot = try await app.live.snapshot(eventID: event.id, index: index)
            if snapshot != nil { await app.live.settled(eventID: event.id) }
            let version: Int64
            if let snapshot { version = snapshot.version } else { version = try await app.events.version(eventID: event.id) }
            let etag = "\"\(version)\""
            if ETag.matches(context.request.headers["If-None-Match"], etag) {
                var response = HTTPResponse(status: 304)
                response.headers.add("ETag", etag)
                return response
            }
            let (bodyVersion, body) = try await seatStatusBody(
                event: event, index: index, snapshot: snapshot, version: version, status: statusFilter, section: sectionFilter, app)
            var response = HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "application/json")]), body: body)
            response.headers.add("ETag", "\"\(bodyVersion)\"")
            response.headers.add("Cache-Control", "no-cache")
            return response
        }
    }

    /// The whole seat status as the snapshot has it now (also a stream's `event: snapshot`).
    static func snapshotBody(_ snapshot: EventSeatSnapshot, status: String? = nil, section: String? = nil, _ app: QuorixApp) -> [UInt8] {
        renderedBody(eventID: snapshot.eventID, version: snapshot.version, index: snapshot.index, status: status, section: section, app) {
            snapshot.statuses()
        }
    }

    /// The seat status body at `version`, and the version it shows: read from the database,
    /// that may be a later one.
    static func seatStatusBody(
        event: Event, index: SeatMapIndex, snapshot: EventSeatSnapshot?, version: Int64, status: String?, section: String?,
        _ app: QuorixApp
    ) async throws -> (version: Int64, body: [UInt8]) {
        if let snapshot { return (snapshot.version, snapshotBody(snapshot, status: status, section: section, app)) }
        if let body = app.seatStatusBodies.body(eventID: event.id, version: version, filter: filterKey(status, section)) { return (version, body) }
        let (currentVersion, seats) = try await app.events.statuses(eventID: event.id)
        return (currentVersion, renderedBody(eventID: event.id, version: currentVersion, index: index, status: status, section: section, app) { seats })
    }

    private static func filterKey(_ status: String?, _ section: String?) -> String { "\(status ?? "*")/\(section ?? "*")" }

    /// The body of `version` and filter, rendered once and kept.
    private static func renderedBody(
        eventID: Int, version: Int64, index: SeatMapIndex, status: String?, section: String?, _ app: QuorixApp,
        seats: () -> [(seatID: Int, status: String)]
    ) -> [UInt8] {
        let key = filterKey(status, section)
        if let body = app.seatStatusBodies.body(eventID: eventID, version: version, filter: key) { return body }
        let body = SeatStatusBody.render(eventID: eventID, version: version, seats: seats(), index: index, status: status, section: section)
        app.seatStatusBodies.store(body, eventID: eventID, version: version, filter: key)
        return body
    }

    /// The event of the path's `{id}`. `recent`: as read at most a second ago (hot paths whose
    /// answer does not show the event itself).
    static func findEvent(_ context: RequestContext, _ app: QuorixApp, recent: Bool = false) async throws -> Event {
        let id = try context.resourceID("id", kind: "event")
        guard let event = try await (recent ? app.events.recentEvent(id: id) : app.events.event(id: id)) else { throw APIError.notFound("There is no event \(id).") }
        return event
    }

    /// The event, if the caller may manage it: its owner, or an admin.
    static func ownedEvent(_ context: RequestContext, _ app: QuorixApp) async throws -> Event {
        let event = try await findEvent(context, app)
        guard let principal = context.principal else { throw APIError.unauthorized("This endpoint needs an API key.") }
        guard principal.role == .admin || (principal.keyID != nil && principal.keyID == event.ownerKeyID) else {
            throw APIError.forbidden("Event \(event.id) belongs to another organizer.")
        }
        return event
    }

    static func seatMapIndex(for event: Event, _ app: QuorixApp) async throws -> SeatMapIndex {
        guard let index = try await app.seatMaps.index(seatmapID: event.seatmapID) else {
            throw PGError(kind: .decoding, message: "event \(event.id) has seat map \(event.seatmapID) with no seats")
        }
        return index
    }
}

/// Seat labels in a request body, resolved to seat ids: unknown labels and duplicates are 422.
enum SeatSelection {
    static func resolve(_ labels: [String], in index: SeatMapIndex, path: String) throws(APIError) -> [Int] {
        var problems: [ValidationProblem] = []
        var seen = Set<String>()
        var ids: [Int] = []
        if labels.isEmpty { problems.append(ValidationProblem(path, "must list at least one seat")) }
        for (position, label) in labels.enumerated() {
            if !seen.insert(label).inserted {
                problems.append(ValidationProblem("\(path)[\(position)]", "\(label) is listed twice"))
            } else if let id = index.seatIDsByLabel[label] {
                ids.append(id)
            } else {
                problems.append(ValidationProblem("\(path)[\(position)]", "\(label) is not a seat of this event's seat map (labels are SECTION-ROW-SEAT)"))
            }
        }
        if !problems.isEmpty { throw APIError.validation(problems) }
        return ids
    }
}

/// `If-None-Match` against a strong ETag (lists and `*` included; weak validators compare weakly).
enum ETag {
    static func matches(_ header: String?, _ etag: String) -> Bool {
        guard let header else { return false }
        for candidate in header.split(separator: ",") {
            var tag = candidate.trimmingCharacters(in: " \t")
            if tag == "*" { return true }
            if tag.hasPrefix("W/") { tag.removeFirst(2) }
            if tag == etag { return true }
        }
        return false
    }
}

/// The seat status body, written straight to bytes: a stadium has 60,000 members.
enum SeatStatusBody {
    static func render(
        eventID: Int, version: Int64, seats: [(seatID: Int, status: String)], index: SeatMapIndex,
        status: String?, section: String?
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + seats.count * 24)
        out.append(contentsOf: #"{"event_id":"#.utf8)
        out.append(contentsOf: String(eventID).utf8)
        out.append(contentsOf: #","version":"#.utf8)
        out.append(contentsOf: String(version).utf8)
        out.append(contentsOf: #","seats":{"#.utf8)
        let sectionPrefix = section.map { $0 + "-" }
        var first = true
        for seat in seats {
            if let status, seat.status != status { continue }
            guard let label = index.labelsBySeatID[seat.seatID] else { continue }
            if let sectionPrefix, !label.hasPrefix(sectionPrefix) { continue }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            // Labels are keys of A-Z a-z 0-9 _ . joined by '-', statuses are fixed words:
            // nothing to escape.
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: label.utf8)
            out.append(contentsOf: #"":""#.utf8)
            out.append(contentsOf: seat.status.utf8)
            out.append(UInt8(ascii: "\""))
        }
        out.append(contentsOf: "}}".utf8)
        return out
    }
}

/// Rendered seat status bodies of the current version of each event, so that repeated reads of
/// an unchanged event cost a version check, not a re-read and re-render of every seat.
@LoopActor
final class SeatStatusBodies {
    private var bodies: [Int: (version: Int64, byFilter: [String: [UInt8]])] = [:]
    private let maxEvents = 256

    init() {}

    func body(eventID: Int, version: Int64, filter: String) -> [UInt8]? {
        guard let entry = bodies[eventID], entry.version == version else { return nil }
        return entry.byFilter[filter]
    }

    func store(_ body: [UInt8], eventID: Int, version: Int64, filter: String) {
        if var entry = bodies[eventID], entry.version == version {
            entry.byFilter[filter] = body
            bodies[eventID] = entry
            return
        }
        if bodies.count >= maxEvents { bodies.removeAll() }
        bodies[eventID] = (version, [filter: body])
    }
}

/// Reading and checking event fields for create and update, with the contract's bounds.
enum EventFields {
    static let known: Set<String> = [
        "name", "seatmap_id", "starts_at", "prices", "hold_ttl_seconds", "max_seats_per_hold", "waitlist_offer_ttl_seconds",
    ]

    @LoopActor
    static func readNew(_ body: inout JSONObjectReader, seatMaps: SeatMapStore) async throws -> Event {
        let name = try body.required("name") { reader throws(APIError) in try reader.string("name") }
        let seatmapID = try body.required("seatmap_id") { reader throws(APIError) in try reader.int("seatmap_id") }
        let startsAtText = try body.required("starts_at") { reader throws(APIError) in try reader.string("starts_at") }
        let prices = try body.required("prices") { reader throws(APIError) in try reader.object("prices") }
        body.rejectUnknown(known)
        var event = Event(
            id: 0, seatmapID: seatmapID ?? 0, ownerKeyID: nil, name: name ?? "", startsAt: Timestamp(millisecondsSinceEpoch: 0),
            prices: [], holdTTLSeconds: 600, maxSeatsPerHold: 10, waitlistOfferTTLSeconds: 900, createdAt: "", updatedAt: "")
        if let name { checkName(name, &body) }
        if let startsAtText { event.startsAt = checkStartsAt(startsAtText, &body) ?? event.startsAt }
        try readLimits(&body, into: &event)
        var index: SeatMapIndex?
        if let seatmapID {
            index = seatmapID > 0 ? try await seatMaps.index(seatmapID: seatmapID) : nil
            if index == nil { body.problem("seatmap_id", "there is no seat map \(seatmapID)") }
        }
        if let prices { event.prices = try readPrices(prices, &body, categories: index?.categoriesInUse) }
        try body.throwIfProblems()
        return event
    }

    @LoopActor
    static func applyChanges(_ body: inout JSONObjectReader, to event: inout Event, seatMaps: SeatMapStore) async throws {
        // seatmap_id is known (rejectUnknown would call it unknown as well), but cannot change.
        body.rejectUnknown(known)
        if body.has("seatmap_id") { body.problem("seatmap_id", "cannot change: create a new event on the other seat map") }
        if let name = try body.string("name") {
            checkName(name, &body)
            event.name = name
        } else if body.has("name") {
            body.problem("name", "cannot be null")
        }
        if let startsAt = try body.string("starts_at") {
            event.startsAt = checkStartsAt(startsAt, &body) ?? event.startsAt
        }
        try readLimits(&body, into: &event)
        if let prices = try body.object("prices") {
            let index = try await seatMaps.index(seatmapID: event.seatmapID)
            event.prices = try readPrices(prices, &body, categories: index?.categoriesInUse)
        }
        try body.throwIfProblems()
    }

    static func checkName(_ name: String, _ body: inout JSONObjectReader) {
        if name.trimmingCharacters(in: " \t\n").isEmpty || name.count > 200 { body.problem("name", "must be 1 to 200 characters") }
    }

    static func checkStartsAt(_ text: String, _ body: inout JSONObjectReader) -> Timestamp? {
        guard let instant = RFC3339.parse(text) else {
            body.problem("starts_at", "must be an RFC 3339 date-time such as 2026-11-23T19:30:00Z or 2026-11-23T20:30:00+01:00")
            return nil
        }
        return instant
    }

    static func readLimits(_ body: inout JSONObjectReader, into event: inout Event) throws(APIError) {
        let bounds: [(String, ClosedRange<Int>, WritableKeyPath<Event, Int>)] = [
            ("hold_ttl_seconds", 1...3600, \.holdTTLSeconds),
            ("max_seats_per_hold", 1...100, \.maxSeatsPerHold),
            ("waitlist_offer_ttl_seconds", 1...86_400, \.waitlistOfferTTLSeconds),
        ]
        for (field, range, keyPath) in bounds {
            guard let value = try body.int(field) else { continue }
            if range.contains(value) {
                event[keyPath: keyPath] = value
            } else {
                body.problem(field, "must be from \(range.lowerBound) to \(range.upperBound) (got \(value))")
            }
        }
    }

    /// Every category seats use needs a price from 0 to 100,000,000 cents; categories the map
    /// does not use are refused, so a typo does not go unnoticed.
    static func readPrices(_ prices: JSONObjectReader, _ body: inout JSONObjectReader, categories: Set<String>?) throws(APIError) -> [(String, Int)] {
        var result: [(String, Int)] = []
        for (key, value) in prices.members {
            guard case .number(let number) = value, let cents = number.integer else {
                throw APIError.badRequest("prices.\(key) must be an integer number of cents, not \(value.typeName).")
            }
            if !(0...100_000_000).contains(cents) {
                body.problem("prices.\(key)", "must be from 0 to 100000000 cents (got \(cents))")
            } else if let categories, !categories.contains(key) {
                body.problem("prices.\(key)", "is not a category of this seat map's seats (\(categories.sorted().joined(separator: ", ")))")
            } else {
                result.append((key, Int(cents)))
            }
        }
        if let categories {
            let priced = Set(prices.members.map(\.0))
            let missing = categories.subtracting(priced).sorted()
            if !missing.isEmpty {
                body.problem("prices", "needs a price for every category the seat map uses; missing: \(missing.joined(separator: ", "))")
            }
        }
        return result
    }
}

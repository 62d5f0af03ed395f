import Loop
import PG

/// A hold request body, checked against the event: `customer`, then `seats` or `best_available`,
/// and an optional `ttl_seconds`.
struct HoldRequest {
    enum Selection {
        case seats([Int])
        case best(BestAvailable.Request)
    }

    let customer: String
    let selection: Selection
    let ttlSeconds: Int

    static func read(_ body: JSONObjectReader, event: Event, index: SeatMapIndex) throws(APIError) -> HoldRequest {
        var body = body
        let customer = try body.required("customer") { reader throws(APIError) in try reader.string("customer") }
        // Characters as PostgreSQL counts them (code points); NUL cannot be stored in text.
        if let customer, customer.isEmpty || customer.unicodeScalars.count > 128 || customer.unicodeScalars.contains("\u{0}") {
            body.problem("customer", "must be 1 to 128 characters, without NUL")
        }
        let labels = try body.stringArray("seats")
        let best = try body.object("best_available")
        let ttl = try body.int("ttl_seconds")
        body.rejectUnknown(["customer", "seats", "best_available", "ttl_seconds"])
        if let ttl, !(1...event.holdTTLSeconds).contains(ttl) {
            body.problem("ttl_seconds", "must be from 1 to the event's hold_ttl_seconds (\(event.holdTTLSeconds))")
        }
        var selection: Selection?
        switch (labels, best) {
        case (nil, nil):
            body.problem("seats", "give either seats (a list of labels) or best_available")
        case (.some, .some):
            body.problem("best_available", "give either seats or best_available, not both")
        case (let labels?, nil):
            if labels.count > event.maxSeatsPerHold {
                body.problem("seats", "at most \(event.maxSeatsPerHold) seats per hold for this event (got \(labels.count))")
            } else {
                do {
                    selection = .seats(try SeatSelection.resolve(labels, in: index, path: "seats"))
                } catch {
                    for problem in error.details { body.problem(problem) }
                }
            }
        case (nil, let best?):
            if let request = try BestAvailable.Request.read(best, event: event, index: index, into: &body) {
                selection = .best(request)
            }
        }
        try body.throwIfProblems()
        guard let customer, let selection else { throw APIError.validation("", "the request is incomplete") }
        return HoldRequest(customer: customer, selection: selection, ttlSeconds: ttl ?? event.holdTTLSeconds)
    }
}

/// Best available: adjacent seats in one row, front rows first, then nearest the middle of the
/// row; when another request wins the chosen seats, the next candidates are tried.
enum BestAvailable {
    struct Request {
        let quantity: Int
        let category: String?
        let sectionID: Int?
        let adjacent: Bool

        static func read(_ reader: JSONObjectReader, event: Event, index: SeatMapIndex, into body: inout JSONObjectReader) throws(APIError) -> Request? {
            var reader = reader
            let quantity = try reader.required("quantity") { r throws(APIError) in try r.int("quantity") }
            let category = try reader.string("category")
            let section = try reader.string("section")
            let adjacent = try reader.bool("adjacent") ?? true
            reader.rejectUnknown(["quantity", "category", "section", "adjacent"])
            if let quantity, !(1...event.maxSeatsPerHold).contains(quantity) {
                reader.problem("quantity", "must be from 1 to \(event.maxSeatsPerHold), this event's max_seats_per_hold")
            }
            if let category, !index.categoriesInUse.contains(category) {
                reader.problem("category", "is not a category of this event's seats (\(index.categoriesInUse.sorted().joined(separator: ", ")))")
            }
            var sectionID: Int?
            if let section {
                sectionID = index.sectionIDsByKey[section]
                if sectionID == nil { reader.problem("section", "is not a section of this event's seat map") }
            }
            for problem in reader.problems { body.problem(problem) }
            guard reader.problems.isEmpty, let quantity else { return nil }
            return Request(quantity: quantity, category: category, sectionID: sectionID, adjacent: adjacent)
        }
    }

    /// Candidate seat sets, best first: each run of adjacent free seats offers the window of
    /// `quantity` seats nearest the middle of its row.
    static func windows(_ runs: [HoldStore.Run], quantity: Int, index: SeatMapIndex) -> [[Int]] {
        var candidates: [(rank: Int, distance: Double, seats: [Int])] = []
        for run in runs where run.seatIDs.count >= quantity {
            let middle = Double(index.lastOrdinalByRow[run.rowID] ?? 0) / 2
            var best = 0
            var bestDistance = Double.infinity
            for offset in 0...(run.seatIDs.count - quantity) {
                let center = Double(run.firstOrdinal + offset) + Double(quantity - 1) / 2
                let distance = abs(center - middle)
                if distance < bestDistance {
                    best = offset
                    bestDistance = distance
                }
            }
            candidates.append((run.rowRank, bestDistance, Array(run.seatIDs[best..<(best + quantity)])))
        }
        return candidates.sorted { ($0.rank, $0.distance) < ($1.rank, $1.distance) }.map(\.seats)
    }

    @LoopActor
    static func hold(
        _ request: Request, event: Event, index: SeatMapIndex, store: HoldStore,
        attempt: ([Int]) async throws -> HoldStore.HoldOutcome
    ) async throws -> HoldRecord? {
        // Each round reads what is available now; a lost race moves on to the next candidate.
        for _ in 0..<3 {
            let candidates: [[Int]]
            if request.adjacent {
                let runs = try await store.adjacentRuns(
                    eventID: event.id, quantity: request.quantity, category: request.category, sectionID: request.sectionID)
                candidates = windows(runs, quantity: request.quantity, index: index)
            } else {
                let seats = try await store.anySeats(
                    eventID: event.id, quantity: request.quantity, category: request.category, sectionID: request.sectionID)
                candidates = seats.count == request.quantity ? [seats] : []
            }
            if candidates.isEmpty { return nil }
            for seats in candidates.prefix(5) {
                if case .held(let record) = try await attempt(seats) { return record }
            }
        }
        return nil
    }
}

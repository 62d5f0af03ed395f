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
        let customer = try SaleFields.customer(&body)
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

/// Fields that holds and waitlist entries share, checked one way.
enum SaleFields {
    /// `customer`, required: 1-128 characters as PostgreSQL counts them (code points), no NUL
    /// (text cannot store it).
    static func customer(_ body: inout JSONObjectReader) throws(APIError) -> String? {
        let customer = try body.required("customer") { reader throws(APIError) in try reader.string("customer") }
        if let customer, customer.isEmpty || customer.unicodeScalars.count > 128 || customer.unicodeScalars.contains("\u{0}") {
            body.problem("customer", "must be 1 to 128 characters, without NUL")
        }
        return customer
    }

    /// A quantity within the event's `max_seats_per_hold`, and a category and section of its map;
    /// returns the section's id.
    static func checkSeatFilters(
        quantity: Int?, category: String?, section: String?, event: Event, index: SeatMapIndex, _ body: inout JSONObjectReader
    ) -> Int? {
        if let quantity, !(1...event.maxSeatsPerHold).contains(quantity) {
            body.problem("quantity", "must be from 1 to \(event.maxSeatsPerHold), this event's max_seats_per_hold")
        }
        if let category, !index.categoriesInUse.contains(category) {
            body.problem("category", "is not a category of this event's seats (\(index.categoriesInUse.sorted().joined(separator: ", ")))")
        }
        guard let section else { return nil }
        let sectionID = index.sectionIDsByKey[section]
        if sectionID == nil { body.problem("section", "is not a section of this event's seat map") }
        return sectionID
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
            let sectionID = SaleFields.checkSeatFilters(quantity: quantity, category: category, section: section, event: event, index: index, &reader)
            for problem in reader.problems { body.problem(problem) }
            guard reader.problems.isEmpty, let quantity else { return nil }
            return Request(quantity: quantity, category: category, sectionID: sectionID, adjacent: adjacent)
        }
    }

    /// Adjacent available seats: consecutive ordinals in one row.
    struct Run: Equatable {
        let rowID: Int
        let rowRank: Int
        let firstOrdinal: Int
        let seatIDs: [Int]
    }

    /// The runs in `seats`, which come in best-available order (rank, row, ordinal).
    static func runs(_ seats: [HoldStore.OpenSeat]) -> [Run] {
        var runs: [Run] = []
        var current: [HoldStore.OpenSeat] = []
        func close() {
            if let first = current.first {
                runs.append(Run(rowID: first.rowID, rowRank: first.rowRank, firstOrdinal: first.ordinal, seatIDs: current.map(\.seatID)))
            }
            current = []
        }
        for seat in seats {
            if let last = current.last, last.rowID != seat.rowID || seat.ordinal != last.ordinal + 1 { close() }
            current.append(seat)
        }
        close()
        return runs
    }

    /// Candidate seat sets, best first: each run of adjacent free seats offers the window of
    /// `quantity` seats nearest the middle of its row.
    static func windows(_ runs: [Run], quantity: Int, index: SeatMapIndex) -> [[Int]] {
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

    /// Seats read per page: several rows of any map.
    static let pageSize = 200

    /// Adjacent candidates from the first page of available seats that has any. A full page is
    /// judged on the rows it holds completely (its last row may go on past it), and the next
    /// page starts at that row; a row longer than a page is read with a larger one. The cost is
    /// a page or two of seats whatever the map's size.
    @LoopActor
    static func adjacentCandidates(
        _ filter: BestAvailableFilter, event: Event, index: SeatMapIndex, store: HoldStore, known: KnownSeats
    ) async throws -> [[Int]] {
        var from: (rank: Int, rowID: Int)?
        var limit = max(pageSize, filter.quantity * 4)
        for _ in 0..<1_000 {
            let seats = try await store.openSeats(
                eventID: event.id, filter: filter, from: from, limit: limit, shared: known.freeGeneration,
                knownNone: { known.noneFit(filter) })
            guard seats.count == limit, let last = seats.last else {
                return windows(runs(seats), quantity: filter.quantity, index: index)
            }
            let complete = seats.filter { $0.rowID != last.rowID }
            if complete.isEmpty {
                limit *= 2
                continue
            }
            let candidates = windows(runs(complete), quantity: filter.quantity, index: index)
            if !candidates.isEmpty { return candidates }
            from = (last.rowRank, last.rowID)
        }
        return []
    }

    /// Holds the best candidate that can still be had; nil when none fits. `known` answers
    /// "none" at once when the snapshot shows too few seats, or this process found none a moment
    /// ago (a sold-out flash crowd).
    @LoopActor
    static func hold(
        _ request: Request, event: Event, index: SeatMapIndex, store: HoldStore, known: KnownSeats,
        attempt: ([Int]) async throws -> HoldStore.HoldOutcome
    ) async throws -> HoldRecord? {
        let filter = BestAvailableFilter(
            quantity: request.quantity, category: request.category, sectionID: request.sectionID, adjacent: request.adjacent)
        // Each round reads what is available now; a lost race moves on to the next candidate.
        for _ in 0..<3 {
            if known.noneFit(filter) { return nil }
            let candidates: [[Int]]
            if request.adjacent {
                candidates = try await adjacentCandidates(filter, event: event, index: index, store: store, known: known)
            } else {
                let seats = try await store.openSeats(
                    eventID: event.id, filter: filter, from: nil, limit: request.quantity, shared: known.freeGeneration,
                    knownNone: { known.noneFit(filter) })
                candidates = seats.count == request.quantity ? [seats.map(\.seatID)] : []
            }
            if candidates.isEmpty {
                known.rememberNoneFit(filter)
                return nil
            }
            // Candidates the snapshot shows taken (by a concurrent request) are not tried, and
            // ones that a hold being decided wants go last: requests that read the same page at
            // once spread over its candidates instead of queueing for the best one.
            let uncontestedFirst = candidates.filter { !store.isPending(eventID: event.id, seatIDs: $0) }
                + candidates.filter { store.isPending(eventID: event.id, seatIDs: $0) }
            for seats in uncontestedFirst.lazy.filter({ !known.anyTaken($0) }).prefix(5) {
                if case .held(let record) = try await attempt(seats) { return record }
            }
        }
        return nil
    }
}

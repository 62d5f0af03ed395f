import HTTP1
import Loop
import PG

/// Holds and bookings: the client side of a sale.
@LoopActor
enum HoldRoutes {
    static func register(in app: QuorixApp) {
        let holdsCreated = app.metrics.counter("quorix_holds_created_total")
        app.add("POST", "/v1/events/{id}/holds", access: .roles([.client])) { [unowned app] context in
            let event = try await EventRoutes.findEvent(context, app, recent: true)
            let index = try await EventRoutes.seatMapIndex(for: event, app)
            let request = try HoldRequest.read(try context.jsonObject(), event: event, index: index)
            let keyID = context.principal?.keyID
            let lifetime = 3 * event.holdTTLSeconds
            let known = KnownSeats(live: app.live, eventID: event.id, index: index)
            // Drawn only when the database is asked: a refusal from the snapshot needs no secret.
            var token: String?
            @LoopActor func attempt(_ seatIDs: [Int]) async throws -> HoldStore.HoldOutcome {
                if let taken = known.taken(seatIDs) { return .unavailable(seatIDs: taken) }
                let secret = token ?? HoldToken.generate(eventID: event.id)
                token = secret
                let mark = app.live.mark(eventID: event.id, seatIDs: seatIDs, index: index)
                let outcome = try await app.holds.hold(
                    HoldStore.HoldAttempt(
                        eventID: event.id, seatIDs: seatIDs, customer: request.customer, apiKeyID: keyID,
                        tokenHash: HoldToken.hash(secret), ttlSeconds: request.ttlSeconds, lifetimeSeconds: lifetime),
                    knownTaken: { known.taken(seatIDs) },
                    report: { outcome in
                        switch outcome {
                        case .held: known.report(seatIDs)
                        case .unavailable(let taken): known.report(taken)
                        }
                    })
                if case .held = outcome { app.live.noteLocalChange(eventID: event.id, frees: false, mark: mark) }
                return outcome
            }
            let hold: HoldRecord
            switch request.selection {
            case .seats(let seatIDs):
                switch try await attempt(seatIDs) {
                case .held(let record): hold = record
                case .unavailable(let taken):
                    var error = APIError(status: 409, code: "seats_unavailable", message: "Some seats are not free; nothing was held.")
                    error.extra = [("seats", .array(taken.compactMap { index.labelsBySeatID[$0] }.map { .string($0) }))]
                    throw error
                }
            case .best(let best):
                guard let record = try await BestAvailable.hold(best, event: event, index: index, store: app.holds, known: known, attempt: attempt) else {
                    throw APIError(status: 409, code: "no_seats_available", message: "No available seats fit this request.")
                }
                hold = record
            }
            holdsCreated.increment()
            app.sweeper.expectExpiry(inSeconds: request.ttlSeconds)
            return .json(status: 201, HoldJSON.render(hold, index: index, token: token ?? ""))
        }

        app.add("GET", "/v1/holds/{token}", access: .roles([.client])) { [unowned app] context in
            let (hold, index) = try await findHold(context, app)
            return .json(HoldJSON.render(hold, index: index, token: nil))
        }

        app.add("POST", "/v1/holds/{token}/extend", access: .roles([.client])) { [unowned app] context in
            let (hold, _) = try await findHold(context, app)
            guard let event = try await app.events.recentEvent(id: hold.eventID) else { throw APIError.notFound("There is no such hold.") }
            var body = try context.jsonObject()
            let ttl = try body.required("ttl_seconds") { reader throws(APIError) in try reader.int("ttl_seconds") }
            body.rejectUnknown(["ttl_seconds"])
            if let ttl, !(1...event.holdTTLSeconds).contains(ttl) {
                body.problem("ttl_seconds", "must be from 1 to the event's hold_ttl_seconds (\(event.holdTTLSeconds))")
            }
            try body.throwIfProblems()
            return try await respond(to: try await app.holds.extend(token: context.parameter("token"), ttlSeconds: ttl ?? 1), app)
        }

        app.add("DELETE", "/v1/holds/{token}", access: .roles([.client])) { [unowned app] context in
            switch try await app.holds.release(token: context.parameter("token")) {
            case .done(let hold, let freed):
                app.live.noteLocalChange(eventID: hold.eventID, frees: true, mark: app.live.mark(eventID: hold.eventID, changed: freed))
                app.metrics.counter("quorix_holds_released_total").increment()
                return HTTPResponse(status: 204)
            case let other:
                return try await respond(to: other, app)
            }
        }

        app.add("POST", "/v1/holds/{token}/confirm", access: .roles([.client])) { [unowned app] context in
            let key = context.request.headers["Idempotency-Key"]
            if let key, key.isEmpty || key.count > 255 {
                throw APIError.validation("Idempotency-Key", "must be 1 to 255 characters")
            }
            let token = context.parameter("token")
            switch try await app.bookings.confirm(token: token, apiKeyID: context.principal?.keyID, idempotencyKey: key) {
            case .confirmed(let booking, let created, let booked):
                if created {
                    app.metrics.counter("quorix_holds_confirmed_total").increment()
                    app.live.noteLocalChange(eventID: booking.eventID, frees: false, mark: app.live.mark(eventID: booking.eventID, changed: booked))
                }
                let index = try await app.seatMaps.index(seatmapID: try await seatmapID(ofEvent: booking.eventID, app))
                return .json(status: created ? 201 : 200, BookingJSON.render(booking, index: index))
            case .notFound: throw APIError.notFound("There is no such hold.")
            case .notActive(let status): throw HoldErrors.notActive(status)
            case .expired: throw HoldErrors.expired
            case .idempotencyKeyReused:
                throw APIError(status: 409, code: "idempotency_key_reused", message: "This Idempotency-Key was used to confirm another hold.")
            }
        }

        app.add("GET", "/v1/bookings/{id}", access: .roles([.client])) { [unowned app] context in
            let id = try context.resourceID("id", kind: "booking")
            guard let booking = try await app.bookings.booking(id: id), mayRead(booking, context) else {
                throw APIError.notFound("There is no booking \(id).")
            }
            let index = try await app.seatMaps.index(seatmapID: try await seatmapID(ofEvent: booking.eventID, app))
            return .json(BookingJSON.render(booking, index: index))
        }

        app.add("GET", "/v1/customers/{customer}/bookings", access: .roles([.client])) { [unowned app] context in
            let page = try Pagination.from(try context.queryItems())
            let customer = context.parameter("customer")
            let bookings = try await app.bookings.bookings(
                apiKeyID: context.principal?.keyID, customer: customer,
                beforeID: page.afterID == 0 ? nil : page.afterID, limit: page.limit)
            var items: [JSONValue] = []
            var indexes: [Int: SeatMapIndex?] = [:]  // by event: one lookup per event, not per booking
            for booking in bookings {
                if indexes[booking.eventID] == nil {
                    indexes[booking.eventID] = try await app.seatMaps.index(seatmapID: try await seatmapID(ofEvent: booking.eventID, app))
                }
                items.append(BookingJSON.render(booking, index: indexes[booking.eventID] ?? nil))
            }
            return .json(page.page(items, lastID: bookings.last?.id))
        }

        app.add("POST", "/v1/bookings/{id}/cancel", access: .roles([.client])) { [unowned app] context in
            let id = try context.resourceID("id", kind: "booking")
            guard let booking = try await app.bookings.booking(id: id), mayRead(booking, context) else {
                throw APIError.notFound("There is no booking \(id).")
            }
            guard let index = try await app.seatMaps.index(seatmapID: try await seatmapID(ofEvent: booking.eventID, app)) else {
                throw APIError.notFound("There is no booking \(id).")
            }
            var seatIDs: [Int]?
            if var body = try context.optionalJSONObject() {
                let labels = try body.stringArray("seats")
                body.rejectUnknown(["seats"])
                try body.throwIfProblems()
                if let labels { seatIDs = try SeatSelection.resolve(labels, in: index, path: "seats") }
            }
            switch try await app.bookings.cancel(id: id, seatIDs: seatIDs, onlyFor: context.principal?.keyID, isAdmin: context.principal?.role == .admin) {
            case .cancelled(let updated, let freed):
                app.live.noteLocalChange(eventID: updated.eventID, frees: true, mark: app.live.mark(eventID: updated.eventID, changed: freed))
                return .json(BookingJSON.render(updated, index: index))
            case .notFound: throw APIError.notFound("There is no booking \(id).")
            case .alreadyCancelled:
                throw APIError(status: 409, code: "booking_cancelled", message: "Booking \(id) is already cancelled.")
            case .notInBooking(let foreign):
                throw APIError.validation(foreign.compactMap { index.labelsBySeatID[$0] }.map {
                    ValidationProblem("seats", "\($0) is not a booked seat of this booking (or was already cancelled)")
                })
            }
        }
    }

    static func mayRead(_ booking: BookingRecord, _ context: RequestContext) -> Bool {
        context.principal?.role == .admin || booking.apiKeyID == context.principal?.keyID
    }

    static func seatmapID(ofEvent eventID: Int, _ app: QuorixApp) async throws -> Int {
        guard let event = try await app.events.recentEvent(id: eventID) else { throw APIError.notFound("There is no event \(eventID).") }
        return event.seatmapID
    }

    static func findHold(_ context: RequestContext, _ app: QuorixApp) async throws -> (HoldRecord, SeatMapIndex?) {
        guard let hold = try await app.holds.find(token: context.parameter("token")) else {
            throw APIError.notFound("There is no such hold.")
        }
        return (hold, try await app.seatMaps.index(seatmapID: try await seatmapID(ofEvent: hold.eventID, app)))
    }

    static func respond(to outcome: HoldStore.ChangeOutcome, _ app: QuorixApp) async throws -> HTTPResponse {
        switch outcome {
        case .done(let hold, _):
            let index = try await app.seatMaps.index(seatmapID: try await seatmapID(ofEvent: hold.eventID, app))
            return .json(HoldJSON.render(hold, index: index, token: nil))
        case .notFound: throw APIError.notFound("There is no such hold.")
        case .notActive(let status): throw HoldErrors.notActive(status)
        case .expired: throw HoldErrors.expired
        case .beyondLimit:
            throw APIError(status: 409, code: "hold_limit", message: "A hold lives at most 3 x the event's hold_ttl_seconds from its creation; nothing was changed.")
        }
    }
}

enum HoldErrors {
    static let expired = APIError(status: 410, code: "hold_expired", message: "The hold expired; its seats may have been taken. Hold them again.")

    static func notActive(_ status: String) -> APIError {
        APIError(status: 409, code: "hold_not_active", message: "The hold is \(status).")
    }
}

enum HoldJSON {
    static func render(_ hold: HoldRecord, index: SeatMapIndex?, token: String?) -> JSONValue {
        var members: [(String, JSONValue)] = [("hold_id", .int(hold.id)), ("id", .int(hold.id))]
        if let token { members.append(("token", .string(token))) }
        members += [
            ("event_id", .int(hold.eventID)), ("customer", .string(hold.customer)),
            ("seats", .array(hold.seatIDs.compactMap { index?.labelsBySeatID[$0] }.map { .string($0) })),
            ("expires_at", .string(hold.expiresAt)), ("status", .string(hold.status)), ("created_at", .string(hold.createdAt)),
        ]
        if let bookingID = hold.bookingID { members.append(("booking_id", .int(bookingID))) }
        return .object(members)
    }
}

enum BookingJSON {
    static func render(_ booking: BookingRecord, index: SeatMapIndex?) -> JSONValue {
        func labels(_ ids: [Int]) -> JSONValue { .array(ids.compactMap { index?.labelsBySeatID[$0] }.map { .string($0) }) }
        var members: [(String, JSONValue)] = [
            ("booking_id", .int(booking.id)), ("id", .int(booking.id)), ("event_id", .int(booking.eventID)),
            ("customer", .string(booking.customer)), ("seats", labels(booking.seatIDs)),
            ("total_cents", .int(booking.totalCents)), ("status", .string(booking.status)), ("created_at", .string(booking.createdAt)),
        ]
        if !booking.cancelledSeatIDs.isEmpty { members.append(("cancelled_seats", labels(booking.cancelledSeatIDs))) }
        return .object(members)
    }
}

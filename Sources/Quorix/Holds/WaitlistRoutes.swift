import HTTP1
import Loop
import PG

/// The waitlist: join, read (with the offer, once there is one), leave.
@LoopActor
enum WaitlistRoutes {
    static func register(in app: QuorixApp) {
        app.add("POST", "/v1/events/{id}/waitlist", access: .roles([.client])) { [unowned app] context in
            let event = try await EventRoutes.findEvent(context, app, recent: true)
            let index = try await EventRoutes.seatMapIndex(for: event, app)
            var body = try context.jsonObject()
            let customer = try SaleFields.customer(&body)
            let quantity = try body.required("quantity") { reader throws(APIError) in try reader.int("quantity") }
            let category = try body.string("category")
            let section = try body.string("section")
            body.rejectUnknown(["customer", "quantity", "category", "section"])
            _ = SaleFields.checkSeatFilters(quantity: quantity, category: category, section: section, event: event, index: index, &body)
            try body.throwIfProblems()
            guard let customer, let quantity else { throw APIError.validation("", "the request is incomplete") }
            let entry = try await app.waitlist.join(
                eventID: event.id, customer: customer, apiKeyID: context.principal?.keyID, quantity: quantity,
                category: category, sectionKey: section)
            return .json(status: 201, WaitlistJSON.render(entry, index: index))
        }

        app.add("GET", "/v1/waitlist/{entry_id}", access: .roles([.client])) { [unowned app] context in
            let id = try context.resourceID("entry_id", kind: "waitlist entry")
            guard let entry = try await app.waitlist.find(id: id), mayRead(entry, context) else {
                throw APIError.notFound("There is no waitlist entry \(id).")
            }
            let index = try await app.seatMaps.index(seatmapID: try await HoldRoutes.seatmapID(ofEvent: entry.eventID, app))
            return .json(WaitlistJSON.render(entry, index: index))
        }

        app.add("DELETE", "/v1/waitlist/{entry_id}", access: .roles([.client])) { [unowned app] context in
            let id = try context.resourceID("entry_id", kind: "waitlist entry")
            switch try await app.waitlist.leave(id: id, apiKeyID: context.principal?.keyID, isAdmin: context.principal?.role == .admin) {
            case .left(let eventID, let freed):
                // Leaving without an offer changes no seat.
                if !freed.isEmpty { app.live.noteLocalChange(eventID: eventID, frees: true, mark: app.live.mark(eventID: eventID, changed: freed)) }
                return HTTPResponse(status: 204)
            case .notFound:
                throw APIError.notFound("There is no waitlist entry \(id).")
            case .over(let status):
                throw APIError(status: 409, code: "waitlist_entry_closed", message: "The entry is \(status); it can no longer be left.")
            }
        }
    }

    static func mayRead(_ entry: WaitlistRecord, _ context: RequestContext) -> Bool {
        context.principal?.role == .admin || entry.apiKeyID == context.principal?.keyID
    }
}

enum WaitlistJSON {
    static func render(_ entry: WaitlistRecord, index: SeatMapIndex?) -> JSONValue {
        let offer: JSONValue = entry.offer.map { offer in
            .object([
                ("token", .string(offer.token)),
                ("seats", .array(offer.seatIDs.compactMap { index?.labelsBySeatID[$0] }.map { .string($0) })),
                ("expires_at", .string(offer.expiresAt)),
            ])
        } ?? .null
        return .object([
            ("entry_id", .int(entry.id)), ("id", .int(entry.id)), ("event_id", .int(entry.eventID)),
            ("customer", .string(entry.customer)), ("quantity", .int(entry.quantity)), ("status", .string(entry.status)),
            ("position", entry.position.map { .int($0) } ?? .null), ("offer", offer),
        ])
    }
}

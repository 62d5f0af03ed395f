import HTTP1
import Loop
import PG

/// Parsing and validating an uploaded document, and building its insert statements: CPU work
/// proportional to the document (16 MiB, 200,000 seats at most), done off the loop so a large
/// upload never stalls other requests. Nothing here touches the database.
enum SeatMapIntake {
    enum Outcome: Sendable {
        case notJSON(String)
        case invalid([ValidationProblem])
        case ready(SeatMapStore.InsertPlan)
    }

    static func prepare(_ body: [UInt8]) -> Outcome {
        let json: JSONValue
        do {
            json = try JSONParser.parse(body)
        } catch {
            return .notJSON(error.description)
        }
        switch SeatMapValidator.validate(json) {
        case .failure(let problems): return .invalid(problems.problems)
        case .success(let document): return .ready(SeatMapStore.plan(document, json: json))
        }
    }

    /// Runs `prepare` on a thread of Swift's global pool and returns to the caller's executor.
    static func prepareOffLoop(_ body: [UInt8]) async -> Outcome {
        await Task.detached { prepare(body) }.value
    }
}

/// `POST /v1/seatmaps`, `GET /v1/seatmaps`, `GET /v1/seatmaps/{id}`.
@LoopActor
enum SeatMapRoutes {
    nonisolated static let uploadLimit = 16 << 20

    static func register(in app: QuorixApp) {
        app.add("POST", "/v1/seatmaps", access: .roles([.organizer]), bodyLimit: uploadLimit) { [unowned app] context in
            try context.requireJSONContentType()
            guard !context.request.body.isEmpty else { throw APIError.badRequest("The request needs a seat map document as its JSON body.") }
            let plan: SeatMapStore.InsertPlan
            switch await SeatMapIntake.prepareOffLoop(context.request.body) {
            case .notJSON(let reason): throw APIError.invalidJSON(reason)
            case .invalid(let problems): throw APIError.validation(problems)
            case .ready(let ready): plan = ready
            }
            let stored = try await app.seatMaps.store(plan, ownerKeyID: context.principal?.keyID)
            app.logger.info("seat map stored", metadata: ["seatmap_id": "\(stored.id)", "seats": "\(stored.seatCount)"])
            return .json(status: 201, storedJSON(stored))
        }

        app.add("GET", "/v1/seatmaps", access: .publicRead) { [unowned app] context in
            let page = try Pagination.from(try context.queryItems())
            let maps = try await app.seatMaps.list(afterID: page.afterID, limit: page.limit)
            let items: [JSONValue] = maps.map { map in
                .object([("id", .int(map.id)), ("name", .string(map.name)), ("seat_count", .int(map.seatCount)), ("created_at", .string(map.createdAt))])
            }
            return .json(page.page(items, lastID: maps.last?.id))
        }

        app.add("GET", "/v1/seatmaps/{id}", access: .publicRead) { [unowned app] context in
            let id = try context.resourceID("id", kind: "seat map")
            guard let (document, seatCount) = try await app.seatMaps.document(id: id), case .object(let members) = document else {
                throw APIError.notFound("There is no seat map \(id).")
            }
            return .json(.object([("id", .int(id))] + members + [("seat_count", .int(seatCount))]))
        }
    }

    static func storedJSON(_ stored: SeatMapStore.Stored) -> JSONValue {
        .object([
            ("id", .int(stored.id)), ("name", .string(stored.name)), ("seat_count", .int(stored.seatCount)),
            ("sections", .array(stored.sections.map { section in
                .object([("key", .string(section.key)), ("label", .string(section.label)), ("seat_count", .int(section.seatCount))])
            })),
        ])
    }
}

extension RequestContext {
    /// A numeric id from the path; anything else names no resource (404).
    func resourceID(_ name: String, kind: String) throws(APIError) -> Int {
        let text = parameter(name)
        guard let id = Int(text), id > 0, String(id) == text else {
            throw APIError.notFound("There is no \(kind) \(text).")
        }
        return id
    }
}

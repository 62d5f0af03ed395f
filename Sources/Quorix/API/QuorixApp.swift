public import HTTP1
public import Logging
public import Loop
public import PG

/// The HTTP API: routes, authentication, errors in the contract's shape, one log line and one
/// metrics sample per request.
@LoopActor
public final class QuorixApp: HTTPResponder {
    public enum Access: Sendable {
        /// No key needed; answers carry CORS headers so a browser seat picker can read them.
        case publicRead
        /// No key needed, no CORS (operations endpoints).
        case operations
        /// A key with one of these roles; admin may do everything.
        case roles(Set<Principal.Role>)
    }

    public struct Route: Sendable {
        let access: Access
        let bodyLimit: Int
        let handler: @LoopActor @Sendable (RequestContext) async throws -> HTTPResponse
    }

    public static let defaultBodyLimit = 1 << 20

    /// Session settings of every pooled connection. Each statement is prepared once per
    /// connection; PostgreSQL would still re-plan it on every execution when its generic plan
    /// looks dearer than a custom one, and for the hold statement that planning (rewriting the
    /// CTEs, the column defaults) costs more than running it: forcing the generic plan took holds
    /// from about 2,000/s to 3,700/s here. Every statement here is a point or per-event query
    /// whose plan does not depend on the values; ANALYZE still invalidates cached plans.
    public static let sessionSetup = ["SET plan_cache_mode = force_generic_plan"]

    public let pool: PGPool
    public let logger: Logger
    public let metrics: ServerMetrics
    public let keys: APIKeyStore
    public let seatMaps: SeatMapStore
    public let events: EventStore
    let seatStatusBodies = SeatStatusBodies()
    public let holds: HoldStore
    public let bookings: BookingStore
    public let waitlist: WaitlistStore
    /// Live seat status (LISTEN/NOTIFY): `GET .../seats`, the stream, refusals from memory.
    public let live: LiveSeats
    /// Releases expired holds; started by the server runner.
    public let sweeper: HoldSweeper
    /// Webhooks, and the claims and outcomes of their deliveries.
    public let webhooks: WebhookStore
    /// POSTs webhook deliveries from the outbox; started by the server runner.
    public let webhookDeliverer: WebhookDeliverer
    /// `QUORIX_WEBHOOK_ALLOW_PRIVATE`: webhooks may name loopback and private addresses.
    let webhookAllowPrivate: Bool
    private var router = Router<Route>()
    /// The last request's match: every request is matched twice (its body limit, then its
    /// handler), and in a crowd most requests name the same path.
    private var lastMatch: (method: String, path: Substring, match: Router<Route>.Match)?

    public init(pool: PGPool, configuration: Configuration, logger: Logger, metrics: ServerMetrics) {
        self.pool = pool
        self.logger = logger
        self.metrics = metrics
        keys = APIKeyStore(pool: pool, adminKey: configuration.adminKey)
        seatMaps = SeatMapStore(pool: pool)
        events = EventStore(pool: pool)
        events.statisticsFailure = { [logger] error in
            logger.warning("ANALYZE after creating an event failed; holds may plan badly until autovacuum analyzes",
                metadata: ["error": "\(error.debugDescription)"])
        }
        holds = HoldStore(pool: pool, concurrentStatements: configuration.effectiveHoldStatements)
        let holdStatements = metrics.counter("quorix_hold_statements_total")
        let holdsInStatements = metrics.counter("quorix_hold_statement_holds_total")
        holds.onHoldStatement = { count in
            holdStatements.increment()
            holdsInStatements.increment(by: count)
        }
        bookings = BookingStore(pool: pool)
        waitlist = WaitlistStore(pool: pool)
        sweeper = HoldSweeper(pool: pool, logger: logger)
        live = LiveSeats(pool: pool, logger: logger, heartbeatMilliseconds: configuration.streamHeartbeatMilliseconds)
        sweeper.onReleased = { [live, metrics] events, lags in
            for event in events { live.noteLocalChange(eventID: event, frees: true) }
            metrics.recordExpired(lags: lags)
        }
        live.onClientCountChange = { [metrics] count in metrics.setStreamClients(count) }
        live.onSlowReaderCutOff = { [metrics] in metrics.counter("quorix_stream_clients_cut_off_total").increment() }
        webhooks = WebhookStore(pool: pool)
        webhookAllowPrivate = configuration.webhookAllowPrivate
        webhookDeliverer = WebhookDeliverer(store: webhooks, logger: logger, allowPrivate: configuration.webhookAllowPrivate)
        webhookDeliverer.onOutcome = { [metrics] outcome in
            metrics.counter("quorix_webhook_deliveries_total", [("outcome", outcome)]).increment()
        }
        OperationsRoutes.register(in: self)
        SeatMapRoutes.register(in: self)
        EventRoutes.register(in: self)
        HoldRoutes.register(in: self)
        ReportRoutes.register(in: self)
        WaitlistRoutes.register(in: self)
        StreamRoutes.register(in: self)
        WebhookRoutes.register(in: self)
    }

    public func add(
        _ method: String, _ template: String, access: Access, bodyLimit: Int = QuorixApp.defaultBodyLimit,
        _ handler: @escaping @LoopActor @Sendable (RequestContext) async throws -> HTTPResponse
    ) {
        router.add(method, template, Route(access: access, bodyLimit: bodyLimit, handler: handler))
        lastMatch = nil
    }

    // MARK: - HTTPResponder

    private func match(method: String, path: Substring) -> Router<Route>.Match {
        if let last = lastMatch, last.method == method, last.path == path { return last.match }
        let match = router.match(method: method, path: path)
        lastMatch = (method, path, match)
        return match
    }

    public func bodyLimit(for head: HTTPRequestHead) -> Int {
        if case .found(let route, _, _) = match(method: head.method, path: head.path) {
            return route.bodyLimit
        }
        // Unknown routes still get their body read (and then a 404), within the default limit.
        return QuorixApp.defaultBodyLimit
    }

    public func errorResponse(status: Int, message: String) -> HTTPResponse {
        let response = APIError.transport(status: status, message: message).response
        metrics.recordRequest(route: "unmatched", method: "-", status: status, nanoseconds: 0)
        logger.info("request rejected", metadata: ["status": "\(status)", "reason": "\(message)"])
        return response
    }

    public func respond(to request: HTTPRequest) async -> HTTPResponse {
        let started = EventLoop.hrtime()
        var routeLabel = "unmatched"
        var corsAllowed = QuorixApp.isPublicReadPath(request.path)
        var response: HTTPResponse
        do {
            switch match(method: request.method, path: request.path) {
            case .notFound:
                throw APIError.notFound("No endpoint at \(request.path); the README lists them.")
            case .methodNotAllowed(let allowed):
                if request.method == "OPTIONS" && corsAllowed {
                    response = QuorixApp.preflight(allowed: allowed)
                } else {
                    throw APIError.methodNotAllowed(allowed: allowed)
                }
            case .found(let route, let template, let parameters):
                routeLabel = template
                if case .publicRead = route.access {} else { corsAllowed = false }
                var context = RequestContext(request: request, parameters: parameters, route: template)
                context.principal = try await authorize(request, access: route.access)
                response = try await route.handler(context)
            }
        } catch let error as APIError {
            response = error.response
        } catch let error as PGError where error.sqlState?.hasPrefix("22") == true || error.sqlState == "23514" {
            // A value the database cannot store (a NUL in text, a number out of range) or a CHECK
            // it refuses: the client's input, which validation should have caught first.
            logger.warning("database refused a value", metadata: ["route": "\(routeLabel)", "error": "\(error.debugDescription)"])
            response = APIError.validation("", "a value in the request cannot be stored: \(error.message)").response
        } catch let error as PGError where error.isUnavailable {
            logger.warning("database unavailable", metadata: ["route": "\(routeLabel)", "error": "\(error.debugDescription)"])
            response = APIError.databaseUnavailable.response
        } catch {
            logger.error("request failed", metadata: [
                "route": "\(routeLabel)", "method": "\(request.method)", "error": "\(String(reflecting: error))",
            ])
            response = APIError.internalError.response
        }
        if corsAllowed {
            response.headers.add("Access-Control-Allow-Origin", "*")
            response.headers.add("Access-Control-Expose-Headers", "ETag")
        }
        let elapsed = EventLoop.hrtime() - started
        metrics.recordRequest(route: routeLabel, method: request.method, status: response.status, nanoseconds: elapsed)
        logger.info("request", metadata: [
            "method": "\(request.method)", "route": "\(routeLabel)", "status": "\(response.status)",
            "duration_ms": "\(Double(elapsed / 1_000) / 1_000)",
        ])
        return response
    }

    private func authorize(_ request: HTTPRequest, access: Access) async throws -> Principal? {
        let required: Set<Principal.Role>
        switch access {
        case .publicRead, .operations: return nil
        case .roles(let roles): required = roles
        }
        guard let header = request.headers["Authorization"] else {
            throw APIError.unauthorized("This endpoint needs an API key: send Authorization: Bearer <key>.")
        }
        guard let space = header.utf8.firstIndex(of: UInt8(ascii: " ")),
              HTTPHeaders.sameName(String(header[..<space]), "bearer"),
              case let key = header[header.utf8.index(after: space)...].trimmingCharacters(in: " "), !key.isEmpty
        else {
            throw APIError.unauthorized("The Authorization header must be: Bearer <key>.")
        }
        guard let principal = try await keys.principal(forKey: key) else {
            throw APIError.unauthorized("The API key is not valid (unknown or revoked).")
        }
        guard principal.role == .admin || required.contains(principal.role) else {
            let roles = required.map(\.rawValue).sorted().joined(separator: " or ")
            throw APIError.forbidden("This endpoint needs a key with role \(roles); this key's role is \(principal.role.rawValue).")
        }
        return principal
    }

    /// GETs under /v1/events and /v1/seatmaps (except reports) are readable without a key.
    static func isPublicReadPath(_ path: Substring) -> Bool {
        (path.utf8.starts(with: "/v1/events".utf8) || path.utf8.starts(with: "/v1/seatmaps".utf8)) && !path.utf8.suffix(7).elementsEqual("/report".utf8)
    }

    static func preflight(allowed: [String]) -> HTTPResponse {
        var response = HTTPResponse(status: 204)
        response.headers.add("Access-Control-Allow-Methods", allowed.joined(separator: ", "))
        response.headers.add("Access-Control-Allow-Headers", "If-None-Match, Last-Event-ID, Content-Type, Authorization")
        response.headers.add("Access-Control-Max-Age", "600")
        return response
    }
}

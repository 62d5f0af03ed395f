import HTTP1
import Loop
import PG

/// `/livez`, `/healthz`, `/metrics` and `POST /v1/keys`.
@LoopActor
enum OperationsRoutes {
    static func register(in app: QuorixApp) {
        // Liveness: the loop answers. Touches nothing else, so it also measures the HTTP layer alone.
        app.add("GET", "/livez", access: .operations) { _ in
            .json(.object([("status", "ok")]))
        }

        // Readiness: the loop and the database answer.
        app.add("GET", "/healthz", access: .operations) { [unowned app] _ in
            do {
                try await app.pool.query("SELECT 1")
                return .json(.object([("status", "ok"), ("database", "ok")]))
            } catch {
                var unavailable = APIError.databaseUnavailable
                unavailable.extra = [("status", "unavailable")]
                return unavailable.response
            }
        }

        app.add("GET", "/metrics", access: .operations) { [unowned app] _ in
            app.metrics.setPool(
                inUse: app.pool.inUse, open: app.pool.openConnections,
                waiting: app.pool.waiting, size: app.pool.configuration.size)
            app.metrics.setHoldsWaiting(app.holds.waiting)
            app.metrics.setStatementsSent(PGConnection.statementsSent)
            app.metrics.setListenerStatements(app.live.listenerStatements)
            return HTTPResponse(
                status: 200, headers: HTTPHeaders([("Content-Type", "text/plain; version=0.0.4; charset=utf-8")]),
                body: app.metrics.render())
        }

        app.add("POST", "/v1/keys", access: .roles([.admin])) { [unowned app] context in
            let (role, name) = try APIKeyStore.validateNewKey(try context.jsonObject())
            let created = try await app.pool.withConnection { connection in
                try await APIKeyStore.create(role: role, name: name, on: connection)
            }
            app.logger.info("api key created", metadata: ["key_id": "\(created.id)", "role": "\(role.rawValue)"])
            return .json(status: 201, .object([
                ("id", .string(created.id)), ("key", .string(created.key)), ("role", .string(created.role.rawValue)),
                ("name", .string(created.name)), ("created_at", .string(created.createdAt)),
            ]))
        }
    }
}

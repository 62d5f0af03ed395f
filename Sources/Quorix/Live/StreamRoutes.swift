import HTTP1
import Loop

/// `GET /v1/events/{id}/stream`: server-sent events of the event's seat changes.
@LoopActor
enum StreamRoutes {
    static func register(in app: QuorixApp) {
        app.add("GET", "/v1/events/{id}/stream", access: .publicRead) { [unowned app] context in
            let event = try await EventRoutes.findEvent(context, app, recent: true)
            let index = try await EventRoutes.seatMapIndex(for: event, app)
            // Browsers' EventSource cannot set headers on its first request: `?last_event_id=`
            // does what the header does on reconnects.
            var lastEventID = context.request.headers["Last-Event-ID"]
            for (name, value) in try context.queryItems() where name == "last_event_id" { lastEventID = value }
            guard let snapshot = try await app.live.snapshot(eventID: event.id, index: index) else {
                var error = APIError(status: 503, code: "stream_unavailable",
                    message: "Live seat status is unavailable while the server reconnects to the database; retry in a few seconds.")
                error.headers = [("Retry-After", "2")]
                throw error
            }
            var response = HTTPResponse(status: 200, headers: HTTPHeaders([
                ("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no"),
            ]))
            let since = lastEventID.flatMap { Int64($0.trimmingCharacters(in: " \t")) }
            response.stream = { [unowned app] stream in
                app.live.subscribe(stream, to: snapshot, lastEventID: since) {
                    EventRoutes.snapshotBody(snapshot, app)
                }
            }
            return response
        }
    }
}

import HTTP1
import Loop
import PG

/// Webhooks of an organizer (or admin) key: create (the secret is shown once), list, read, delete.
@LoopActor
enum WebhookRoutes {
    static func register(in app: QuorixApp) {
        app.add("POST", "/v1/webhooks", access: .roles([.organizer])) { [unowned app] context in
            var body = try context.jsonObject()
            let (url, types) = try read(&body, allowPrivate: app.webhookAllowPrivate)
            let secret = "whsec_" + Base64URL.encode(SecureRandom.bytes(32))
            let webhook = try await app.webhooks.create(ownerKeyID: context.principal?.keyID, url: url, eventTypes: types, secret: secret)
            return .json(status: 201, render(webhook, secret: secret))
        }

        app.add("GET", "/v1/webhooks", access: .roles([.organizer])) { [unowned app] context in
            let page = try Pagination.from(try context.queryItems())
            let webhooks = try await app.webhooks.list(ownerKeyID: context.principal?.keyID, afterID: page.afterID, limit: page.limit)
            return .json(page.page(webhooks.map { render($0, secret: nil) }, lastID: webhooks.last?.id))
        }

        app.add("GET", "/v1/webhooks/{id}", access: .roles([.organizer])) { [unowned app] context in
            let id = try context.resourceID("id", kind: "webhook")
            guard let webhook = try await app.webhooks.find(id: id, ownerKeyID: context.principal?.keyID) else {
                throw APIError.notFound("There is no webhook \(id).")
            }
            return .json(render(webhook, secret: nil))
        }

        app.add("DELETE", "/v1/webhooks/{id}", access: .roles([.organizer])) { [unowned app] context in
            let id = try context.resourceID("id", kind: "webhook")
            guard try await app.webhooks.delete(id: id, ownerKeyID: context.principal?.keyID) else {
                throw APIError.notFound("There is no webhook \(id).")
            }
            return HTTPResponse(status: 204)
        }
    }

    /// `url` and `events` of a create request; every problem is reported at once.
    static func read(_ body: inout JSONObjectReader, allowPrivate: Bool) throws(APIError) -> (String, [String]) {
        let url = try body.required("url") { reader throws(APIError) in try reader.string("url") }
        let types = try body.required("events") { reader throws(APIError) in try reader.stringArray("events") }
        body.rejectUnknown(["url", "events"])
        if let url {
            switch WebhookURL.parse(url) {
            case .failure(let problem):
                body.problem("url", problem.message)
            case .success(let parsed):
                if parsed.namesPrivateHost && !allowPrivate {
                    body.problem("url", "names a loopback, private or link-local address; webhooks must reach a public address (an operator may allow private ones with QUORIX_WEBHOOK_ALLOW_PRIVATE=1)")
                }
            }
        }
        if let types {
            if types.isEmpty { body.problem("events", "must name at least one event type") }
            var seen = Set<String>()
            for (index, type) in types.enumerated() {
                if !WebhookStore.eventTypes.contains(type) {
                    body.problem("events[\(index)]", "is not an event type; use one of \(WebhookStore.eventTypes.joined(separator: ", "))")
                } else if !seen.insert(type).inserted {
                    body.problem("events[\(index)]", "names \(type) twice")
                }
            }
        }
        try body.throwIfProblems()
        return (url ?? "", types ?? [])
    }

    static func render(_ webhook: WebhookRecord, secret: String?) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("id", .int(webhook.id)), ("url", .string(webhook.url)),
            ("events", .array(webhook.eventTypes.map { .string($0) })), ("created_at", .string(webhook.createdAt)),
        ]
        if let secret { members.append(("secret", .string(secret))) }
        return .object(members)
    }
}

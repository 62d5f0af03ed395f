import Foundation
import PG
import Quorix
import QuorixTestSupport
import Testing

/// `POST/GET/DELETE /v1/webhooks` (API.md "Reports, webhooks, operations"): who may, what is
/// refused and why, and that the secret is shown once.
@Suite struct WebhookAPITests {
    @Test func createListReadAndDeleteOwnWebhooks() async throws {
        let sale = try await webhookServer.fixture()
        let created = try sale.createWebhook(url: "http://127.0.0.1:9/hooks", events: ["booking.confirmed", "hold.expired"])
        let id = try #require(created["id"]?.catalogInt)
        #expect(created["url"]?.catalogString == "http://127.0.0.1:9/hooks")
        #expect(created["events"]?.catalogArray?.compactMap(\.catalogString) == ["booking.confirmed", "hold.expired"])
        let secret = try #require(created["secret"]?.catalogString)
        #expect(secret.hasPrefix("whsec_") && secret.count >= 40, "\(secret)")

        let list = try sale.send("GET", "/v1/webhooks", key: sale.organizer)
        #expect(list.status == 200, "\(list)")
        let items = try #require(try list.json()["items"]?.catalogArray)
        #expect(items.compactMap { $0["id"]?.catalogInt } == [id])
        #expect(try list.json()["next_cursor"]?.isCatalogNull == true)
        #expect(!String(decoding: list.body, as: UTF8.self).contains(secret), "GET shows the secret: \(list)")
        #expect(items.first?["secret"] == nil)

        let one = try sale.send("GET", "/v1/webhooks/\(id)", key: sale.organizer)
        #expect(one.status == 200, "\(one)")
        let shown = try one.json()
        #expect(shown["secret"] == nil && shown["id"]?.catalogInt == id)
        #expect(try one.json()["url"]?.catalogString == "http://127.0.0.1:9/hooks")

        // Another organizer sees none of it and cannot delete it.
        let other = try sale.server.createKey(role: "organizer", name: uniqueName("other webhook organizer"))
        let othersList = try sale.send("GET", "/v1/webhooks", key: other)
        #expect(try othersList.json()["items"]?.catalogArray?.count == 0, "\(othersList)")
        expectError(try sale.send("GET", "/v1/webhooks/\(id)", key: other), status: 404, code: "not_found")
        expectError(try sale.send("DELETE", "/v1/webhooks/\(id)", key: other), status: 404, code: "not_found")

        let deleted = try sale.send("DELETE", "/v1/webhooks/\(id)", key: sale.organizer)
        #expect(deleted.status == 204, "\(deleted)")
        expectError(try sale.send("DELETE", "/v1/webhooks/\(id)", key: sale.organizer), status: 404, code: "not_found")
        expectError(try sale.send("DELETE", "/v1/webhooks/999999999", key: sale.organizer), status: 404, code: "not_found")
        expectError(try sale.send("DELETE", "/v1/webhooks/abc", key: sale.organizer), status: 404, code: "not_found")
        #expect(try sale.send("GET", "/v1/webhooks", key: sale.organizer).json()["items"]?.catalogArray?.count == 0)
    }

    @Test func clientKeysAndMissingKeysAreRefused() async throws {
        let sale = try await webhookServer.fixture()
        let body = #"{"url": "http://127.0.0.1:9/", "events": ["hold.released"]}"#
        expectError(try sale.send("POST", "/v1/webhooks", key: sale.client, json: body), status: 403, code: "forbidden")
        expectError(try sale.send("GET", "/v1/webhooks", key: sale.client), status: 403, code: "forbidden")
        expectError(try sale.send("DELETE", "/v1/webhooks/1", key: sale.client), status: 403, code: "forbidden")
        expectError(try sale.send("POST", "/v1/webhooks", key: nil, json: body), status: 401, code: "unauthorized")
        // The configured admin key may have webhooks of its own.
        let admin = try sale.send("POST", "/v1/webhooks", key: sale.server.adminKey, json: body)
        #expect(admin.status == 201, "\(admin)")
        let adminList = try sale.send("GET", "/v1/webhooks", key: sale.server.adminKey)
        #expect(try adminList.json()["items"]?.catalogArray?.compactMap { $0["id"]?.catalogInt }.contains(try admin.json()["id"]?.catalogInt ?? -1) == true)
    }

    @Test func invalidBodiesAre422WithDetails() async throws {
        let sale = try await webhookServer.fixture()
        func post(_ body: String) throws -> HTTPTestResponse {
            try sale.send("POST", "/v1/webhooks", key: sale.organizer, json: body)
        }
        let https = try post(#"{"url": "https://example.com/hook", "events": ["hold.released"]}"#)
        expectValidation(https, paths: ["url"])
        #expect(https.detailPairs.first?.message.contains("https is not supported") == true, "\(https)")
        expectValidation(try post(#"{"url": "ftp://example.com/", "events": ["hold.released"]}"#), paths: ["url"])
        expectValidation(try post(#"{"url": "http://exa mple.com/", "events": ["hold.released"]}"#), paths: ["url"])
        expectValidation(try post(#"{"url": "http://user:pw@example.com/", "events": ["hold.released"]}"#), paths: ["url"])
        expectValidation(try post(#"{"url": "http://example.com:99999/", "events": ["hold.released"]}"#), paths: ["url"])
        expectValidation(try post(#"{"url": "http://example.com/", "events": []}"#), paths: ["events"])
        expectValidation(try post(#"{"url": "http://example.com/", "events": ["hold.sold"]}"#), paths: ["events[0]"])
        let duplicate = try post(#"{"url": "http://example.com/", "events": ["hold.released", "hold.released"]}"#)
        #expect(duplicate.detailPaths == ["events[1]"], "\(duplicate)")
        let missing = try post("{}")
        expectValidation(missing, paths: ["url"])
        #expect(Set(missing.detailPaths) == ["url", "events"], "\(missing)")
        expectValidation(try post(#"{"url": "http://example.com/", "events": ["hold.released"], "secret": "x"}"#), paths: ["secret"])
        // Wrong JSON types are 400.
        expectError(try post(#"{"url": 5, "events": ["hold.released"]}"#), status: 400)
        expectError(try post(#"{"url": "http://example.com/", "events": "hold.released"}"#), status: 400)
        #expect(try sale.send("GET", "/v1/webhooks", key: sale.organizer).json()["items"]?.catalogArray?.count == 0)
    }

    /// Without `QUORIX_WEBHOOK_ALLOW_PRIVATE`, loopback and private targets are refused.
    @Test func privateAddressesAreRefusedUnlessTheOperatorAllowsThem() async throws {
        let server = try await sharedServer.get()
        let organizer = try server.createKey(role: "organizer", name: uniqueName("private webhook organizer"))
        let refused = [
            "http://127.0.0.1/", "http://127.8.9.10:8080/x", "http://10.1.2.3/", "http://172.16.0.1/", "http://172.31.255.255/",
            "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data", "http://0.0.0.0/", "http://[::1]/",
            "http://[fc00::1]/", "http://[fd12:3456::1]/", "http://[fe80::1]/", "http://[::ffff:127.0.0.1]/", "http://localhost/",
            "http://LOCALHOST:3000/", "http://api.localhost/",
        ]
        for url in refused {
            let response = try server.request(
                "POST", "/v1/webhooks", headers: [bearer(organizer)], json: #"{"url": "\#(url)", "events": ["hold.released"]}"#)
            expectValidation(response, paths: ["url"])
            #expect(response.detailPairs.first?.message.contains("QUORIX_WEBHOOK_ALLOW_PRIVATE") == true, "\(url): \(response)")
        }
        // Public addresses and names are accepted (they are not reached at creation).
        for url in ["http://172.32.0.1/", "http://93.184.216.34/", "http://hooks.example.com:8080/q?x=1", "http://[2001:db8::1]/"] {
            let response = try server.request(
                "POST", "/v1/webhooks", headers: [bearer(organizer)], json: #"{"url": "\#(url)", "events": ["hold.released"]}"#)
            #expect(response.status == 201, "\(url): \(response)")
        }
    }
}

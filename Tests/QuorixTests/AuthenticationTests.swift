import PG
import Quorix
import QuorixTestSupport
import Testing

/// API keys over the wire: 401 without or with a bad key, roles, keys stored only as hashes.
@Suite struct AuthenticationTests {
    let body = #"{"role": "client", "name": "box office"}"#

    @Test func noKeyIs401WithWWWAuthenticate() async throws {
        let server = try await sharedServer.get()
        let response = try server.request("POST", "/v1/keys", json: body)
        expectError(response, status: 401, code: "unauthorized")
        #expect(response.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
    }

    @Test(arguments: [
        "Bearer qx_not_a_real_key", "Bearer ", "Bearer", "Basic dXNlcjpwYXNz", "qx_no_scheme", "Bearer \u{00e9}t\u{00e9}",
    ])
    func badKeyIs401(_ authorization: String) async throws {
        let server = try await sharedServer.get()
        let response = try server.request("POST", "/v1/keys", headers: [("Authorization", authorization)], json: body)
        expectError(response, status: 401, code: "unauthorized")
        #expect(response.header("WWW-Authenticate") != nil)
    }

    @Test func adminKeyCreatesOrganizerAndClientKeysShownOnce() async throws {
        let server = try await sharedServer.get()
        for role in ["organizer", "client", "admin"] {
            let response = try server.request("POST", "/v1/keys", headers: [server.adminAuthorization], json: #"{"role": "\#(role)", "name": "\#(role) key"}"#)
            #expect(response.status == 201, "\(response)")
            let json = try response.json()
            #expect(json["role"] == .string(role))
            #expect(json["name"] == .string("\(role) key"))
            guard case .string(let id)? = json["id"], case .string(let key)? = json["key"] else {
                Issue.record("no id or key in \(response)")
                continue
            }
            #expect(!id.isEmpty)
            #expect(key.count >= 32)
            // The new key works: it is recognised (and refused or allowed by role).
            let again = try server.request("POST", "/v1/keys", headers: [("Authorization", "Bearer \(key)")], json: body)
            #expect(again.status == (role == "admin" ? 201 : 403), "\(again)")
        }
    }

    @Test(arguments: ["client", "organizer"])
    func nonAdminKeyCannotCreateKeys(_ role: String) async throws {
        let server = try await sharedServer.get()
        let key = try server.createKey(role: role)
        let response = try server.request("POST", "/v1/keys", headers: [("Authorization", "Bearer \(key)")], json: body)
        expectError(response, status: 403, code: "forbidden")
    }

    @Test func storedKeyIsItsSHA256AndNeverTheKeyItself() async throws {
        let server = try await sharedServer.get()
        let response = try server.request("POST", "/v1/keys", headers: [server.adminAuthorization], json: #"{"role": "client", "name": "hash check"}"#)
        #expect(response.status == 201)
        guard case .string(let id)? = try response.json()["id"], case .string(let key)? = try response.json()["key"] else {
            Issue.record("no id or key in \(response)")
            return
        }
        let conninfo = server.databaseConninfo
        let rows = try await TestDatabase.query(conninfo, """
            SELECT key_hash = sha256(convert_to(\(key), 'UTF8')) AS hashed,
                   strpos(k::text, \(key)) = 0 AND strpos(encode(key_hash, 'escape'), \(key)) = 0 AS clear_absent
            FROM api_keys k WHERE id = \(id)::uuid
            """)
        #expect(rows.count == 1)
        #expect(try rows.first?.bool("hashed") == true, "key_hash is not the SHA-256 of the key")
        #expect(try rows.first?.bool("clear_absent") == true, "the key is stored in clear")
        // No row of the table holds any part of the key after its short prefix.
        let leaks = try await TestDatabase.query(conninfo, "SELECT count(*) AS n FROM api_keys k WHERE strpos(k::text, \(String(key.dropFirst(12)))) > 0")
        let leakCount = try leaks.first?.int("n")
        #expect(leakCount == 0, "the key is stored in clear")
    }
}

import Quorix
import QuorixTestSupport
import Testing

/// Bodies that are not JSON, or the wrong JSON, are 400; JSON that breaks the rules is 422 with
/// `details`. Exercised on `POST /v1/keys` with the admin key.
@Suite struct JSONBodyTests {
    func post(_ body: [UInt8], contentType: String? = "application/json") async throws -> HTTPTestResponse {
        let server = try await sharedServer.get()
        var headers = [server.adminAuthorization]
        if let contentType { headers.append(("Content-Type", contentType)) }
        return try server.request("POST", "/v1/keys", headers: headers, body: body)
    }

    func post(_ json: String) async throws -> HTTPTestResponse {
        try await post(Array(json.utf8))
    }

    @Test(arguments: [#"{"role": "client","#, "{role: 'client'}", #"{"role": "client", "name": "x"} trailing"#, "nul", "{\"a\":1,}"])
    func invalidJSONIs400(_ body: String) async throws {
        expectError(try await post(body), status: 400, code: "invalid_json")
    }

    @Test func invalidUTF8InsideAJSONStringIs400() async throws {
        let body = Array(#"{"role": "client", "name": ""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)
        expectError(try await post(body), status: 400, code: "invalid_json")
        let lone = Array(#"{"role": "client", "name": ""#.utf8) + [0xFF] + Array(#""}"#.utf8)
        expectError(try await post(lone), status: 400, code: "invalid_json")
    }

    /// JSON allows `\u0000`, PostgreSQL text does not, and libpq parameters would cut the value
    /// short at it: a 422, and nothing stored.
    @Test func aNulCharacterInAStringIs422AndNothingIsStored() async throws {
        let response = try await post(#"{"role": "client", "name": "nul-check\u0000office"}"#)
        expectError(response, status: 422, code: "validation_failed")
        let server = try await sharedServer.get()
        let stored = try TestCluster.psql(server.databaseConninfo, "SELECT count(*) FROM api_keys WHERE name LIKE 'nul-check%'")
        #expect(stored == "0")
    }

    @Test(arguments: [
        #"{"role": 5, "name": "x"}"#, #"{"role": "client", "name": ["x"]}"#, #"{"role": "client", "name": {"first": "x"}}"#,
        #"{"role": true, "name": "x"}"#, "[]", #""just a string""#, "42",
    ])
    func wrongJSONTypesAre400(_ body: String) async throws {
        let response = try await post(body)
        expectError(response, status: 400, code: "bad_request")
    }

    @Test func wrongTypeMessageNamesTheField() async throws {
        let response = try await post(#"{"role": 5, "name": "x"}"#)
        guard case .string(let message)? = try response.json()["error"]?["message"] else {
            Issue.record("no message: \(response)")
            return
        }
        #expect(message.contains("role"))
    }

    func details(_ response: HTTPTestResponse) throws -> [(path: String, message: String)] {
        guard case .array(let items)? = try response.json()["error"]?["details"] else { return [] }
        return items.compactMap { item in
            guard case .string(let path)? = item["path"], case .string(let message)? = item["message"] else { return nil }
            return (path, message)
        }
    }

    @Test func missingFieldsAre422WithADetailForEach() async throws {
        let response = try await post("{}")
        expectError(response, status: 422, code: "validation_failed")
        #expect(Set(try details(response).map(\.path)) == ["role", "name"])
        #expect(try details(response).allSatisfy { !$0.message.isEmpty })

        let nulls = try await post(#"{"role": null, "name": "x"}"#)
        expectError(nulls, status: 422, code: "validation_failed")
        #expect(try details(nulls).map(\.path) == ["role"])
    }

    @Test func unknownRoleIs422() async throws {
        let response = try await post(#"{"role": "superuser", "name": "x"}"#)
        expectError(response, status: 422, code: "validation_failed")
        #expect(try details(response).map(\.path) == ["role"])
    }

    @Test func unknownFieldsAre422() async throws {
        let response = try await post(#"{"role": "client", "name": "x", "colour": "red", "rolee": "admin"}"#)
        expectError(response, status: 422, code: "validation_failed")
        #expect(Set(try details(response).map(\.path)) == ["colour", "rolee"])
    }

    @Test func everyProblemIsReportedAtOnce() async throws {
        let response = try await post(#"{"role": "king", "name": "", "extra": 1}"#)
        expectError(response, status: 422, code: "validation_failed")
        #expect(Set(try details(response).map(\.path)) == ["role", "name", "extra"])
    }

    @Test func emptyBodyIs400AndNeedsNoContentType() async throws {
        // "A POST with an empty body needs no Content-Type": the answer is about the missing body.
        expectError(try await post([], contentType: nil), status: 400, code: "bad_request")
        expectError(try await post([], contentType: "application/json"), status: 400, code: "bad_request")
    }
}

import QuorixTestSupport
import Testing

/// HTTP/1.1 as spoken by a real `quorix serve` over real sockets.
@Suite struct HTTPProtocolTests {
    @Test func keepAliveServesSeveralRequestsOnOneConnection() async throws {
        let server = try await sharedServer.get()
        let client = try server.client()
        for _ in 0..<5 {
            let response = try client.request("GET", "/healthz")
            #expect(response.status == 200, "\(response)")
            #expect(response.header("Connection")?.lowercased() != "close")
            #expect(try response.json()["status"] == .string("ok"))
        }
        let metrics = try client.request("GET", "/metrics")
        #expect(metrics.status == 200)
        #expect(!client.peerClosed)
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let server = try await sharedServer.get()
        let client = try server.client()
        // Three requests in one write.
        try client.send(
            HTTPTestClient.requestBytes("GET", "/healthz") + HTTPTestClient.requestBytes("GET", "/nope")
                + HTTPTestClient.requestBytes("DELETE", "/healthz"))
        let responses = try client.readResponses(3)
        #expect(responses.map(\.status) == [200, 404, 405])
        #expect(try responses[0].json()["status"] == .string("ok"))
        expectError(responses[1], status: 404, code: "not_found")
        expectError(responses[2], status: 405, code: "method_not_allowed")
        #expect(responses[2].header("Allow") == "GET, HEAD")
        // The connection is still good for more.
        #expect(try client.request("GET", "/healthz").status == 200)
    }

    @Test func headRequestHasHeadersButNoBody() async throws {
        let server = try await sharedServer.get()
        let client = try server.client()
        let head = try client.request("HEAD", "/healthz")
        #expect(head.status == 200)
        #expect(head.body.isEmpty)
        #expect(Int(head.header("Content-Length") ?? "") ?? 0 > 0)
        // Nothing of a body followed: the next response parses cleanly.
        #expect(try client.request("GET", "/healthz").status == 200)
    }

    @Test(arguments: [
        "GARBAGE\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost localhost\r\n\r\n",
        "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        "\u{1}\u{2}\u{3}\r\n\r\n",
    ])
    func malformedRequestIsAnswered400AndTheConnectionClosed(_ raw: String) async throws {
        let server = try await sharedServer.get()
        let client = try server.client()
        try client.send(raw)
        let response = try client.readResponse()
        expectError(response, status: 400, code: "bad_request")
        #expect(response.header("Connection")?.lowercased() == "close")
        #expect(client.waitForClose(timeout: .seconds(5)))
    }

    @Test func wrongMethodIs405WithAllow() async throws {
        let server = try await sharedServer.get()
        let delete = try server.request("DELETE", "/healthz")
        expectError(delete, status: 405, code: "method_not_allowed")
        #expect(delete.header("Allow") == "GET, HEAD")
        let get = try server.request("GET", "/v1/keys")
        expectError(get, status: 405, code: "method_not_allowed")
        #expect(get.header("Allow") == "POST")
    }

    @Test(arguments: ["/nope", "/v1/nope", "/healthz/extra", "/v1/keys/1/2", "/%zz"])
    func unknownPathIs404InTheContractShape(_ path: String) async throws {
        let server = try await sharedServer.get()
        expectError(try server.request("GET", path), status: 404, code: "not_found")
    }

    @Test func declaredBodyOverOneMebibyteIs413() async throws {
        let server = try await sharedServer.get()
        let client = try server.client()
        // Only the head is sent: the declared length alone is refused.
        try client.sendRequest("POST", "/v1/keys", headers: [
            server.adminAuthorization, ("Content-Type", "application/json"), ("Content-Length", "\((1 << 20) + 1)"),
        ])
        let response = try client.readResponse()
        expectError(response, status: 413, code: "payload_too_large")
        #expect(client.waitForClose(timeout: .seconds(5)))
    }

    @Test func chunkedBodyOverOneMebibyteIs413() async throws {
        let server = try await sharedServer.get()
        let client = try server.client()
        let size = (1 << 20) + 1
        var bytes = HTTPTestClient.requestBytes("POST", "/v1/keys", headers: [
            server.adminAuthorization, ("Content-Type", "application/json"), ("Transfer-Encoding", "chunked"),
        ])
        bytes += Array("\(String(size, radix: 16))\r\n".utf8) + [UInt8](repeating: UInt8(ascii: " "), count: size)
        do {
            try client.send(bytes)
        } catch let error as HTTPTestClientError where error.isClosed {
            // The server may answer and close before taking the rest; the answer is still there.
        }
        let response = try client.readResponse()
        expectError(response, status: 413, code: "payload_too_large")
        #expect(client.waitForClose(timeout: .seconds(5)))
    }

    @Test func bodyAtTheLimitIsReadAndJudgedAsJSON() async throws {
        let server = try await sharedServer.get()
        // 1 MiB of whitespace around a valid object: within the limit, so it is parsed.
        let object = Array(#"{"role": "client", "name": "big body"}"#.utf8)
        let body = object + [UInt8](repeating: UInt8(ascii: " "), count: (1 << 20) - object.count)
        let response = try server.request("POST", "/v1/keys", headers: [server.adminAuthorization, ("Content-Type", "application/json")], body: body)
        #expect(response.status == 201, "\(response)")
    }

    @Test func nonJSONContentTypeIs415() async throws {
        let server = try await sharedServer.get()
        let response = try server.request(
            "POST", "/v1/keys", headers: [server.adminAuthorization, ("Content-Type", "text/plain")],
            body: Array(#"{"role": "client", "name": "x"}"#.utf8))
        expectError(response, status: 415, code: "unsupported_media_type")
        let latin1 = try server.request(
            "POST", "/v1/keys", headers: [server.adminAuthorization, ("Content-Type", "application/json; charset=latin1")],
            body: Array(#"{"role": "client", "name": "x"}"#.utf8))
        expectError(latin1, status: 415, code: "unsupported_media_type")
    }

    @Test func headerSectionOver16KiBIs431() async throws {
        let server = try await sharedServer.get()
        let client = try server.client()
        try client.sendRequest("GET", "/healthz", headers: [("X-Filler", String(repeating: "a", count: 17 * 1024))])
        let response = try client.readResponse()
        expectError(response, status: 431, code: "headers_too_large")
        #expect(client.waitForClose(timeout: .seconds(5)))

        // Many small fields add up the same way.
        let many = try server.client()
        try many.sendRequest("GET", "/healthz", headers: (0..<400).map { ("X-Field-\($0)", String(repeating: "b", count: 40)) })
        expectError(try many.readResponse(), status: 431, code: "headers_too_large")

        // Just under the limit is fine.
        let fine = try server.request("GET", "/healthz", headers: [("X-Filler", String(repeating: "a", count: 15 * 1024))])
        #expect(fine.status == 200)
    }

    @Test func contentLengthWithTransferEncodingIs400AndClosed() async throws {
        let server = try await sharedServer.get()
        let client = try server.client()
        // A classic smuggling attempt: the two framings disagree about where the request ends.
        try client.send(
            "POST /v1/keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        let response = try client.readResponse()
        expectError(response, status: 400, code: "bad_request")
        #expect(client.waitForClose(timeout: .seconds(5)), "the smuggled request was not dropped with the connection")
        #expect(client.unreadBytes.isEmpty, "a second response came: \(String(decoding: client.unreadBytes, as: UTF8.self))")
    }

    @Test func conflictingContentLengthsAre400AndClosed() async throws {
        let server = try await sharedServer.get()
        let client = try server.client()
        try client.send(
            "POST /v1/keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}")
        let response = try client.readResponse()
        expectError(response, status: 400, code: "bad_request")
        #expect(client.waitForClose(timeout: .seconds(5)))
    }
}

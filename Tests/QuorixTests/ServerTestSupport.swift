import QuorixTestSupport
import Testing

/// One `quorix serve` shared by the suites whose tests do not interfere with each other
/// (protocol, JSON bodies, authentication, operations).
let sharedServer = SharedServer()

extension ServerProcess {
    func client(timeout: Duration = .seconds(10)) throws -> HTTPTestClient {
        try HTTPTestClient(port: port, timeout: timeout)
    }

    var adminAuthorization: (String, String) { ("Authorization", "Bearer \(adminKey)") }

    /// One request on a connection of its own.
    func request(
        _ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil
    ) throws -> HTTPTestResponse {
        try HTTPTestClient.request(port: port, method, path, headers: headers, body: body)
    }

    func request(_ method: String, _ path: String, headers: [(String, String)] = [], json: String) throws -> HTTPTestResponse {
        try request(method, path, headers: [("Content-Type", "application/json")] + headers, body: Array(json.utf8))
    }

    /// Creates an API key through the API and returns it.
    func createKey(role: String, name: String = "test") throws -> String {
        let response = try request("POST", "/v1/keys", headers: [adminAuthorization], json: #"{"role": "\#(role)", "name": "\#(name)"}"#)
        guard response.status == 201, case .string(let key)? = try response.json()["key"] else {
            throw SupportError("creating a \(role) key failed: \(response)")
        }
        return key
    }
}

/// Checks a response is the contract's error: this status, this code, the `{"error": {...}}` shape.
func expectError(
    _ response: HTTPTestResponse, status: Int, code: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(response.status == status, "\(response)", sourceLocation: sourceLocation)
    #expect(response.errorShapeProblems.isEmpty, "\(response.errorShapeProblems) in \(response)", sourceLocation: sourceLocation)
    if let code {
        #expect(response.errorCode == code, "\(response)", sourceLocation: sourceLocation)
    }
}

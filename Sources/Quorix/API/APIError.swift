public import HTTP1

/// One problem found in a well-formed but invalid body: where (a JSON path) and what to fix.
public struct ValidationProblem: Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let message: String

    public init(_ path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

/// An error a client can act on, rendered once, at the router's edge, as
/// `{"error": {"code", "message", ...}}`.
public struct APIError: Error, Sendable {
    public let status: Int
    public let code: String
    public let message: String
    public var details: [ValidationProblem] = []
    public var extra: [(String, JSONValue)] = []
    public var headers: [(String, String)] = []

    public init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public static func badRequest(_ message: String) -> APIError {
        APIError(status: 400, code: "bad_request", message: message)
    }

    public static func invalidJSON(_ reason: String) -> APIError {
        APIError(status: 400, code: "invalid_json", message: "The body is not valid JSON: \(reason).")
    }

    public static func unauthorized(_ message: String) -> APIError {
        var error = APIError(status: 401, code: "unauthorized", message: message)
        error.headers = [("WWW-Authenticate", "Bearer")]
        return error
    }

    public static func forbidden(_ message: String) -> APIError {
        APIError(status: 403, code: "forbidden", message: message)
    }

    public static func notFound(_ message: String) -> APIError {
        APIError(status: 404, code: "not_found", message: message)
    }

    public static func methodNotAllowed(allowed: [String]) -> APIError {
        var error = APIError(
            status: 405, code: "method_not_allowed",
            message: "This path accepts \(allowed.joined(separator: ", ")).")
        error.headers = [("Allow", allowed.joined(separator: ", "))]
        error.extra = [("allowed", .array(allowed.map { .string($0) }))]
        return error
    }

    public static func unsupportedMediaType(_ message: String) -> APIError {
        APIError(status: 415, code: "unsupported_media_type", message: message)
    }

    public static func validation(_ problems: [ValidationProblem]) -> APIError {
        var error = APIError(
            status: 422, code: "validation_failed",
            message: problems.count == 1 ? "The request has 1 problem." : "The request has \(problems.count) problems.")
        error.details = problems
        return error
    }

    public static func validation(_ path: String, _ message: String) -> APIError {
        validation([ValidationProblem(path, message)])
    }

    public static let databaseUnavailable: APIError = {
        var error = APIError(
            status: 503, code: "database_unavailable",
            message: "The database is not answering; retry after the number of seconds in Retry-After.")
        error.headers = [("Retry-After", "1")]
        return error
    }()

    public static let internalError = APIError(
        status: 500, code: "internal_error",
        message: "Something went wrong on our side; it was logged. Retry, and report it if it persists.")

    /// For errors the HTTP layer found before the request reached a route.
    public static func transport(status: Int, message: String) -> APIError {
        let code = switch status {
        case 400: "bad_request"
        case 408: "request_timeout"
        case 413: "payload_too_large"
        case 431: "headers_too_large"
        default: "http_error"
        }
        return APIError(status: status, code: code, message: message)
    }

    public var json: JSONValue {
        var body: [(String, JSONValue)] = [("code", .string(code)), ("message", .string(message))]
        if !details.isEmpty {
            body.append(("details", .array(details.map { .object([("path", .string($0.path)), ("message", .string($0.message))]) })))
        }
        body.append(contentsOf: extra)
        return .object([("error", .object(body))])
    }

    public var response: HTTPResponse {
        var response = HTTPResponse.json(status: status, json)
        for (name, value) in headers { response.headers.add(name, value) }
        return response
    }
}

extension HTTPResponse {
    public static func json(status: Int = 200, _ value: JSONValue) -> HTTPResponse {
        HTTPResponse(status: status, headers: HTTPHeaders([("Content-Type", "application/json")]), body: JSONWriter.bytes(value))
    }
}

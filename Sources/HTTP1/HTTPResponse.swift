public import Loop

/// A response to write: status, header fields and a body whose length is known — or, for a
/// long-lived stream (server-sent events), a body written in chunks for as long as it lasts.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Set by a handler to close the connection after this response.
    public var closeConnection = false
    /// Set for a streamed body: called once the head is written, with the stream to write the
    /// body to (chunked); the connection serves nothing else until the stream ends.
    public var stream: (@LoopActor @Sendable (ResponseStream) -> Void)?

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public init(status: Int, contentType: String, body: String) {
        self.init(status: status, headers: HTTPHeaders([("Content-Type", contentType)]), body: Array(body.utf8))
    }

    /// Status codes whose responses never carry a body (RFC 9110 §6.4.1).
    var forbidsBody: Bool { status == 204 || status == 304 || (100..<200).contains(status) }

    /// The bytes on the wire; `isHeadRequest` drops the body but keeps its length.
    func serialize(keepAlive: Bool, date: String, isHeadRequest: Bool) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(HTTPResponse.reasonPhrase(status))\r\n"
        for (name, value) in headers.fields {
            head += "\(name): \(value)\r\n"
        }
        if stream != nil {
            head += "Transfer-Encoding: chunked\r\n"
        } else if !forbidsBody {
            head += "Content-Length: \(body.count)\r\n"
        }
        head += "Date: \(date)\r\n"
        if !keepAlive { head += "Connection: close\r\n" }
        head += "\r\n"
        var bytes = Array(head.utf8)
        if !forbidsBody && !isHeadRequest && stream == nil {
            bytes.append(contentsOf: body)
        }
        return bytes
    }

    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 204: "No Content"
        case 304: "Not Modified"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 413: "Content Too Large"
        case 415: "Unsupported Media Type"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: "Status \(status)"
        }
    }
}

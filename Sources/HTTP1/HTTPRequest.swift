/// The request line and header section of a request.
public struct HTTPRequestHead: Sendable {
    public var method: String
    /// The request target exactly as sent (`/v1/events/7/seats?status=free`).
    public var target: String
    public var versionMajor: Int
    public var versionMinor: Int
    public var headers: HTTPHeaders
    /// Whether the connection may be reused after this request (HTTP/1.1 default, `Connection`).
    public var keepAlive: Bool

    /// The target's path, without the query.
    /// (Searched as bytes: a search by `Character` was 4 % of a refused hold's CPU.)
    public var path: Substring {
        target.utf8.firstIndex(of: UInt8(ascii: "?")).map { target[..<$0] } ?? target[...]
    }

    /// The raw query string after `?`, if any.
    public var query: Substring? {
        target.utf8.firstIndex(of: UInt8(ascii: "?")).map { target[target.utf8.index(after: $0)...] }
    }

    public var expectsContinue: Bool {
        headers["Expect"]?.lowercased() == "100-continue"
    }
}

/// A complete request: head and body.
public struct HTTPRequest: Sendable {
    public var head: HTTPRequestHead
    public var body: [UInt8]
    public var remoteAddress: String

    public init(head: HTTPRequestHead, body: [UInt8], remoteAddress: String = "") {
        self.head = head
        self.body = body
        self.remoteAddress = remoteAddress
    }

    public var method: String { head.method }
    public var headers: HTTPHeaders { head.headers }
    public var path: Substring { head.path }
}

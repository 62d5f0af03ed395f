/// A PostgreSQL failure with two faces: `description` is safe to show a client, `debugDescription`
/// carries the server's message and detail for logs.
public struct PGError: Error, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The database cannot be reached, or the connection broke: retry later (503).
        case unavailable
        /// No pooled connection became free in time (503).
        case poolTimeout
        /// The server refused the statement; see `sqlState` and `constraint`.
        case server
        /// A result did not have the shape the code expected.
        case decoding
    }

    public let kind: Kind
    public let sqlState: String?
    public let constraint: String?
    public let message: String
    public let detail: String?

    public init(kind: Kind, message: String, sqlState: String? = nil, constraint: String? = nil, detail: String? = nil) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
        self.constraint = constraint
        self.detail = detail
    }

    /// True for the cases a client can only wait out: unreachable database, broken connection,
    /// server shutting down or starting, pool exhausted.
    public var isUnavailable: Bool {
        switch kind {
        case .unavailable, .poolTimeout: return true
        case .server:
            guard let sqlState else { return false }
            // 08: connection exception; 57P01-57P03: admin/crash shutdown, cannot connect now.
            return sqlState.hasPrefix("08") || ["57P01", "57P02", "57P03", "53300"].contains(sqlState)
        case .decoding: return false
        }
    }

    public var isUniqueViolation: Bool { sqlState == "23505" }
    public var isSerializationFailure: Bool { sqlState == "40001" || sqlState == "40P01" }

    public var description: String {
        switch kind {
        case .unavailable: "the database is unavailable"
        case .poolTimeout: "no database connection became free in time"
        case .server: "the database refused the statement (SQLSTATE \(sqlState ?? "?"))"
        case .decoding: "a database result had an unexpected shape"
        }
    }

    public var debugDescription: String {
        var text = "\(kind): \(message)"
        if let sqlState { text += " [SQLSTATE \(sqlState)]" }
        if let constraint { text += " [constraint \(constraint)]" }
        if let detail { text += " (\(detail))" }
        return text
    }
}

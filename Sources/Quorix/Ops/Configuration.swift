/// Server settings, from flags and `QUORIX_*` environment variables. Validation says what to fix.
public struct Configuration: Sendable {
    public var listenHost = "127.0.0.1"
    public var listenPort = 8080
    /// A libpq connection string or `postgresql://` URL; nil starts the embedded cluster.
    public var databaseURL: String?
    public var dataDirectory = ".quorix"
    public var adminKey: String?
    public var poolSize = 8
    /// Hold statements running at once (`QUORIX_HOLD_STATEMENTS`); holds that arrive meanwhile
    /// wait and go into the next statement together. Unset: a quarter of the pool, at least 2.
    public var holdStatements: Int?
    public var effectiveHoldStatements: Int { min(poolSize, holdStatements ?? max(2, poolSize / 4)) }
    public var idleTimeoutMilliseconds: UInt64 = 60_000
    public var requestTimeoutMilliseconds: UInt64 = 30_000
    public var drainTimeoutMilliseconds: UInt64 = 10_000
    public var migrationsDirectory: String?
    public var seatMapsDirectory: String?
    /// Load `SeatMaps/*.json` into an empty database at start (the embedded default does).
    public var loadSampleSeatMaps = false
    public var logLevel = "info"
    /// LISTEN/NOTIFY seat status (the snapshot and the stream). Off for a database reached
    /// through a pooler that cannot LISTEN (PgBouncer in transaction mode): then seat status is
    /// read from the database and the stream answers 503.
    public var liveSeatStatus = true
    /// How often stream clients get a heartbeat comment.
    public var streamHeartbeatMilliseconds: UInt64 = 15_000
    /// Webhooks may name loopback and private addresses (`QUORIX_WEBHOOK_ALLOW_PRIVATE=1`): for
    /// receivers on the server's own network, and tests.
    public var webhookAllowPrivate = false

    public init() {}

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// Reads `QUORIX_*` variables over the defaults.
    public static func fromEnvironment(_ environment: [String: String]) throws(Invalid) -> Configuration {
        var configuration = Configuration()
        if let listen = environment["QUORIX_LISTEN"] { try configuration.setListen(listen, source: "QUORIX_LISTEN") }
        if let url = environment["QUORIX_DATABASE_URL"], !url.isEmpty { configuration.databaseURL = url }
        if let directory = environment["QUORIX_DATA_DIR"], !directory.isEmpty { configuration.dataDirectory = directory }
        if let key = environment["QUORIX_ADMIN_KEY"], !key.isEmpty { configuration.adminKey = key }
        if let size = environment["QUORIX_DB_POOL_SIZE"] {
            configuration.poolSize = try integer(size, name: "QUORIX_DB_POOL_SIZE", range: 1...256)
        }
        if let statements = environment["QUORIX_HOLD_STATEMENTS"] {
            configuration.holdStatements = try integer(statements, name: "QUORIX_HOLD_STATEMENTS", range: 1...256)
        }
        if let idle = environment["QUORIX_HTTP_IDLE_TIMEOUT_MS"] {
            configuration.idleTimeoutMilliseconds = UInt64(try integer(idle, name: "QUORIX_HTTP_IDLE_TIMEOUT_MS", range: 10...3_600_000))
        }
        if let request = environment["QUORIX_HTTP_REQUEST_TIMEOUT_MS"] {
            configuration.requestTimeoutMilliseconds = UInt64(try integer(request, name: "QUORIX_HTTP_REQUEST_TIMEOUT_MS", range: 10...3_600_000))
        }
        if let drain = environment["QUORIX_DRAIN_TIMEOUT_MS"] {
            configuration.drainTimeoutMilliseconds = UInt64(try integer(drain, name: "QUORIX_DRAIN_TIMEOUT_MS", range: 0...600_000))
        }
        if let directory = environment["QUORIX_MIGRATIONS_DIR"], !directory.isEmpty { configuration.migrationsDirectory = directory }
        if let directory = environment["QUORIX_SEATMAPS_DIR"], !directory.isEmpty { configuration.seatMapsDirectory = directory }
        if let level = environment["QUORIX_LOG_LEVEL"] { try configuration.setLogLevel(level) }
        if let live = environment["QUORIX_LIVE_SEATS"] {
            guard ["on", "off"].contains(live) else {
                throw Invalid(description: "QUORIX_LIVE_SEATS must be on or off (got '\(live)')")
            }
            configuration.liveSeatStatus = live == "on"
        }
        if let heartbeat = environment["QUORIX_STREAM_HEARTBEAT_MS"] {
            configuration.streamHeartbeatMilliseconds = UInt64(try integer(heartbeat, name: "QUORIX_STREAM_HEARTBEAT_MS", range: 10...600_000))
        }
        if let allow = environment["QUORIX_WEBHOOK_ALLOW_PRIVATE"] {
            guard allow == "0" || allow == "1" else {
                throw Invalid(description: "QUORIX_WEBHOOK_ALLOW_PRIVATE must be 1 (allow) or 0 (refuse) (got '\(allow)')")
            }
            configuration.webhookAllowPrivate = allow == "1"
        }
        try configuration.validate()
        return configuration
    }

    public mutating func setListen(_ value: String, source: String = "--listen") throws(Invalid) {
        guard let colon = value.lastIndex(of: ":") else {
            throw Invalid(description: "\(source) must be HOST:PORT, for example 127.0.0.1:8080 (got '\(value)')")
        }
        var host = String(value[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty || host == "localhost" { host = "127.0.0.1" }
        guard let port = Int(value[value.index(after: colon)...]), (0...65_535).contains(port) else {
            throw Invalid(description: "\(source) needs a port from 0 to 65535, for example 127.0.0.1:8080 (got '\(value)')")
        }
        guard host.allSatisfy({ $0.isHexDigit || $0 == "." || $0 == ":" }) else {
            throw Invalid(description: "\(source) needs an IP address as host, such as 127.0.0.1, 0.0.0.0 or ::1 (got '\(host)')")
        }
        listenHost = host
        listenPort = port
    }

    public mutating func setLogLevel(_ value: String) throws(Invalid) {
        let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
        guard levels.contains(value) else {
            throw Invalid(description: "QUORIX_LOG_LEVEL must be one of \(levels.joined(separator: ", ")) (got '\(value)')")
        }
        logLevel = value
    }

    public func validate() throws(Invalid) {
        if let adminKey, adminKey.count < 16 {
            throw Invalid(description: "QUORIX_ADMIN_KEY must be at least 16 characters; generate one with: openssl rand -hex 24")
        }
        if let holdStatements, holdStatements > poolSize {
            throw Invalid(description: "QUORIX_HOLD_STATEMENTS (\(holdStatements)) must not exceed QUORIX_DB_POOL_SIZE (\(poolSize)): each statement needs a connection")
        }
    }

    private static func integer(_ text: String, name: String, range: ClosedRange<Int>) throws(Invalid) -> Int {
        guard let value = Int(text), range.contains(value) else {
            throw Invalid(description: "\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound) (got '\(text)')")
        }
        return value
    }
}

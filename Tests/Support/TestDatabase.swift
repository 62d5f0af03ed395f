public import PG
import Loop

/// One-off statements from tests that are not on the loop: connect, run, close.
public enum TestDatabase {
    /// Runs one parameterized statement on a connection of its own.
    @discardableResult
    public static func query(_ conninfo: String, _ query: PGQuery) async throws -> PGResult {
        try await TestLoop.run {
            let connection = try await PGConnection.connect(conninfo)
            defer { connection.close() }
            return try await connection.query(query)
        }
    }

    /// Opens a connection that stays open (for locks held across a test); close it on the loop.
    public static func connect(_ conninfo: String) async throws -> PGConnection {
        try await TestLoop.run { try await PGConnection.connect(conninfo) }
    }

    /// Runs statements (no parameters) on an open connection.
    @discardableResult
    public static func execute(_ sql: String, on connection: PGConnection) async throws -> [PGResult] {
        try await TestLoop.run { try await connection.execute(sql) }
    }

    public static func close(_ connection: PGConnection) async {
        _ = try? await TestLoop.run { connection.close() }
    }
}

public import Loop
import Crypto

/// One numbered SQL file from `Migrations/` (`0001_init.sql`).
public struct MigrationFile: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let sql: String
    public let checksum: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
        checksum = MigrationFile.checksum(of: sql)
    }

    /// `NNNN_words.sql` → (NNNN, "words"); anything else is not a migration.
    public static func parseFileName(_ fileName: String) -> (version: Int, name: String)? {
        guard fileName.hasSuffix(".sql") else { return nil }
        let stem = fileName.dropLast(4)
        guard let underscore = stem.firstIndex(of: "_") else { return nil }
        let digits = stem[..<underscore]
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), let version = Int(digits) else { return nil }
        let name = String(stem[stem.index(after: underscore)...])
        guard !name.isEmpty else { return nil }
        return (version, name)
    }

    public static func checksum(of sql: String) -> String {
        SHA256.hash(data: Array(sql.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined()
    }
}

public struct MigrationError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
}

/// What to apply, given the files and what the database recorded. Pure: tested without a database.
public enum MigrationPlan {
    public static func pending(files: [MigrationFile], applied: [Int: String]) throws(MigrationError) -> [MigrationFile] {
        var seen: [Int: String] = [:]
        for file in files {
            if let other = seen[file.version] {
                throw MigrationError(description: "two migrations have version \(file.version): \(other) and \(file.name); renumber one")
            }
            seen[file.version] = file.name
        }
        for file in files {
            if let recorded = applied[file.version], recorded != file.checksum {
                throw MigrationError(description: """
                    migration \(fourDigits(file.version))_\(file.name).sql was changed after it was applied \
                    (checksum \(recorded.prefix(12)) in the database, \(file.checksum.prefix(12)) on disk); \
                    restore the file and put the change in a new migration
                    """)
            }
        }
        if let unknown = applied.keys.filter({ seen[$0] == nil }).min() {
            throw MigrationError(description: "the database has migration \(unknown) applied, which this build does not have; run a newer quorix")
        }
        return files.filter { applied[$0.version] == nil }.sorted { $0.version < $1.version }
    }
}

/// `7` → `0007`, as migration files are named.
func fourDigits(_ value: Int) -> String {
    let digits = String(value)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}

/// Applies pending migrations, each in its own transaction, recording version and checksum.
///
/// A session advisory lock serialises concurrent migrators (two servers starting at once): the
/// second waits, then finds nothing left to do.
@LoopActor
public struct Migrator {
    public let files: [MigrationFile]

    public init(files: [MigrationFile]) {
        self.files = files
    }

    /// An arbitrary constant naming the migration lock among advisory locks.
    static let lockKey = 0x5155_4f52_4958

    /// Returns the migrations it applied.
    @discardableResult
    public func run(on connection: PGConnection, progress: (MigrationFile) -> Void = { _ in }) async throws -> [MigrationFile] {
        try await connection.query("SELECT pg_advisory_lock(\(Migrator.lockKey))")
        do {
            let applied = try await apply(on: connection, progress: progress)
            try await connection.query("SELECT pg_advisory_unlock(\(Migrator.lockKey))")
            return applied
        } catch {
            if !connection.isBroken {
                _ = try? await connection.execute("ROLLBACK")
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Migrator.lockKey))")
            }
            throw error
        }
    }

    private func apply(on connection: PGConnection, progress: (MigrationFile) -> Void) async throws -> [MigrationFile] {
        try await connection.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
        let rows = try await connection.query("SELECT version, checksum FROM schema_migrations")
        var applied: [Int: String] = [:]
        for row in rows.rows {
            applied[try row.int("version")] = try row.string("checksum")
        }
        let pending = try MigrationPlan.pending(files: files, applied: applied)
        for file in pending {
            progress(file)
            try await connection.execute("BEGIN")
            try await connection.execute(file.sql)
            try await connection.query("""
                INSERT INTO schema_migrations (version, name, checksum) VALUES (\(file.version), \(file.name), \(file.checksum))
                """)
            try await connection.execute("COMMIT")
        }
        return pending
    }
}

import Foundation
import Logging
import Quorix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The PostgreSQL cluster of this test process: started on first use (thread-safe), shared by every
/// test, which each take a fresh database of their own.
///
/// - `QUORIX_TEST_DATABASE_URL` (an admin conninfo of an existing server): used as it is.
/// - Otherwise an `EmbeddedPostgres` cluster under `QUORIX_TEST_PG_DIR`, default
///   `<package root>/.build/test-postgres`, started if it is not running. It is left running when the
///   tests end (another test process may share it; `scripts/test` stops it).
///
/// There is no skipping: when no cluster can be had, every test that needs one fails with what to do.
public final class TestCluster: Sendable {
    public static let shared = TestCluster()

    private enum Phase {
        case notStarted
        case ready(admin: String)
        case failed(String)
    }

    private let phase = Mutex(Phase.notStarted)
    /// Databases made by this process, dropped when it exits.
    private let created = Mutex(Set<String>())

    private init() {}

    /// A conninfo with the rights to create databases (database `postgres`). Blocks while the cluster
    /// starts (the first call only); never call it on the loop thread.
    public func adminConninfo() throws -> String {
        try phase.withLock { phase throws -> String in
            switch phase {
            case .ready(let admin):
                return admin
            case .failed(let message):
                throw SupportError(message)
            case .notStarted:
                do {
                    let admin = try TestCluster.start()
                    phase = .ready(admin: admin)
                    return admin
                } catch {
                    let message = """
                        no PostgreSQL for the tests: \(error)
                        What to do: install the PostgreSQL server (bash scripts/setup.sh installs postgresql-15), \
                        or point QUORIX_TEST_PG_DIR at a writable folder every user can traverse, \
                        or set QUORIX_TEST_DATABASE_URL to an admin conninfo of a running server \
                        (for example "host=/tmp/devpg port=55432 user=postgres dbname=postgres").
                        """
                    phase = .failed(message)
                    throw SupportError(message)
                }
            }
        }
    }

    /// Creates an empty database `quorix_test_<random hex>` and returns its libpq conninfo.
    /// Blocks while psql runs; from async code prefer the async overload, which never runs on the loop.
    public func createDatabase() throws -> String {
        try makeDatabase()
    }

    func makeDatabase() throws -> String {
        let admin = try adminConninfo()
        let name = "quorix_test_" + TestCluster.randomHex(bytes: 8)
        created.withLock { _ = $0.insert(name) }
        try TestCluster.psql(admin, ["-c", "CREATE DATABASE \(name)"])
        return TestCluster.conninfo(admin, database: name)
    }

    /// Creates a fresh database off the loop thread and off the caller's actor.
    @concurrent
    public func createDatabase() async throws -> String {
        try makeDatabase()
    }

    /// Drops a database made by `createDatabase` (connections to it are terminated).
    public func dropDatabase(conninfo: String) throws {
        guard let name = TestCluster.databaseName(in: conninfo) else { return }
        let admin = try adminConninfo()
        try TestCluster.psql(admin, ["-c", "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"])
        created.withLock { _ = $0.remove(name) }
    }

    /// Runs SQL through psql and returns its unaligned, tuples-only output (`-At`).
    @discardableResult
    public static func psql(_ conninfo: String, _ arguments: [String]) throws -> String {
        let result = try Subprocess.run(
            psqlPath(), ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-d", conninfo] + arguments,
            timeout: .seconds(60))
        guard result.succeeded else {
            throw SupportError("psql \(arguments.joined(separator: " ")) failed (exit \(result.status)): \(result.standardError)\(result.standardOutput)")
        }
        return result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @discardableResult
    public static func psql(_ conninfo: String, _ sql: String) throws -> String {
        try psql(conninfo, ["-c", sql])
    }

    // MARK: - Conninfo

    /// `admin` with its database replaced by `database` (key=value conninfo or postgres:// URL).
    public static func conninfo(_ admin: String, database: String) -> String {
        for scheme in ["postgresql://", "postgres://"] where admin.hasPrefix(scheme) {
            let rest = admin.dropFirst(scheme.count)
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            var query = ""
            if let questionMark = rest[authorityEnd...].firstIndex(of: "?") { query = String(rest[questionMark...]) }
            return scheme + authority + "/" + database + query
        }
        // Later keywords win in libpq conninfo strings.
        return admin + " dbname=" + database
    }

    static func databaseName(in conninfo: String) -> String? {
        conninfo.split(separator: " ").last { $0.hasPrefix("dbname=") }.map { String($0.dropFirst("dbname=".count)) }
            ?? conninfo.split(separator: "/").last.map { String($0.split(separator: "?").first ?? $0) }
    }

    public static func randomHex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in
            let value = UInt8.random(in: 0...255, using: &generator)
            return (value < 16 ? "0" : "") + String(value, radix: 16)
        }.joined()
    }

    // MARK: - Starting

    private static func start() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let url = environment["QUORIX_TEST_DATABASE_URL"], !url.isEmpty {
            do {
                _ = try psql(url, "SELECT 1")
            } catch {
                throw SupportError("QUORIX_TEST_DATABASE_URL=\(url) does not answer: \(error)")
            }
            registerCleanUp()
            return url
        }
        let directory = environment["QUORIX_TEST_PG_DIR"].flatMap { $0.isEmpty ? nil : $0 }
            ?? PackagePaths.root + "/.build/test-postgres"
        let logger = Logger(label: "quorix.test-cluster") { _ in SwiftLogNoOpLogHandler() }
        let cluster = EmbeddedPostgres(dataDirectory: directory, logger: logger)

        // Another test process (a colleague's `swift test`) may be starting the same cluster.
        let lockPath = directory.hasSuffix("/") ? String(directory.dropLast()) + ".lock" : directory + ".lock"
        try FileManager.default.createDirectory(
            atPath: URL(fileURLWithPath: lockPath).deletingLastPathComponent().path, withIntermediateDirectories: true)
        let lock = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lock >= 0 else { throw SupportError("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(lock) }
        while flock(lock, LOCK_EX) != 0 && errno == EINTR {}
        defer { flock(lock, LOCK_UN) }

        _ = try cluster.start()
        let admin = cluster.connectionString(database: "postgres")
        // A throwaway cluster: durability buys nothing and costs seconds.
        try psql(admin, ["-c", "ALTER SYSTEM SET fsync = off", "-c", "ALTER SYSTEM SET synchronous_commit = off",
                         "-c", "ALTER SYSTEM SET full_page_writes = off", "-c", "SELECT pg_reload_conf()"])
        dropStaleDatabases(admin)
        registerCleanUp()
        return admin
    }

    /// Databases of earlier runs that were not dropped (a crash, a kill): gone after an hour.
    private static func dropStaleDatabases(_ admin: String) {
        let stale = (try? psql(admin, """
            SELECT datname FROM pg_database
            WHERE datname LIKE 'quorix\\_test\\_%'
              AND (pg_stat_file('base/' || oid || '/PG_VERSION')).modification < now() - interval '1 hour'
            """)) ?? ""
        let names = stale.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        guard !names.isEmpty else { return }
        _ = try? psql(admin, names.flatMap { ["-c", "DROP DATABASE IF EXISTS \($0) WITH (FORCE)"] })
    }

    private static func registerCleanUp() {
        TestCleanUp.register()
    }

    /// At exit: servers first (they hold connections), then this process's databases.
    func dropCreatedDatabases() {
        let names = created.withLock { names -> Set<String> in
            let all = names
            names.removeAll()
            return all
        }
        guard !names.isEmpty, case .ready(let admin) = phase.withLock({ $0 }) else { return }
        _ = try? TestCluster.psql(admin, names.sorted().flatMap { ["-c", "DROP DATABASE IF EXISTS \($0) WITH (FORCE)"] })
    }

    static func psqlPath() throws -> String {
        var candidates = ["17", "16", "15"].map { "/usr/lib/postgresql/\($0)/bin/psql" }
        candidates.append("/usr/bin/psql")
        if let found = candidates.first(where: { access($0, X_OK) == 0 }) { return found }
        throw SupportError("psql not found (looked at \(candidates.joined(separator: ", "))); install postgresql-client or run bash scripts/setup.sh")
    }
}

/// What must not outlive the test process.
enum TestCleanUp {
    private static let registered: Void = {
        atexit { TestCleanUp.run() }
    }()

    static func register() {
        _ = registered
    }

    static func run() {
        ServerProcess.killAll()
        TestCluster.shared.dropCreatedDatabases()
    }
}

import Foundation
import Logging
import Testing

@testable import Quorix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Real PostgreSQL clusters under /tmp, no mocks. Run as root, this exercises the runuser path.
@Suite(.serialized)
struct EmbeddedPostgresTests {
    // MARK: Fixtures

    /// Collects log messages so a test can tell which lifecycle steps ran.
    final class LogRecorder: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [String] = []
        func append(_ message: String) { lock.lock(); stored.append(message); lock.unlock() }
        var messages: [String] { lock.lock(); defer { lock.unlock() }; return stored }
        func reset() { lock.lock(); stored.removeAll(); lock.unlock() }
    }

    struct RecordingHandler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            recorder.append(event.message.description)
        }
    }

    /// A fresh directory under /tmp plus a cluster in `<dir>/data`, stopped and removed by `cleanUp`.
    struct Fixture {
        let root: String
        let recorder = LogRecorder()
        let pg: EmbeddedPostgres

        init() throws {
            let id = UUID().uuidString.prefix(8).lowercased()
            root = "/tmp/quorix-epg-\(id)"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            let recorder = self.recorder
            let logger = Logger(label: "test.embedded-postgres") { _ in RecordingHandler(recorder: recorder) }
            pg = EmbeddedPostgres(dataDirectory: root + "/data", logger: logger)
        }

        func cleanUp() {
            try? pg.stop()
            // If stop failed, do not leave a server behind.
            if let pid = pg.readPidFile()?.pid, pid > 0 {
                kill(pid, SIGKILL)
                EmbeddedPostgresTests.waitUntilGone(pid)
            }
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    static func psqlPath() -> String {
        ["/usr/lib/postgresql/15/bin/psql", "/usr/bin/psql"].first { access($0, X_OK) == 0 } ?? "psql"
    }

    /// psql as the current user (root in CI, like the Quorix server) with the returned conninfo.
    static func psql(_ conninfo: String, _ sql: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: psqlPath())
        process.arguments = ["-X", "-v", "ON_ERROR_STOP=1", conninfo, "-Atc", sql]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw EmbeddedPostgresError("psql failed: " + String(decoding: errors, as: UTF8.self))
        }
        return String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Gone, or a zombie nobody reaps: either way no longer a server.
    static func isGone(_ pid: Int32) -> Bool {
        if kill(pid, 0) != 0, errno == ESRCH { return true }
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        {
            return stat[stat.index(after: end)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
        }
        return false
    }

    /// Waits (up to 10 s) until `pid` has exited or is an unreaped zombie.
    @discardableResult
    static func waitUntilGone(_ pid: Int32) -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if isGone(pid) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return isGone(pid)
    }

    static let quietLogger = Logger(label: "test.embedded-postgres")

    // MARK: Tests

    @Test(.timeLimit(.minutes(1)))
    func startStopAndRestartReusesCluster() throws {
        let f = try Fixture()
        defer { f.cleanUp() }

        let conninfo = try f.pg.start()
        #expect(conninfo.contains("dbname=quorix"))
        #expect(conninfo.contains("host=\(f.root)/data/run"))
        #expect(try Self.psql(conninfo, "select 1") == "1")
        #expect(f.recorder.messages.contains { $0.contains("initdb") })
        #expect(FileManager.default.fileExists(atPath: f.root + "/data/postgres.log"))

        let conf = try String(contentsOfFile: f.root + "/data/pgdata/postgresql.conf", encoding: .utf8)
        #expect(conf.contains("listen_addresses = ''"))
        #expect(conf.contains("fsync = on"))
        #expect(try Self.psql(conninfo, "show max_connections") == "200")
        #expect(try Self.psql(conninfo, "show fsync") == "on")
        #expect(try Self.psql(conninfo, "show server_encoding") == "UTF8")

        _ = try Self.psql(conninfo, "create table survives (v int); insert into survives values (42)")
        try f.pg.stop()
        #expect(f.pg.readPidFile() == nil)
        try f.pg.stop()  // not running: no error

        f.recorder.reset()
        let again = try f.pg.start()
        #expect(again == conninfo)
        #expect(!f.recorder.messages.contains { $0.contains("initdb") })
        #expect(try Self.psql(again, "select v from survives") == "42")
        try f.pg.stop()
    }

    @Test(.timeLimit(.minutes(1)))
    func stalePidFileAfterKill9() throws {
        let f = try Fixture()
        defer { f.cleanUp() }

        let conninfo = try f.pg.start()
        let pidFile = f.root + "/data/pgdata/postmaster.pid"
        let text = try String(contentsOfFile: pidFile, encoding: .utf8)
        let pid = try #require(text.split(separator: "\n").first.flatMap { Int32($0.trimmingCharacters(in: .whitespaces)) })
        #expect(kill(pid, SIGKILL) == 0)
        try #require(Self.waitUntilGone(pid), "postmaster \(pid) still alive after SIGKILL")
        #expect(FileManager.default.fileExists(atPath: pidFile))

        f.recorder.reset()
        let again = try f.pg.start()
        #expect(again == conninfo)
        #expect(try Self.psql(again, "select 1") == "1")
        #expect(f.recorder.messages.contains { $0.contains("stale postmaster.pid") })
        #expect(f.pg.readPidFile()?.pid != pid)
    }

    @Test(.timeLimit(.minutes(1)))
    func startTwiceReusesRunningCluster() throws {
        let f = try Fixture()
        defer { f.cleanUp() }

        let first = try f.pg.start()
        let pid = f.pg.readPidFile()?.pid
        f.recorder.reset()
        let second = try f.pg.start()
        #expect(second == first)
        #expect(f.pg.readPidFile()?.pid == pid)
        #expect(f.recorder.messages.contains { $0.contains("reusing") })
        #expect(try Self.psql(second, "select 1") == "1")
    }

    @Test(.timeLimit(.minutes(1)), .enabled(if: geteuid() == 0, "only root hands the cluster to another OS user"))
    func unreachableDataDirectoryNamesTheDirectory() throws {
        let locked = "/tmp/quorix-x700-\(UUID().uuidString.prefix(8).lowercased())"
        try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: locked) }
        #expect(chmod(locked, 0o700) == 0)

        let pg = EmbeddedPostgres(dataDirectory: locked + "/sub", logger: Self.quietLogger)
        defer { try? pg.stop() }
        do {
            _ = try pg.start()
            Issue.record("start() succeeded on an unreachable data directory")
        } catch let error as EmbeddedPostgresError {
            #expect(error.description.contains(locked))
            #expect(error.description.contains("QUORIX_DATA_DIR"))
        }
    }

    /// No cluster needed: long data paths move the socket to a short, stable /tmp directory.
    @Test func longDataDirectoryUsesShortSocketDirectory() {
        let long = "/tmp/" + String(repeating: "d", count: 120)
        let pg = EmbeddedPostgres(dataDirectory: long, logger: Self.quietLogger)
        let host = pg.socketDirectory
        #expect(host.hasPrefix("/tmp/quorix-"))
        #expect(host.count == "/tmp/quorix-".count + 8)
        #expect(host == EmbeddedPostgres(dataDirectory: long + "/", logger: Self.quietLogger).socketDirectory)
        #expect(pg.connectionString(database: "x") == "host=\(host) port=5432 user=quorix dbname=x")

        let short = EmbeddedPostgres(dataDirectory: "/var/lib/quorix", logger: Self.quietLogger)
        #expect(short.connectionString(database: "quorix") == "host=/var/lib/quorix/run port=5432 user=quorix dbname=quorix")
        #expect(EmbeddedPostgres.conninfoQuote("/a b/it's") == #"'/a b/it\'s'"#)
    }
}


import Foundation
public import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A private PostgreSQL 15 cluster under a data directory, started and stopped by Quorix itself
/// (the embedded default when no QUORIX_DATABASE_URL is set).
///
/// Layout under `dataDirectory`:
/// - `pgdata/`        the cluster (initdb'd on first start)
/// - `run/`           the Unix socket directory (or `/tmp/quorix-<hash>` when that path would be too long)
/// - `postgres.log`   the server log
///
/// Everything here is synchronous (child processes via posix_spawn on Linux, Foundation `Process`
/// elsewhere): it runs before the event loop starts and after it stops, never on it. When Quorix runs as root, every PostgreSQL command runs as an
/// unprivileged OS user (`postgres` if present, else a system user `quorix` created on demand),
/// because initdb and postgres refuse to run as root.
public struct EmbeddedPostgres: Sendable {
    /// Cluster superuser role and the application database.
    public static let roleName = "quorix"
    public static let databaseName = "quorix"
    public static let port = 5432

    /// Absolute, standardized data directory.
    public let dataDirectory: String
    public let binDirectory: String?
    private let logger: Logger

    public init(dataDirectory: String, binDirectory: String? = nil, logger: Logger) {
        self.dataDirectory = Self.absolutePath(dataDirectory)
        self.binDirectory = binDirectory.flatMap { $0.isEmpty ? nil : Self.absolutePath($0) }
        self.logger = logger
    }

    // MARK: Layout

    var clusterDirectory: String { Self.join(dataDirectory, "pgdata") }
    var stagingDirectory: String { Self.join(dataDirectory, "pgdata.initdb") }
    var logFile: String { Self.join(dataDirectory, "postgres.log") }
    var pidFile: String { Self.join(clusterDirectory, "postmaster.pid") }
    var versionFile: String { Self.join(clusterDirectory, "PG_VERSION") }

    /// `<data>/run`, unless `<data>/run/.s.PGSQL.5432` would exceed 100 bytes (sun_path is 108 on
    /// Linux, 104 on macOS): then `/tmp/quorix-<8 hex of FNV-1a(dataDirectory)>`.
    var socketDirectory: String {
        let inData = Self.join(dataDirectory, "run")
        if Self.join(inData, ".s.PGSQL.\(Self.port)").utf8.count <= 100 { return inData }
        return "/tmp/quorix-" + Self.fnv1aHex(dataDirectory)
    }

    var socketLockFile: String { Self.join(socketDirectory, ".s.PGSQL.\(Self.port).lock") }

    /// libpq conninfo for `database` on this cluster (Unix socket, trust auth, role `quorix`).
    public func connectionString(database: String) -> String {
        "host=\(Self.conninfoQuote(socketDirectory)) port=\(Self.port) "
            + "user=\(Self.conninfoQuote(Self.roleName)) dbname=\(Self.conninfoQuote(database))"
    }

    // MARK: Lifecycle

    /// initdb on first run, start (or reuse a running cluster), create database `quorix` if absent.
    /// Returns a libpq conninfo string for that database.
    public func start() throws -> String {
        let user = try clusterUser(createIfMissing: true)
        let bin = try resolveBinDirectory()
        try prepareDirectories(user: user)

        if !FileManager.default.fileExists(atPath: versionFile) {
            try initializeCluster(bin: bin, user: user)
        } else if let user {
            try ensureOwned(clusterDirectory, by: user, recursive: true)
        }

        switch try serverState(bin: bin, user: user) {
        case .running(let info):
            if info.socketDirectory != socketDirectory || info.port != Self.port {
                logger.warning(
                    "embedded postgres running with another socket directory or port; restarting",
                    metadata: meta(["socket_dir": .string(info.socketDirectory ?? "?"), "port": .string("\(info.port ?? 0)")])
                )
                try stopServer(bin: bin, user: user)
                try startServer(bin: bin, user: user)
            } else if try waitUntilReady(pid: info.pid) {
                logger.info("embedded postgres already running; reusing it", metadata: meta(["pid": .string("\(info.pid)")]))
            } else {
                // It went away while we looked (e.g. it was shutting down): start it afresh.
                if case .stopped(let stale?) = try serverState(bin: bin, user: user) {
                    try clearStaleFiles(stale)
                }
                try startServer(bin: bin, user: user)
            }
        case .stopped(let stale):
            if let stale { try clearStaleFiles(stale) }
            try startServer(bin: bin, user: user)
        }

        try ensureDatabase(Self.databaseName, bin: bin, user: user)
        let conninfo = connectionString(database: Self.databaseName)
        logger.info("embedded postgres ready", metadata: meta(["conninfo": .string(conninfo)]))
        return conninfo
    }

    /// `pg_ctl stop -m fast`; safe to call when the cluster does not exist or is not running.
    public func stop() throws {
        guard FileManager.default.fileExists(atPath: versionFile) else {
            logger.debug("embedded postgres: no cluster, nothing to stop", metadata: meta())
            return
        }
        let user: ClusterUser?
        if geteuid() == 0 {
            // No cluster user means no cluster could have been started as it.
            guard let existing = try clusterUser(createIfMissing: false) else { return }
            user = existing
        } else {
            user = nil
        }
        let bin = try resolveBinDirectory()
        guard case .running = try serverState(bin: bin, user: user) else {
            logger.info("embedded postgres not running; nothing to stop", metadata: meta())
            return
        }
        try stopServer(bin: bin, user: user)
    }

    // MARK: Steps

    private func initializeCluster(bin: String, user: ClusterUser?) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: clusterDirectory) {
            logger.warning(
                "embedded postgres: removing incomplete cluster directory (no PG_VERSION)",
                metadata: meta(["path": .string(clusterDirectory)])
            )
            try remove(clusterDirectory)
        }
        logger.info("embedded postgres initdb", metadata: meta(["path": .string(clusterDirectory)]))

        // initdb into a staging directory and rename it into place when complete, so `pgdata/`
        // only ever exists as a whole cluster with our settings in it.
        var failures: [String] = []
        var initialized = false
        for locale in ["C.UTF-8", "C"] {
            if fm.fileExists(atPath: stagingDirectory) { try remove(stagingDirectory) }
            try makeDirectory(stagingDirectory, mode: 0o700, owner: user)
            let result = try run(
                Self.join(bin, "initdb"),
                ["-D", stagingDirectory, "-U", Self.roleName, "--auth=trust", "-E", "UTF8", "--locale=\(locale)"],
                as: user, timeout: 180
            )
            if result.succeeded {
                if locale != "C.UTF-8" {
                    logger.warning("embedded postgres: locale C.UTF-8 refused, cluster uses locale C", metadata: meta())
                }
                initialized = true
                break
            }
            failures.append("initdb --locale=\(locale) (\(result.exitDescription)): \(result.output)")
            // Only a locale problem is worth a second try.
            guard locale == "C.UTF-8", result.output.lowercased().contains("locale") else { break }
        }
        guard initialized else {
            try? remove(stagingDirectory)
            throw EmbeddedPostgresError(
                "initdb failed for \(clusterDirectory):\n\(failures.joined(separator: "\n"))\n"
                    + "Check that the PostgreSQL binaries in \(bin) work and that \(dataDirectory) is writable, then retry."
            )
        }

        let settings = """

            # --- added by Quorix (embedded cluster) ---
            listen_addresses = ''
            unix_socket_directories = '\(socketDirectory.replacingOccurrences(of: "'", with: "''"))'
            port = \(Self.port)
            max_connections = 200
            shared_buffers = 256MB
            fsync = on
            synchronous_commit = on

            """
        let conf = Self.join(stagingDirectory, "postgresql.conf")
        do {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: conf))
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(settings.utf8))
            try handle.synchronize()
        } catch {
            throw EmbeddedPostgresError("could not append Quorix settings to \(conf): \(error). Check the disk and permissions of \(dataDirectory), then retry.")
        }
        guard rename(stagingDirectory, clusterDirectory) == 0 else {
            throw EmbeddedPostgresError("could not rename \(stagingDirectory) to \(clusterDirectory): \(Self.errnoText()). Remove both and retry.")
        }
    }

    private func startServer(bin: String, user: ClusterUser?) throws {
        let logStart = Self.fileSize(logFile)
        let socketOption = "-k " + Self.shellQuote(socketDirectory) + " -p \(Self.port)"
        let result = try run(
            Self.join(bin, "pg_ctl"),
            ["start", "-D", clusterDirectory, "-w", "-t", "60", "-l", logFile, "-o", socketOption],
            as: user, timeout: 90
        )
        if !result.succeeded, let info = readPidFile(), Self.isPostmasterAlive(info.pid) {
            // pg_ctl gives up after 60 s, but crash recovery may take longer: wait while it lives.
            logger.info("embedded postgres still starting (crash recovery?); waiting", metadata: meta(["pid": .string("\(info.pid)")]))
            if try waitUntilReady(pid: info.pid, timeout: 600) {
                logger.info("embedded postgres started", metadata: meta(["socket_dir": .string(socketDirectory)]))
                return
            }
        }
        guard result.succeeded else {
            let tail = Self.tail(of: logFile, lines: 20, from: logStart)
            throw EmbeddedPostgresError(
                "the server did not start (pg_ctl \(result.exitDescription)): \(result.output)\n"
                    + "last lines of \(logFile):\n\(tail.isEmpty ? "(empty)" : tail)\n"
                    + "Fix the cause above (or move \(clusterDirectory) aside to start with a fresh cluster) and retry."
            )
        }
        logger.info("embedded postgres started", metadata: meta(["socket_dir": .string(socketDirectory)]))
    }

    private func stopServer(bin: String, user: ClusterUser?) throws {
        let result = try run(
            Self.join(bin, "pg_ctl"),
            ["stop", "-D", clusterDirectory, "-m", "fast", "-w", "-t", "60"],
            as: user, timeout: 90
        )
        if !result.succeeded {
            // Lost a race with another stop, or the server died meanwhile: that is fine.
            if case .running = try serverState(bin: bin, user: user) {
                throw EmbeddedPostgresError(
                    "the server did not stop (pg_ctl \(result.exitDescription)): \(result.output)\n"
                        + "See \(logFile); stop it with: pg_ctl stop -D \(clusterDirectory) -m immediate"
                )
            }
        }
        logger.info("embedded postgres stopped", metadata: meta())
    }

    private func ensureDatabase(_ name: String, bin: String, user: ClusterUser?) throws {
        let psql = Self.join(bin, "psql")
        let base = ["-X", "-v", "ON_ERROR_STOP=1", "-h", socketDirectory, "-p", "\(Self.port)", "-U", Self.roleName, "-d", "postgres"]
        let literal = name.replacingOccurrences(of: "'", with: "''")
        func exists() throws -> Bool {
            let r = try run(psql, base + ["-Atc", "SELECT 1 FROM pg_database WHERE datname='\(literal)'"], as: user, timeout: 30)
            guard r.succeeded else {
                throw EmbeddedPostgresError(
                    "cannot query the server at \(socketDirectory) (psql \(r.exitDescription)): \(r.output)\n"
                        + "See \(logFile)."
                )
            }
            return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1"
        }
        if try exists() { return }
        let ident = "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        let created = try run(psql, base + ["-c", "CREATE DATABASE \(ident)"], as: user, timeout: 60)
        if !created.succeeded {
            if try exists() { return }  // created concurrently
            throw EmbeddedPostgresError("could not create database \(name) (psql \(created.exitDescription)): \(created.output)\nSee \(logFile).")
        }
        logger.info("embedded postgres created database", metadata: meta(["database": .string(name)]))
    }

    // MARK: Server state

    struct PidFileInfo: Sendable {
        var pid: Int32
        var port: Int?
        var socketDirectory: String?
        var shmID: Int32?
        var status: String?
    }

    enum ServerState {
        case running(PidFileInfo)
        /// Not running; carries the leftover postmaster.pid (if any) that must be cleared.
        case stopped(stale: PidFileInfo?)
    }

    /// postmaster.pid: pid, data dir, start time, port, socket dir, listen addr, "shmkey shmid", status.
    func readPidFile() -> PidFileInfo? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        func line(_ i: Int) -> String? { i < lines.count && !lines[i].isEmpty ? lines[i] : nil }
        // A negative pid marks a standalone backend; treat it like a postmaster.
        guard let first = line(0), let rawPid = Int32(first) else {
            return PidFileInfo(pid: 0)
        }
        return PidFileInfo(
            pid: abs(rawPid),
            port: line(3).flatMap { Int($0) },
            socketDirectory: line(4),
            shmID: line(6).flatMap { $0.split(separator: " ").last.flatMap { Int32($0) } },
            status: line(7)
        )
    }

    private func serverState(bin: String, user: ClusterUser?) throws -> ServerState {
        let result = try run(Self.join(bin, "pg_ctl"), ["status", "-D", clusterDirectory], as: user, timeout: 30)
        switch result.status {
        case 0, 3:
            let info = readPidFile()
            guard let info else { return .stopped(stale: nil) }
            // pg_ctl trusts kill(pid, 0): a zombie or a recycled pid also counts as "running".
            if info.pid > 0, Self.isPostmasterAlive(info.pid) { return .running(info) }
            return .stopped(stale: info)
        case 4:
            throw EmbeddedPostgresError(
                "pg_ctl cannot access the cluster directory \(clusterDirectory): \(result.output)\n"
                    + "Check its permissions, or move it aside to start with a fresh cluster."
            )
        default:
            throw EmbeddedPostgresError("pg_ctl status failed (\(result.exitDescription)): \(result.output)")
        }
    }

    /// True once postmaster.pid says "ready"; false if the server went away meanwhile.
    private func waitUntilReady(pid: Int32, timeout: TimeInterval = 60) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard Self.isPostmasterAlive(pid), let info = readPidFile(), info.pid == pid else { return false }
            // Servers too old to write a status line are ready once the file is complete.
            if info.status == nil || info.status == "ready" { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw EmbeddedPostgresError(
            "the running server (pid \(pid)) did not become ready within \(Int(timeout)) s; see \(logFile). "
                + "If it is stuck, stop it with: pg_ctl stop -D \(clusterDirectory) -m immediate"
        )
    }

    /// Removes postmaster.pid (and the socket lock) left by a server that died without cleaning up,
    /// after waiting for its orphaned backends to let go of the shared memory segment.
    private func clearStaleFiles(_ stale: PidFileInfo) throws {
        #if os(Linux)
        if let shmID = stale.shmID {
            let deadline = Date().addingTimeInterval(15)
            var attached = Self.shmAttachments(shmID)
            while attached > 0, Date() < deadline {
                Thread.sleep(forTimeInterval: 0.1)
                attached = Self.shmAttachments(shmID)
            }
            if attached > 0 {
                throw EmbeddedPostgresError(
                    "processes of a previous PostgreSQL server for \(clusterDirectory) are still running "
                        + "(shared memory segment \(shmID) has \(attached) attachments). "
                        + "Stop them (they are `postgres` processes of that cluster) and retry."
                )
            }
        }
        #endif
        logger.info(
            "embedded postgres: removing stale postmaster.pid",
            metadata: meta(["pid": .string("\(stale.pid)")])
        )
        if unlink(pidFile) != 0, errno != ENOENT {
            throw EmbeddedPostgresError("could not remove stale \(pidFile): \(Self.errnoText()). Remove it by hand and retry.")
        }
        // The socket lock file names the dead postmaster too; postgres would refuse it if that pid
        // is a zombie or was recycled.
        if let text = try? String(contentsOfFile: socketLockFile, encoding: .utf8),
            let first = text.split(separator: "\n").first,
            let lockPid = Int32(first.trimmingCharacters(in: .whitespaces)),
            abs(lockPid) == stale.pid || !Self.isPostmasterAlive(abs(lockPid))
        {
            _ = unlink(socketLockFile)
            _ = unlink(Self.join(socketDirectory, ".s.PGSQL.\(Self.port)"))
        }
    }

    // MARK: Binaries

    func resolveBinDirectory() throws -> String {
        func usable(_ dir: String) -> Bool {
            ["initdb", "pg_ctl", "postgres", "psql"].allSatisfy { access(Self.join(dir, $0), X_OK) == 0 }
        }
        if let binDirectory {
            guard usable(binDirectory) else {
                throw EmbeddedPostgresError("the PostgreSQL bin directory \(binDirectory) lacks initdb, pg_ctl, postgres or psql. Point it at e.g. /usr/lib/postgresql/15/bin.")
            }
            return binDirectory
        }
        if let env = ProcessInfo.processInfo.environment["QUORIX_PG_BIN"], !env.isEmpty {
            let dir = Self.absolutePath(env)
            guard usable(dir) else {
                throw EmbeddedPostgresError("QUORIX_PG_BIN=\(env) lacks initdb, pg_ctl, postgres or psql. Point it at e.g. /usr/lib/postgresql/15/bin.")
            }
            return dir
        }
        var candidates = ["17", "16", "15"].map { "/usr/lib/postgresql/\($0)/bin" }
        // An existing cluster can only be run by its own major version: prefer that one.
        if let version = try? String(contentsOfFile: versionFile, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines),
            !version.isEmpty, version.allSatisfy(\.isNumber)
        {
            candidates.insert("/usr/lib/postgresql/\(version)/bin", at: 0)
        }
        if let found = candidates.first(where: { usable($0) }) { return found }
        if let pgConfig = Self.findInPath("pg_config"),
            let result = try? run(pgConfig, ["--bindir"], as: nil, timeout: 10), result.succeeded
        {
            let dir = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            if !dir.isEmpty, usable(dir) { return dir }
        }
        throw EmbeddedPostgresError(
            "no PostgreSQL server binaries found (looked in QUORIX_PG_BIN, \(candidates.joined(separator: ", ")) and pg_config --bindir). "
                + "Install PostgreSQL 15 (apt-get install postgresql-15), or set QUORIX_PG_BIN to the directory holding initdb and pg_ctl, "
                + "or set QUORIX_DATABASE_URL to use an external database."
        )
    }

    // MARK: Cluster OS user and directories

    struct ClusterUser: Sendable {
        var name: String
        var uid: uid_t
        var gid: gid_t
        var groups: [gid_t]
        var home: String

        func canSearch(_ st: stat) -> Bool {
            if st.st_uid == uid { return st.st_mode & 0o100 != 0 }
            if groups.contains(st.st_gid) { return st.st_mode & 0o010 != 0 }
            return st.st_mode & 0o001 != 0
        }
    }

    /// nil when not root (commands run as the current user).
    private func clusterUser(createIfMissing: Bool) throws -> ClusterUser? {
        guard geteuid() == 0 else { return nil }
        if let user = Self.lookupUser("postgres") ?? Self.lookupUser(Self.roleName) { return user }
        guard createIfMissing else { return nil }
        guard let useradd = Self.firstExecutable(["/usr/sbin/useradd", "/sbin/useradd"]) else {
            throw EmbeddedPostgresError(
                "running as root, PostgreSQL needs an unprivileged OS user, but there is no `postgres` user and no useradd. "
                    + "Create a system user `quorix` or run quorix as a non-root user."
            )
        }
        let result = try run(
            useradd, ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", Self.roleName],
            as: nil, timeout: 30
        )
        // 9: the user appeared meanwhile.
        guard result.succeeded || result.status == 9, let user = Self.lookupUser(Self.roleName) else {
            throw EmbeddedPostgresError(
                "could not create system user \(Self.roleName) for PostgreSQL (useradd \(result.exitDescription)): \(result.output)\n"
                    + "Create it yourself (useradd --system --no-create-home --shell /usr/sbin/nologin quorix) or run quorix as a non-root user."
            )
        }
        logger.info("embedded postgres: created system user", metadata: meta(["user": .string(Self.roleName)]))
        return user
    }

    private func prepareDirectories(user: ClusterUser?) throws {
        try ensureDirectoryChain(dataDirectory, reachableBy: user)
        if let user {
            // Symlinks in the path: the real path must be reachable too.
            if let real = realpath(dataDirectory, nil) {
                let resolved = String(cString: real)
                free(real)
                if resolved != dataDirectory { try ensureDirectoryChain(resolved, reachableBy: user) }
            }
        }

        let socket = socketDirectory
        if socket.hasPrefix(dataDirectory + "/") {
            try makeDirectory(socket, mode: 0o700, owner: user)
        } else {
            try makeSharedTmpDirectory(socket, user: user)
        }

        if !FileManager.default.fileExists(atPath: logFile) {
            let fd = open(logFile, O_WRONLY | O_CREAT | O_APPEND, 0o600)
            guard fd >= 0 else {
                throw EmbeddedPostgresError("could not create \(logFile): \(Self.errnoText()). Make \(dataDirectory) writable or choose another QUORIX_DATA_DIR.")
            }
            close(fd)
        }
        if let user { try ensureOwned(logFile, by: user, recursive: false) }
    }

    /// Creates every missing component of `path` (mode 0755); as root, checks that `user` can
    /// search every directory on the way.
    private func ensureDirectoryChain(_ path: String, reachableBy user: ClusterUser?) throws {
        var prefix = ""
        var dirs = ["/"]
        for component in path.split(separator: "/") {
            prefix += "/" + component
            dirs.append(prefix)
        }
        for dir in dirs {
            var st = stat()
            if stat(dir, &st) != 0 {
                guard errno == ENOENT else {
                    throw EmbeddedPostgresError("cannot inspect \(dir): \(Self.errnoText()). Choose another QUORIX_DATA_DIR, e.g. /var/lib/quorix.")
                }
                if mkdir(dir, 0o755) != 0, errno != EEXIST {
                    throw EmbeddedPostgresError("could not create directory \(dir): \(Self.errnoText()). Create it or choose another QUORIX_DATA_DIR.")
                }
                if user != nil { _ = chmod(dir, 0o755) }  // not subject to a restrictive umask
                guard stat(dir, &st) == 0 else {
                    throw EmbeddedPostgresError("cannot inspect \(dir): \(Self.errnoText()).")
                }
            }
            guard st.st_mode & 0o170000 == 0o040000 else {
                throw EmbeddedPostgresError("\(dir) exists but is not a directory. Choose another QUORIX_DATA_DIR.")
            }
            if let user, !user.canSearch(st) {
                throw EmbeddedPostgresError(
                    "data directory \(dataDirectory) is out of reach: PostgreSQL runs as OS user '\(user.name)' here "
                        + "(it refuses to run as root), and that user cannot enter directory \(dir) (mode 0\(String(st.st_mode & 0o7777, radix: 8)), owner uid \(st.st_uid)). "
                        + "Use a data directory every user can traverse, e.g. QUORIX_DATA_DIR=/var/lib/quorix or a path under /tmp, "
                        + "or make it searchable: chmod o+x \(dir)"
                )
            }
        }
    }

    /// A directory only the cluster user may use (mode 0700).
    private func makeDirectory(_ path: String, mode: mode_t, owner user: ClusterUser?) throws {
        if mkdir(path, mode) != 0, errno != EEXIST {
            throw EmbeddedPostgresError("could not create directory \(path): \(Self.errnoText()). Make \(dataDirectory) writable or choose another QUORIX_DATA_DIR.")
        }
        if let user { try ensureOwned(path, by: user, recursive: false) }
        guard chmod(path, mode) == 0 else {
            throw EmbeddedPostgresError("could not chmod \(path): \(Self.errnoText()).")
        }
    }

    /// The short socket directory under /tmp: must be a real directory owned by the cluster user.
    private func makeSharedTmpDirectory(_ path: String, user: ClusterUser?) throws {
        if mkdir(path, 0o700) != 0, errno != EEXIST {
            throw EmbeddedPostgresError("could not create socket directory \(path): \(Self.errnoText()).")
        }
        var st = stat()
        guard lstat(path, &st) == 0, st.st_mode & 0o170000 == 0o040000 else {
            throw EmbeddedPostgresError("socket directory \(path) is not a directory (symlink?). Remove it and retry.")
        }
        let expected = user?.uid ?? geteuid()
        if st.st_uid != expected {
            // Only our own (root-created) directory may be handed over; anything else is foreign.
            guard let user, st.st_uid == 0 else {
                throw EmbeddedPostgresError("socket directory \(path) belongs to uid \(st.st_uid), not to the cluster user. Remove it and retry.")
            }
            guard chown(path, user.uid, user.gid) == 0 else {
                throw EmbeddedPostgresError("could not chown \(path) to \(user.name): \(Self.errnoText()).")
            }
        }
        guard chmod(path, 0o700) == 0 else {
            throw EmbeddedPostgresError("could not chmod \(path): \(Self.errnoText()).")
        }
    }

    /// chown to the cluster user; recursively (chown -R) when the top is not theirs yet.
    private func ensureOwned(_ path: String, by user: ClusterUser, recursive: Bool) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if st.st_uid == user.uid && st.st_gid == user.gid { return }
        if recursive {
            let chownPath = Self.firstExecutable(["/bin/chown", "/usr/bin/chown"]) ?? "/bin/chown"
            let result = try run(chownPath, ["-R", "\(user.uid):\(user.gid)", path], as: nil, timeout: 300)
            guard result.succeeded else {
                throw EmbeddedPostgresError("chown -R \(user.name) \(path) failed (\(result.exitDescription)): \(result.output)")
            }
        } else if chown(path, user.uid, user.gid) != 0 {
            throw EmbeddedPostgresError("could not chown \(path) to \(user.name): \(Self.errnoText()).")
        }
    }

    private func remove(_ path: String) throws {
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            throw EmbeddedPostgresError("could not remove \(path): \(error). Remove it by hand and retry.")
        }
    }

    // MARK: Processes

    struct CommandResult: Sendable {
        var status: Int32
        var stdout: String
        var stderr: String
        var timedOut: Bool

        var succeeded: Bool { status == 0 && !timedOut }
        var exitDescription: String { timedOut ? "timed out" : "exit status \(status)" }
        /// stderr, or stdout when stderr is empty, trimmed for error messages.
        var output: String {
            let err = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            let text = err.isEmpty ? stdout.trimmingCharacters(in: .whitespacesAndNewlines) : err
            return text.count > 4000 ? String(text.suffix(4000)) : text
        }
    }

    /// Runs `executable` (as `user` via runuser/setpriv when given), capturing stdout and stderr.
    /// Both pipes are drained while the command runs, so a chatty command cannot block on a full
    /// pipe; after `timeout` seconds the command is terminated.
    func run(_ executable: String, _ arguments: [String], as user: ClusterUser?, timeout: TimeInterval) throws -> CommandResult {
        var launchPath = executable
        var launchArguments = arguments
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") }
        environment["LC_MESSAGES"] = "C"
        environment.removeValue(forKey: "LC_ALL")
        if let user {
            environment["HOME"] = user.home
            environment["USER"] = user.name
            environment["LOGNAME"] = user.name
            if let runuser = Self.firstExecutable(["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]) {
                launchPath = runuser
                launchArguments = ["-u", user.name, "--", executable] + arguments
            } else if let setpriv = Self.firstExecutable(["/usr/bin/setpriv", "/bin/setpriv"]) {
                launchPath = setpriv
                launchArguments = ["--reuid=\(user.uid)", "--regid=\(user.gid)", "--init-groups", "--", executable] + arguments
            } else {
                throw EmbeddedPostgresError(
                    "running as root, but neither runuser nor setpriv is available to run PostgreSQL as '\(user.name)'. "
                        + "Install util-linux or run quorix as a non-root user."
                )
            }
        }

        let commandLine = ([executable] + arguments).joined(separator: " ")
        logger.trace("embedded postgres: run", metadata: meta(["command": .string(commandLine)]))
        #if os(Linux)
        return try Self.spawn(launchPath, launchArguments, environment: environment, timeout: timeout)
        #else
        return try Self.foundationRun(launchPath, launchArguments, environment: environment, timeout: timeout)
        #endif
    }

    #if os(Linux)
    /// posix_spawn + poll + waitpid. Not Foundation `Process`: on Linux it learns that a child
    /// exited from EOF on a socket the child inherits, and `pg_ctl start` hands that socket on to
    /// the postmaster, so `Process` would report pg_ctl's exit only when the server stops.
    /// Here the child gets only stdin (/dev/null), stdout and stderr (closefrom 3), a clean signal
    /// mask (callers may be on a dispatch thread that blocks every signal) and default handlers.
    static func spawn(_ path: String, _ arguments: [String], environment: [String: String], timeout: TimeInterval) throws -> CommandResult {
        let started: ChildProcess.Started
        do {
            started = try ChildProcess.spawn(path, arguments, environment: environment, workingDirectory: "/", newProcessGroup: true)
        } catch {
            throw EmbeddedPostgresError(error.description)
        }
        let pid = started.pid
        var readEnds = [started.standardOutput, started.standardError]
        defer { for fd in readEnds where fd >= 0 { close(fd) } }

        var output: [[UInt8]] = [[], []]
        var buffer = [UInt8](repeating: 0, count: 65536)
        var rawStatus: Int32?
        var exitedAt: Date?
        var terminatedAt: Date?
        var timedOut = false
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if rawStatus == nil {
                var status: Int32 = 0
                let reaped = waitpid(pid, &status, WNOHANG)
                if reaped == pid {
                    rawStatus = status
                    exitedAt = Date()
                } else if reaped == -1, errno != EINTR {
                    rawStatus = -1  // reaped elsewhere (SIGCHLD ignored?): status unknown
                    exitedAt = Date()
                }
            }
            if let exitedAt {
                // Done when both pipes hit EOF; a grandchild holding them gets 2 s, then we go.
                if readEnds.allSatisfy({ $0 < 0 }) || Date().timeIntervalSince(exitedAt) > 2 { break }
            } else if Date() > deadline {
                if let terminatedAt {
                    if Date().timeIntervalSince(terminatedAt) > 5 {
                        kill(-pid, SIGKILL)
                        kill(pid, SIGKILL)
                    }
                } else {
                    timedOut = true
                    terminatedAt = Date()
                    kill(-pid, SIGTERM)
                    kill(pid, SIGTERM)
                }
            }
            var pollSet = readEnds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            guard poll(&pollSet, nfds_t(pollSet.count), 20) > 0 else { continue }
            for index in pollSet.indices where pollSet[index].fd >= 0 && pollSet[index].revents != 0 {
                let count = buffer.withUnsafeMutableBytes { read(pollSet[index].fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    output[index].append(contentsOf: buffer[0..<count])
                } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                    close(readEnds[index])
                    readEnds[index] = -1
                }
            }
        }

        let status: Int32
        switch rawStatus {
        case .some(let raw) where raw >= 0:
            let signal = raw & 0x7f
            status = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
        default:
            status = -1
        }
        return CommandResult(
            status: status,
            stdout: String(decoding: output[0], as: UTF8.self),
            stderr: String(decoding: output[1], as: UTF8.self),
            timedOut: timedOut
        )
    }

    #else
    private final class OutputBuffer: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        func set(_ value: Data) { lock.lock(); data = value; lock.unlock() }
        var value: Data { lock.lock(); defer { lock.unlock() }; return data }
    }

    /// Darwin's Foundation `Process` watches the child with kqueue, so daemons started by a
    /// command (pg_ctl start) do not delay the exit notification.
    static func foundationRun(_ launchPath: String, _ launchArguments: [String], environment: [String: String], timeout: TimeInterval) throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: launchPath)
        process.arguments = launchArguments
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: "/")
        process.standardInput = FileHandle.nullDevice
        let outPipe = Pipe()
        let errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }

        do {
            try process.run()
        } catch {
            throw EmbeddedPostgresError("could not run \(launchPath): \(error)")
        }

        let readers = DispatchGroup()
        let outBuffer = OutputBuffer()
        let errBuffer = OutputBuffer()
        for (handle, buffer) in [(outPipe.fileHandleForReading, outBuffer), (errPipe.fileHandleForReading, errBuffer)] {
            readers.enter()
            DispatchQueue.global().async {
                buffer.set(handle.readDataToEndOfFile())
                readers.leave()
            }
        }

        var timedOut = false
        if exited.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            process.terminate()
            if exited.wait(timeout: .now() + 5) == .timedOut {
                kill(process.processIdentifier, SIGKILL)
                exited.wait()
            }
        }
        // A grandchild that kept the pipes open must not hang us.
        _ = readers.wait(timeout: .now() + 5)
        process.waitUntilExit()

        return CommandResult(
            status: process.terminationStatus,
            stdout: String(decoding: outBuffer.value, as: UTF8.self),
            stderr: String(decoding: errBuffer.value, as: UTF8.self),
            timedOut: timedOut
        )
    }

    #endif

    // MARK: Helpers

    private func meta(_ extra: Logger.Metadata = [:]) -> Logger.Metadata {
        var m: Logger.Metadata = ["data_dir": .string(dataDirectory)]
        m.merge(extra) { _, new in new }
        return m
    }

    static func absolutePath(_ path: String) -> String {
        let base = path.isEmpty ? "." : path
        let absolute = base.hasPrefix("/") ? base : join(FileManager.default.currentDirectoryPath, base)
        var parts: [Substring] = []
        for part in absolute.split(separator: "/") {
            switch part {
            case ".": continue
            case "..": if !parts.isEmpty { parts.removeLast() }
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }

    static func join(_ a: String, _ b: String) -> String {
        a.hasSuffix("/") ? a + b : a + "/" + b
    }

    /// 32-bit FNV-1a as 8 hex digits: stable across runs (unlike Hasher).
    static func fnv1aHex(_ s: String) -> String {
        var hash: UInt32 = 0x811c_9dc5
        for byte in s.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// Quotes a conninfo value when needed: 'a b' with \' and \\ escaped.
    static func conninfoQuote(_ value: String) -> String {
        let plain = !value.isEmpty && !value.contains { $0 == " " || $0 == "'" || $0 == "\\" || $0 == "=" || $0.isWhitespace }
        if plain { return value }
        return "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }

    /// pg_ctl -o goes through /bin/sh.
    static func shellQuote(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }

    static func fileSize(_ path: String) -> UInt64 {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_size) : 0
    }

    /// The last `lines` lines of `path`, looking only at bytes from `offset` on when the file
    /// has grown since (so an old failure is not mistaken for this one), and at most 64 KiB.
    static func tail(of path: String, lines: Int, from offset: UInt64 = 0) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        var start = size > 65536 ? size - 65536 : 0
        if offset < size, offset > start { start = offset }
        guard (try? handle.seek(toOffset: start)) != nil, let data = try? handle.readToEnd() else { return "" }
        let text = String(decoding: data, as: UTF8.self)
        return text.split(separator: "\n", omittingEmptySubsequences: false)
            .suffix(lines + 1).joined(separator: "\n")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func firstExecutable(_ paths: [String]) -> String? {
        paths.first { access($0, X_OK) == 0 }
    }

    static func findInPath(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let candidate = join(String(dir), name)
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    static func lookupUser(_ name: String) -> ClusterUser? {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        let found: (String, uid_t, gid_t, String)? = buffer.withUnsafeMutableBufferPointer { buf in
            guard let base = buf.baseAddress,
                getpwnam_r(name, &pwd, base, buf.count, &result) == 0, result != nil
            else { return nil }
            let home = pwd.pw_dir.map { String(cString: $0) } ?? "/"
            return (name, pwd.pw_uid, pwd.pw_gid, home)
        }
        guard let (userName, uid, gid, home) = found else { return nil }
        return ClusterUser(name: userName, uid: uid, gid: gid, groups: groupList(name, gid), home: home)
    }

    static func groupList(_ name: String, _ gid: gid_t) -> [gid_t] {
        #if os(Linux)
        var count: Int32 = 64
        for _ in 0..<4 {
            var groups = [gid_t](repeating: 0, count: Int(count))
            var n = count
            if getgrouplist(name, gid, &groups, &n) >= 0 { return Array(groups.prefix(Int(n))) }
            count = max(n, count * 2)
        }
        #endif
        return [gid]
    }

    /// kill(pid, 0) plus, on Linux, "not a zombie and really a postgres process" (pids recycle).
    static func isPostmasterAlive(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        if kill(pid, 0) != 0, errno != EPERM { return false }
        #if os(Linux)
        guard let procStat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
        if let commEnd = procStat.lastIndex(of: ")") {
            let state = procStat[procStat.index(after: commEnd)...].trimmingCharacters(in: .whitespaces).prefix(1)
            if state == "Z" || state == "X" { return false }
        }
        if let comm = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8) {
            let name = comm.trimmingCharacters(in: .whitespacesAndNewlines)
            return name == "postgres" || name == "postmaster"
        }
        #endif
        return true
    }

    #if os(Linux)
    /// Attachments of a SysV shared memory segment; 0 when it is gone.
    static func shmAttachments(_ id: Int32) -> UInt {
        var ds = shmid_ds()
        guard shmctl(id, IPC_STAT, &ds) == 0 else { return 0 }
        return UInt(ds.shm_nattch)
    }
    #endif
}

/// A failure of the embedded PostgreSQL; the message says what went wrong and what to do next.
public struct EmbeddedPostgresError: Error, CustomStringConvertible, Sendable {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { "embedded PostgreSQL: " + message }
}

import ArgumentParser
import Foundation
import Logging
import Loop
import PG
import Quorix

struct QuorixCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quorix",
        abstract: "Quorix: a seat-map reservation server on one libuv loop and PostgreSQL.",
        discussion: """
            Settings come from flags or QUORIX_* environment variables (flags win):
              QUORIX_LISTEN        address to serve on (default 127.0.0.1:8080)
              QUORIX_DATABASE_URL  PostgreSQL URL or libpq conninfo; unset = embedded cluster
              QUORIX_DATA_DIR      folder of the embedded cluster (default .quorix)
              QUORIX_ADMIN_KEY     a key accepted as admin (at least 16 characters)
            See the README for the rest (pool size, timeouts, log level).
            """,
        subcommands: [Serve.self, Migrate.self, Import.self, Keys.self],
        defaultSubcommand: Serve.self)
}

/// Flags shared by every command that reaches the database.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong("database-url"), help: ArgumentHelp(
        "PostgreSQL URL or libpq conninfo (env QUORIX_DATABASE_URL). Without one, a private cluster is started under the data dir.",
        valueName: "url"))
    var databaseURL: String?

    @Option(name: .customLong("data-dir"), help: ArgumentHelp(
        "Folder for the embedded PostgreSQL cluster (env QUORIX_DATA_DIR, default .quorix).", valueName: "dir"))
    var dataDirectory: String?

    /// Environment, then flags over it; exits with a message saying what to fix.
    func configuration() throws -> Configuration {
        var configuration: Configuration
        do {
            configuration = try Configuration.fromEnvironment(ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError(error.description)
        }
        if let databaseURL { configuration.databaseURL = databaseURL }
        if let dataDirectory { configuration.dataDirectory = dataDirectory }
        return configuration
    }
}

enum Bootstrap {
    static func logging(level: String, toStandardError: Bool) {
        let level = Logger.Level(rawValue: level) ?? .info
        LoggingSystem.bootstrap { label in
            JSONLogHandler(label: label, level: level, fileDescriptor: toStandardError ? 2 : 1)
        }
    }

    /// The database to use: the configured URL, or the embedded cluster (started here, stopped
    /// by the caller through the returned handle).
    static func database(_ configuration: Configuration, logger: Logger) throws -> (conninfo: String, embedded: EmbeddedPostgres?) {
        if let url = configuration.databaseURL { return (url, nil) }
        let embedded = EmbeddedPostgres(dataDirectory: configuration.dataDirectory, logger: logger)
        return (try embedded.start(), embedded)
    }

    static func migrations(_ configuration: Configuration) throws -> [MigrationFile] {
        let directory = try ResourceLocator.directory(
            named: "Migrations", explicit: configuration.migrationsDirectory, environmentName: "QUORIX_MIGRATIONS_DIR")
        return try ResourceLocator.loadMigrations(from: directory)
    }

    /// Runs `body` on the loop and returns when it is done and the loop closed.
    static func onLoop(_ body: @escaping @LoopActor () async throws -> Void) throws {
        final class Outcome: @unchecked Sendable { var error: (any Error)? }
        let outcome = Outcome()
        EventLoop.spawn {
            do { try await body() } catch { outcome.error = error }
            EventLoop.shared.finish()
        }
        EventLoop.shared.run()
        if let error = outcome.error { throw error }
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the HTTP server (applies pending migrations first).",
        discussion: "Stops on SIGTERM or SIGINT: stops accepting, finishes in-flight requests, closes everything, exits 0.")

    @Option(name: .customLong("listen"), help: ArgumentHelp("HOST:PORT to serve on (env QUORIX_LISTEN, default 127.0.0.1:8080).", valueName: "host:port"))
    var listen: String?

    @OptionGroup var database: DatabaseOptions

    func run() throws {
        var configuration = try database.configuration()
        if let listen {
            do { try configuration.setListen(listen) } catch { throw ValidationError(error.description) }
        }
        Bootstrap.logging(level: configuration.logLevel, toStandardError: false)
        let logger = Logger(label: "quorix")
        let migrations = try Bootstrap.migrations(configuration)
        if configuration.databaseURL == nil {
            // The embedded default is a playground: its first run loads the sample seat maps.
            configuration.seatMapsDirectory = try? ResourceLocator.directory(
                named: "SeatMaps", explicit: configuration.seatMapsDirectory, environmentName: "QUORIX_SEATMAPS_DIR")
            configuration.loadSampleSeatMaps = configuration.seatMapsDirectory != nil
        }
        let (conninfo, embedded) = try Bootstrap.database(configuration, logger: logger)
        let code = ServerRunner.serve(configuration: configuration, conninfo: conninfo, migrations: migrations, logger: logger)
        if let embedded {
            do { try embedded.stop() } catch { logger.error("stopping embedded PostgreSQL failed", metadata: ["error": "\(error)"]) }
        }
        if code != 0 { throw ExitCode(code) }
    }
}

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending migrations from Migrations/ and exit.")

    @OptionGroup var database: DatabaseOptions

    func run() throws {
        let configuration = try database.configuration()
        Bootstrap.logging(level: configuration.logLevel, toStandardError: true)
        let logger = Logger(label: "quorix")
        let migrations = try Bootstrap.migrations(configuration)
        let (conninfo, embedded) = try Bootstrap.database(configuration, logger: logger)
        defer { try? embedded?.stop() }
        try Bootstrap.onLoop {
            let connection = try await PGConnection.connect(conninfo)
            defer { connection.close() }
            let applied = try await Migrator(files: migrations).run(on: connection) { file in
                logger.info("applying migration", metadata: ["version": "\(file.version)", "name": "\(file.name)"])
            }
            logger.info("schema up to date", metadata: ["applied": "\(applied.count)", "migrations": "\(migrations.count)"])
        }
    }
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate seat-map files and store the valid ones.",
        discussion: """
            Every problem of an invalid file is listed with its JSON path; the other files are still             imported, and the command exits 1. Prints one JSON line per stored map on standard output.
            """)

    @Argument(help: ArgumentHelp("Seat-map JSON files (see SeatMaps/ for examples).", valueName: "file"))
    var files: [String]

    @OptionGroup var database: DatabaseOptions

    func run() throws {
        let configuration = try database.configuration()
        Bootstrap.logging(level: "warning", toStandardError: true)
        let logger = Logger(label: "quorix")
        let progress = Progress(total: files.count)
        var outcomes: [SeatMapImporter.FileOutcome] = []
        for (position, file) in files.enumerated() {
            progress.update(done: position, note: "validating \(file)")
            outcomes.append(SeatMapImporter.prepare(path: file))
        }
        let invalid = outcomes.filter { $0.plan == nil }
        for outcome in invalid {
            progress.message("\(outcome.path): \(outcome.problems.count == 1 ? "1 problem" : "\(outcome.problems.count) problems"), nothing stored:")
            for problem in outcome.problems { progress.message("  \(problem)") }
        }
        let valid = outcomes.filter { $0.plan != nil }
        if !valid.isEmpty {
            let migrations = try Bootstrap.migrations(configuration)
            let (conninfo, embedded) = try Bootstrap.database(configuration, logger: logger)
            defer { try? embedded?.stop() }
            try Bootstrap.onLoop {
                let pool = PGPool(PGPool.Configuration(conninfo: conninfo, size: 1))
                defer { pool.close() }
                _ = try await pool.withConnection { connection in
                    try await Migrator(files: migrations).run(on: connection)
                }
                let store = SeatMapStore(pool: pool)
                for (position, outcome) in valid.enumerated() {
                    guard let plan = outcome.plan else { continue }
                    progress.update(done: invalid.count + position, note: "storing \(outcome.path) (\(plan.seatCount) seats)")
                    let started = DispatchTime.now().uptimeNanoseconds
                    let stored = try await store.store(plan, ownerKeyID: nil)
                    let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
                    progress.message("\(outcome.path): stored as seat map \(stored.id), \(stored.seatCount) seats in \(String(format: "%.2f", seconds)) s")
                    print(JSONWriter.string(.object([
                        ("file", .string(outcome.path)), ("id", .int(stored.id)), ("name", .string(stored.name)),
                        ("seat_count", .int(stored.seatCount)), ("seconds", .double(seconds)),
                    ])))
                }
            }
        }
        progress.update(done: files.count, note: "done")
        progress.finish()
        if !invalid.isEmpty { throw ExitCode(1) }
    }
}

/// Progress on standard error: a bar redrawn in place on a terminal, plain lines otherwise.
/// Used by one thread at a time: the main thread, then the loop thread while the main one waits.
final class Progress: @unchecked Sendable {
    private let total: Int
    private let isTerminal = isatty(2) == 1
    private var drawn = false

    init(total: Int) { self.total = total }

    func update(done: Int, note: String) {
        if isTerminal {
            let width = 30
            let filled = total == 0 ? width : done * width / total
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            FileHandle.standardError.write(Data("\r\u{1B}[K[\(bar)] \(done)/\(total) \(note)".utf8))
            drawn = true
        } else {
            FileHandle.standardError.write(Data("import: [\(done)/\(total)] \(note)\n".utf8))
        }
    }

    /// A line that stays (the bar is redrawn below it).
    func message(_ text: String) {
        if isTerminal && drawn { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        FileHandle.standardError.write(Data("\(text)\n".utf8))
    }

    func finish() {
        if isTerminal && drawn { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage API keys.", subcommands: [Create.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an API key and print it once, as JSON.",
            discussion: "Only a hash of the key is stored: keep the printed key, it cannot be shown again.")

        @Option(help: ArgumentHelp("admin, organizer or client.", valueName: "role"))
        var role: String

        @Option(help: ArgumentHelp("Who the key is for, 1-200 characters (\"box office\").", valueName: "name"))
        var name: String

        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            guard Principal.Role(rawValue: role) != nil else {
                throw ValidationError("--role must be admin, organizer or client (got '\(role)')")
            }
            guard !name.trimmingCharacters(in: .whitespaces).isEmpty, name.count <= 200 else {
                throw ValidationError("--name must be 1 to 200 characters")
            }
        }

        func run() throws {
            let configuration = try database.configuration()
            Bootstrap.logging(level: configuration.logLevel, toStandardError: true)
            let logger = Logger(label: "quorix")
            let migrations = try Bootstrap.migrations(configuration)
            let (conninfo, embedded) = try Bootstrap.database(configuration, logger: logger)
            defer { try? embedded?.stop() }
            let role = Principal.Role(rawValue: role)!
            let name = name
            try Bootstrap.onLoop {
                let connection = try await PGConnection.connect(conninfo)
                defer { connection.close() }
                try await Migrator(files: migrations).run(on: connection)
                let created = try await APIKeyStore.create(role: role, name: name, on: connection)
                let json = JSONWriter.string(.object([
                    ("id", .string(created.id)), ("key", .string(created.key)),
                    ("role", .string(created.role.rawValue)), ("name", .string(created.name)),
                ]))
                print(json)
            }
        }
    }
}

QuorixCommand.main()

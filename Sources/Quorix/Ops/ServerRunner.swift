import Foundation
public import Logging
public import Loop
public import PG
import HTTP1

/// Runs the server on the loop until SIGTERM or SIGINT, then drains and closes every handle.
@LoopActor
public final class ServerRunner {
    private let configuration: Configuration
    private let conninfo: String
    private let migrations: [MigrationFile]
    private let logger: Logger
    private var pool: PGPool?
    private var server: HTTPServer?
    private var app: QuorixApp?
    private var signals: [SignalWatcher] = []
    private var stopping = false
    /// The wait between attempts to reach the database at start-up; `stop` cuts it short.
    private var retryTimer: LoopTimer?
    private var retryWaiter: CheckedContinuation<Void, Never>?
    /// Set when the server could not start.
    public private(set) var failure: String?

    public init(configuration: Configuration, conninfo: String, migrations: [MigrationFile], logger: Logger) {
        self.configuration = configuration
        self.conninfo = conninfo
        self.migrations = migrations
        self.logger = logger
    }

    /// Blocks the calling thread: runs the loop until shutdown. Returns the process exit code.
    public nonisolated static func serve(configuration: Configuration, conninfo: String, migrations: [MigrationFile], logger: Logger) -> Int32 {
        let outcome = RunOutcome()
        EventLoop.spawn {
            let runner = ServerRunner(configuration: configuration, conninfo: conninfo, migrations: migrations, logger: logger)
            await runner.start()
            if let failure = runner.failure { outcome.fail(failure) }
        }
        let leftover = EventLoop.shared.run()
        if leftover == 0 {
            logger.info("stopped", metadata: ["open_handles": "0"])
        } else {
            logger.error("stopped with handles still open", metadata: ["open_handles": "\(leftover)"])
        }
        if let failure = outcome.failure {
            logger.critical("quorix could not start", metadata: ["error": "\(failure)"])
            return 1
        }
        return leftover == 0 ? 0 : 2
    }

    func start() async {
        do {
            try installSignalHandlers()
            let pool = PGPool(PGPool.Configuration(conninfo: conninfo, size: configuration.poolSize))
            pool.sessionSetup = QuorixApp.sessionSetup
            self.pool = pool
            try await migrate(pool)
            if configuration.loadSampleSeatMaps, let directory = configuration.seatMapsDirectory {
                try await SeatMapImporter.loadSamplesIfEmpty(directory: directory, pool: pool, logger: logger)
            }
            let metrics = ServerMetrics()
            let app = QuorixApp(pool: pool, configuration: configuration, logger: logger, metrics: metrics)
            var httpConfiguration = HTTPServerConfiguration(host: configuration.listenHost, port: configuration.listenPort)
            httpConfiguration.idleTimeoutMilliseconds = configuration.idleTimeoutMilliseconds
            httpConfiguration.requestTimeoutMilliseconds = configuration.requestTimeoutMilliseconds
            httpConfiguration.drainTimeoutMilliseconds = configuration.drainTimeoutMilliseconds
            let server = HTTPServer(configuration: httpConfiguration, responder: app)
            let openFiles = ProcessLimits.raiseOpenFileLimit()
            server.onConnectionCountChange = { metrics.setOpenConnections($0) }
            server.onAcceptError = { [logger] error in logger.warning("accept failed", metadata: ["error": "\(error)"]) }
            do {
                try server.start()
            } catch {
                throw StartFailure(description: "cannot listen on \(configuration.listenHost):\(configuration.listenPort): \(error); set QUORIX_LISTEN or --listen to a free address")
            }
            self.server = server
            self.app = app
            app.sweeper.start()
            if configuration.liveSeatStatus { app.live.start() }
            app.webhookDeliverer.start()
            logger.info("listening", metadata: [
                "address": "\(configuration.listenHost):\(server.port)", "port": "\(server.port)",
                "pool_size": "\(configuration.poolSize)", "pid": "\(ProcessInfo.processInfo.processIdentifier)",
                "open_files_limit": "\(openFiles)",
            ])
        } catch is StoppedDuringStartUp {
            logger.info("stopped before start-up finished")
        } catch {
            failure = "\(error)"
            stop(reason: "start-up failed")
        }
    }

    /// Waits for the database (it may still be starting), then applies pending migrations.
    private func migrate(_ pool: PGPool) async throws {
        var attempt = 0
        while true {
            do {
                let applied = try await pool.withConnection { connection in
                    try await Migrator(files: migrations).run(on: connection) { [logger] file in
                        logger.info("applying migration", metadata: ["version": "\(file.version)", "name": "\(file.name)"])
                    }
                }
                logger.info("schema up to date", metadata: ["applied": "\(applied.count)", "migrations": "\(migrations.count)"])
                return
            } catch let error as PGError where error.isUnavailable && attempt < 30 && !stopping {
                if attempt == 0 {
                    logger.warning("waiting for the database", metadata: ["error": "\(error.debugDescription)"])
                }
                attempt += 1
                await pauseBeforeRetry(milliseconds: 1_000)
                if stopping { throw StoppedDuringStartUp() }
            } catch let error as PGError where error.isUnavailable {
                throw StartFailure(description: "cannot reach the database: \(error.debugDescription); check QUORIX_DATABASE_URL")
            } catch let error as PGError {
                throw StartFailure(description: "migrations failed: \(error.debugDescription)")
            }
        }
    }

    private func pauseBeforeRetry(milliseconds: UInt64) async {
        let timer = LoopTimer()
        retryTimer = timer
        await withCheckedContinuation { continuation in
            retryWaiter = continuation
            timer.start(after: milliseconds) { [weak self] in self?.endRetryPause() }
        }
    }

    private func endRetryPause() {
        retryTimer?.close()
        retryTimer = nil
        let waiter = retryWaiter
        retryWaiter = nil
        waiter?.resume()
    }

    private func installSignalHandlers() throws {
        for signal in [SIGTERM, SIGINT] {
            // The watchers hold the runner (and through it the server) until `stop` closes them.
            signals.append(try SignalWatcher(signal: signal) { number in
                self.stop(reason: number == SIGTERM ? "SIGTERM" : "SIGINT")
            })
        }
    }

    /// Stops accepting, finishes in-flight requests, closes the pool and every handle.
    func stop(reason: String) {
        guard !stopping else { return }
        stopping = true
        endRetryPause()
        // Streams end first: they would otherwise hold the drain open until its timeout.
        app?.live.stop()
        logger.info("shutting down", metadata: ["reason": "\(reason)", "open_connections": "\(server?.connectionCount ?? 0)"])
        let closeAll = { [self] in
            pool?.close()
            for watcher in signals { watcher.close() }
            signals = []
            EventLoop.shared.finish()
        }
        // A sweep in flight finishes its transaction, and the deliverer's statements theirs,
        // before the pool closes; a listener still connecting finishes connecting (and closes).
        let finish = { [self] in
            guard let app else { return closeAll() }
            app.webhookDeliverer.stop { app.sweeper.stop { app.live.whenStopped(closeAll) } }
        }
        if let server {
            server.shutdown(finish)
        } else {
            finish()
        }
    }
}

/// A signal arrived while start-up was still waiting for the database: not a failure.
struct StoppedDuringStartUp: Error {}

struct StartFailure: Error, CustomStringConvertible {
    let description: String
}

/// Carries a start-up failure from the loop thread back to `serve`'s caller.
private final class RunOutcome: @unchecked Sendable {
    private let lock = NSLock()
    private var message: String?

    func fail(_ message: String) {
        lock.withLock { self.message = message }
    }

    var failure: String? { lock.withLock { message } }
}

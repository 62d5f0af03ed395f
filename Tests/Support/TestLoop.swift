import Loop

/// The in-process libuv loop for tests, started once per test process on a thread of its own.
///
/// Tests never call `EventLoop.shared.finish()`: the loop lives as long as the process.
public enum TestLoop {
    /// Touch to start the loop (idempotent, thread-safe: a `static let` initialiser runs once).
    public static let started: Void = {
        EventLoop.shared.startThread()
    }()

    public static func start() {
        _ = started
    }

    /// Runs `body` on the loop and returns its value (for code that is not `@LoopActor` itself).
    public static func run<T: Sendable>(_ body: @escaping @Sendable @LoopActor () async throws -> T) async throws -> T {
        start()
        return try await onLoop(body)
    }

    @LoopActor
    private static func onLoop<T: Sendable>(_ body: @escaping @Sendable @LoopActor () async throws -> T) async throws -> T {
        try await body()
    }
}

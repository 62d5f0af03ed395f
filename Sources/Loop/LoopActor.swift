/// The isolation domain of the one libuv loop thread.
///
/// Everything that touches libuv, a socket or a libpq connection is `@LoopActor`: its jobs run on
/// the loop thread (see `LoopExecutor`), so the compiler keeps domain code from reaching loop state
/// from anywhere else.
@globalActor
public actor LoopActor {
    public static let shared = LoopActor()

    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        EventLoop.shared.executor.asUnownedSerialExecutor()
    }

    /// Runs `operation` as `@LoopActor` code when called synchronously on the loop thread from
    /// outside a task (a libuv callback). Traps if called from any other thread.
    public static func assumeIsolated<T>(_ operation: @LoopActor () throws -> T) rethrows -> T {
        EventLoop.shared.executor.checkIsolated()
        // A global-actor-isolated synchronous function has the same representation as a
        // nonisolated one; the isolation was just checked at run time (this is what
        // MainActor.assumeIsolated does in the standard library).
        return try withoutActuallyEscaping(operation) { isolated in
            try unsafeBitCast(isolated, to: (() throws -> T).self)()
        }
    }
}

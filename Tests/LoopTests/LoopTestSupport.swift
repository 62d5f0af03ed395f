@testable import Loop
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The process's loop, started once on a thread of its own. Never finished: other tests share it.
enum TestLoop {
    static let started: Void = { EventLoop.shared.startThread() }()
}

/// Every loop test lives under this suite, one at a time: the handle-accounting tests compare a
/// process-wide count, which tests opening handles in parallel would disturb.
@Suite(.serialized) enum LoopSuite {}

struct TimedOut: Error, CustomStringConvertible {
    let milliseconds: Int
    var description: String { "timed out after \(milliseconds) ms" }
}

/// Runs `operation` and gives up after `milliseconds`. Unlike a task group, it does not wait for
/// an operation that never ends (a lost continuation): the test fails instead of hanging.
func withTimeout<T: Sendable>(
    milliseconds: Int = 5_000,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let once = ResumeOnce(continuation)
        let timer = Task {
            try await Task.sleep(for: .milliseconds(milliseconds))
            once.resume(with: .failure(TimedOut(milliseconds: milliseconds)))
        }
        Task {
            let result: Result<T, any Error>
            do { result = .success(try await operation()) } catch { result = .failure(error) }
            timer.cancel()
            once.resume(with: result)
        }
    }
}

/// Starts the loop, then runs `body` on it (as `@LoopActor` code) within a time limit.
func onLoop<T: Sendable>(
    timeoutMilliseconds: Int = 5_000,
    _ body: @escaping @Sendable @LoopActor () async throws -> T
) async throws -> T {
    _ = TestLoop.started
    return try await withTimeout(milliseconds: timeoutMilliseconds) {
        try await body()
    }
}

/// Resumes a continuation with whichever result comes first; later ones are dropped.
private final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, any Error>?>

    init(_ continuation: CheckedContinuation<T, any Error>) {
        self.continuation = Mutex(continuation)
    }

    func resume(with result: Result<T, any Error>) {
        let taken = continuation.withLock { stored in
            defer { stored = nil }
            return stored
        }
        taken?.resume(with: result)
    }
}

/// Turns the loop (without opening any handle, unlike a sleep) until `condition` holds or
/// `milliseconds` pass. Each `Task.yield()` goes through the loop's job queue; the executor runs
/// a bounded number of rounds per loop iteration, so I/O and close callbacks keep happening.
@LoopActor
func until(milliseconds: UInt64 = 2_000, _ condition: @LoopActor () -> Bool) async -> Bool {
    let deadline = EventLoop.hrtime() + milliseconds * 1_000_000
    while !condition() {
        if EventLoop.hrtime() > deadline { return false }
        await Task.yield()
    }
    return true
}

/// Lets the loop go round for about `milliseconds` without opening a handle.
@LoopActor
func spin(milliseconds: UInt64) async {
    _ = await until(milliseconds: milliseconds) { false }
}

/// Values collected by loop callbacks.
@LoopActor
final class Collected<Element> {
    var items: [Element] = []
    nonisolated init() {}
    func append(_ item: Element) { items.append(item) }
    var count: Int { items.count }
}

/// Bytes received by a stream, and how its reading ended.
@LoopActor
final class ByteSink {
    var bytes: [UInt8] = []
    var end: UVError?

    func reading(_ stream: TCPStream) {
        stream.startReading(
            onRead: { [self] chunk in bytes.append(contentsOf: chunk) },
            onReadEnd: { [self] error in end = error })
    }
}

/// A weak reference, to see when libuv's close callback lets go of a handle's owner.
@LoopActor
final class WeakProbe<Object: AnyObject> {
    weak var object: Object?
    init(_ object: Object? = nil) { self.object = object }
}

/// Whether `lhs` and `rhs` hold the same bytes (memcmp; fast in debug builds).
func sameBytes(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    return lhs.withUnsafeBytes { left in
        rhs.withUnsafeBytes { right in
            left.count == 0 || memcmp(left.baseAddress!, right.baseAddress!, left.count) == 0
        }
    }
}

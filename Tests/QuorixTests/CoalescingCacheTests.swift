import Loop
import QuorixTestSupport
import Testing
@testable import Quorix

@Suite struct CoalescingCacheTests {
    init() {
        TestLoop.start()
    }

    @LoopActor
    final class Clock {
        var now: UInt64 = 1_000
    }

    struct LoadFailed: Error {}

    @Test @LoopActor
    func concurrentMissesShareOneLoad() async throws {
        let cache = CoalescingCache<Int, String>(maxAgeMilliseconds: nil)
        let loads = Box(0)
        let answers = Box<[String?]>([])
        let gate = Gate()
        for _ in 0..<20 {
            EventLoop.spawn {
                let answer = try? await cache.value(for: 7) {
                    loads.value += 1
                    await gate.wait()
                    return "seat map 7"
                }
                answers.value.append(answer)
            }
        }
        // Let every task reach the cache before the one load finishes.
        for _ in 0..<100 { await Task.yield() }
        gate.open()
        for _ in 0..<1_000 where answers.value.count < 20 { await Task.yield() }
        #expect(answers.value == Array(repeating: "seat map 7", count: 20))
        #expect(loads.value == 1)
        #expect(try await cache.value(for: 7) { Issue.record("loaded again"); return nil } == "seat map 7")
    }

    @Test @LoopActor
    func valuesExpireNilIsNotKeptAndErrorsReachEveryWaiter() async throws {
        let clock = Clock()
        let cache = CoalescingCache<Int, Int>(maxAgeMilliseconds: 1_000, now: { clock.now })
        #expect(try await cache.value(for: 1) { nil } == nil)
        #expect(try await cache.value(for: 1) { 10 } == 10)
        clock.now += 1_000
        #expect(try await cache.value(for: 1) { 11 } == 10, "kept for its whole age")
        clock.now += 1
        #expect(try await cache.value(for: 1) { 12 } == 12, "reloaded once too old")
        cache.store(13, for: 1)
        #expect(try await cache.value(for: 1) { 14 } == 13)
        cache.invalidate(1)
        await #expect(throws: LoadFailed.self) { try await cache.value(for: 1) { throw LoadFailed() } }
        #expect(try await cache.value(for: 1) { 15 } == 15, "a failed load is not kept")
    }
}

@LoopActor
final class Box<Value> {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// A one-shot barrier for loop tasks.
@LoopActor
final class Gate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func open() {
        isOpen = true
        for waiter in waiters { waiter.resume() }
        waiters = []
    }
}

@testable import Loop
import Testing

/// Nonisolated async: with NonisolatedNonsendingByDefault it runs on its caller's executor.
private func isOnLoopThread(afterSuspending: Bool) async -> Bool {
    if afterSuspending { await Task.yield() }
    return EventLoop.shared.executor.isOnLoopThread
}

/// Explicitly concurrent: runs on the task's preferred executor if it has one, else the pool.
@concurrent private func concurrentIsOnLoopThread() async -> Bool {
    await Task.yield()
    return EventLoop.shared.executor.isOnLoopThread
}

@LoopActor
private final class Tally {
    private(set) var count = 0
    private(set) var enqueuedFromOtherThreads = 0
    private(set) var ranOnLoopThread = 0

    nonisolated init() {}

    func record(enqueuedOffLoop: Bool) {
        count += 1
        if enqueuedOffLoop { enqueuedFromOtherThreads += 1 }
        if EventLoop.shared.executor.isOnLoopThread { ranOnLoopThread += 1 }
    }
}

extension LoopSuite {
    @Suite struct ExecutorTests {
        @Test func loopActorCodeRunsOnTheLoopThread() async throws {
            let onLoopThread = try await onLoop { EventLoop.shared.executor.isOnLoopThread }
            #expect(onLoopThread)
            // The test itself does not run there.
            #expect(!EventLoop.shared.executor.isOnLoopThread)
        }

        @Test func loopActorCodeStaysOnTheLoopThreadAcrossSuspensions() async throws {
            try await onLoop {
                for _ in 0..<5 {
                    await Task.yield()
                    #expect(EventLoop.shared.executor.isOnLoopThread)
                    LoopActor.assumeIsolated { #expect(EventLoop.shared.executor.isOnLoopThread) }
                }
            }
        }

        @Test func nonisolatedAsyncFunctionsCalledFromLoopCodeRunOnTheLoop() async throws {
            let results = try await onLoop {
                [await isOnLoopThread(afterSuspending: false), await isOnLoopThread(afterSuspending: true)]
            }
            #expect(results == [true, true])
        }

        @Test func spawnedTasksRunOnTheLoopIncludingConcurrentFunctionsTheyCall() async throws {
            let results = try await onLoop {
                let results = Collected<Bool>()
                await EventLoop.spawn {
                    results.append(EventLoop.shared.executor.isOnLoopThread)
                    results.append(await isOnLoopThread(afterSuspending: true))
                    // The loop is the task's executor preference: even @concurrent code stays.
                    results.append(await concurrentIsOnLoopThread())
                }.value
                return results.items
            }
            #expect(results == [true, true, true])
        }

        @Test func concurrentFunctionsLeaveTheLoopWithoutATaskPreference() async throws {
            // The contrast that makes the previous test meaningful.
            let offLoop = try await onLoop { await concurrentIsOnLoopThread() }
            #expect(!offLoop)
        }

        @Test func spawnedFromAnotherThreadRunsOnTheLoop() async throws {
            _ = TestLoop.started
            let results = Collected<Bool>()
            try await withTimeout {
                await EventLoop.spawn {
                    results.append(EventLoop.shared.executor.isOnLoopThread)
                    results.append(await concurrentIsOnLoopThread())
                }.value
            }
            #expect(await results.items == [true, true])
        }

        @Test func spawnImmediatelyRunsTheTaskOnTheLoopWithTheLoopAsPreference() async throws {
            let results = try await onLoop {
                let results = Collected<Bool>()
                await EventLoop.spawnImmediately {
                    results.append(EventLoop.shared.executor.isOnLoopThread)
                    results.append(await concurrentIsOnLoopThread())
                }.value
                return results.items
            }
            #expect(results == [true, true])
        }

        /// `spawnImmediately` documents that, called on the loop, the task runs at once in the
        /// caller's stack until its first suspension (HTTPConnection relies on it for handlers
        /// that never wait). With Swift 6.3.1, `Task.immediate` given an `executorPreference`
        /// always enqueues instead, so the task runs after the caller, as with `spawn`; without
        /// the preference it does start at once (see the next test). Left to the lead: dropping
        /// the preference would let `@concurrent` code and child tasks of handlers leave the loop.
        @Test func spawnImmediatelyFromALoopCallbackStartsBeforeTheCallerContinues() async throws {
            let order = try await onLoop {
                let order = Collected<String>()
                let timer = LoopTimer()
                // A libuv callback, as HTTPConnection's read callback.
                timer.start(after: 0) {
                    EventLoop.spawnImmediately {
                        order.append("task starts")
                        await Task.yield()
                        order.append("task resumes")
                    }
                    order.append("caller continues")
                }
                _ = await until { order.count == 3 }
                timer.close()
                return order.items
            }
            withKnownIssue("Task.immediate with an executorPreference does not start synchronously") {
                #expect(order == ["task starts", "caller continues", "task resumes"])
            }
            #expect(order.count == 3)
        }

        @Test func taskImmediateWithoutPreferenceStartsAtOnceFromALoopCallback() async throws {
            let order = try await onLoop {
                let order = Collected<String>()
                let timer = LoopTimer()
                timer.start(after: 0) {
                    Task.immediate { @LoopActor in
                        order.append("task starts")
                        await Task.yield()
                        order.append("task resumes")
                    }
                    order.append("caller continues")
                }
                _ = await until { order.count == 3 }
                timer.close()
                return order.items
            }
            #expect(order == ["task starts", "caller continues", "task resumes"])
        }

        @Test func spawnQueuesTheTaskBehindTheCaller() async throws {
            let order = try await onLoop {
                let order = Collected<String>()
                EventLoop.spawn { order.append("task") }
                order.append("caller")
                _ = await until { order.count == 2 }
                return order.items
            }
            #expect(order == ["caller", "task"])
        }

        /// Jobs run in the order they were queued, whatever their task's priority: a hold
        /// statement's drainer takes its next holds after the handlers queued before it, and so
        /// with their holds (HoldBatcher).
        @Test func jobsRunInTheOrderQueuedWhateverTheirPriority() async throws {
            let order = try await onLoop {
                let order = Collected<String>()
                let timer = LoopTimer()
                timer.start(after: 0) {
                    for index in 0..<3 {
                        EventLoop.spawn { order.append("default \(index)") }
                        Task(executorPreference: EventLoop.shared.executor, priority: .high) { @LoopActor in order.append("high \(index)") }
                    }
                }
                _ = await until { order.count == 6 }
                timer.close()
                return order.items
            }
            #expect(order == ["default 0", "high 0", "default 1", "high 1", "default 2", "high 2"])
        }

        @Test func manyJobsEnqueuedFromOtherThreadsAllRun() async throws {
            _ = TestLoop.started
            let tally = Tally()
            let jobs = 10_000
            let start = EventLoop.hrtime()
            try await withTimeout(milliseconds: 15_000) {
                await withTaskGroup(of: Void.self) { group in
                    for _ in 0..<jobs {
                        group.addTask {
                            let offLoop = !EventLoop.shared.executor.isOnLoopThread
                            await tally.record(enqueuedOffLoop: offLoop)
                        }
                    }
                }
            }
            let elapsed = Double(EventLoop.hrtime() - start) / 1e9
            #expect(await tally.count == jobs)
            #expect(await tally.ranOnLoopThread == jobs)
            #expect(await tally.enqueuedFromOtherThreads == jobs)
            #expect(elapsed < 10, "took \(elapsed) s")
        }

        @Test func manyJobsFromOtherThreadsInterleavedWithLoopWorkAllRun() async throws {
            // Jobs arriving from the pool while the loop is itself busy enqueuing its own.
            _ = TestLoop.started
            let tally = Tally()
            try await withTimeout(milliseconds: 15_000) {
                async let loopSide: Void = onLoop {
                    for _ in 0..<2_000 {
                        tally.record(enqueuedOffLoop: false)
                        await Task.yield()
                    }
                }
                await withTaskGroup(of: Void.self) { group in
                    for _ in 0..<2_000 {
                        group.addTask { await tally.record(enqueuedOffLoop: true) }
                    }
                }
                try await loopSide
            }
            #expect(await tally.count == 4_000)
            #expect(await tally.enqueuedFromOtherThreads == 2_000)
        }
    }
}

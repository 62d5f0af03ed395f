@testable import Loop
import Testing

extension LoopSuite {
    @Suite struct TimerTests {
        @Test func timerFiresOnceAfterItsDelay() async throws {
            try await onLoop {
                let timer = LoopTimer()
                defer { timer.close() }
                let firedAt = Collected<UInt64>()
                let start = EventLoop.shared.nowMilliseconds
                let startNanoseconds = EventLoop.hrtime()
                let elapsed = Collected<UInt64>()
                timer.start(after: 30) {
                    firedAt.append(EventLoop.shared.nowMilliseconds)
                    elapsed.append((EventLoop.hrtime() - startNanoseconds) / 1_000_000)
                }
                #expect(await until { firedAt.count == 1 })
                // Loop time is exact; wall time allows for the loop's cached clock (ms granularity).
                #expect(firedAt.items[0] - start >= 30)
                #expect(elapsed.items[0] >= 25)
                await spin(milliseconds: 60)
                #expect(firedAt.count == 1)
            }
        }

        @Test func repeatingTimerFiresSeveralTimesUntilStopped() async throws {
            try await onLoop {
                let timer = LoopTimer()
                defer { timer.close() }
                let fired = Collected<UInt64>()
                timer.start(after: 5, repeat: 5) { fired.append(EventLoop.shared.nowMilliseconds) }
                #expect(await until { fired.count >= 4 })
                timer.stop()
                let count = fired.count
                await spin(milliseconds: 40)
                #expect(fired.count == count)
                // Consecutive firings are at least the interval apart (loop time).
                for (earlier, later) in zip(fired.items, fired.items.dropFirst()) {
                    #expect(later - earlier >= 5)
                }
            }
        }

        @Test func stopPreventsFiring() async throws {
            try await onLoop {
                let timer = LoopTimer()
                defer { timer.close() }
                let fired = Collected<Void>()
                timer.start(after: 10) { fired.append(()) }
                timer.stop()
                await spin(milliseconds: 50)
                #expect(fired.count == 0)
                // A stopped timer can be started again.
                timer.start(after: 1) { fired.append(()) }
                #expect(await until { fired.count == 1 })
            }
        }

        @Test func closePreventsFiringAndLaterStartsAreIgnored() async throws {
            try await onLoop {
                let timer = LoopTimer()
                let fired = Collected<Void>()
                timer.start(after: 10) { fired.append(()) }
                timer.close()
                #expect(timer.isClosed)
                timer.start(after: 1) { fired.append(()) }
                timer.stop()
                timer.close()
                await spin(milliseconds: 50)
                #expect(fired.count == 0)
            }
        }

        @Test func startingAgainReplacesTheDelayAndTheCallback() async throws {
            try await onLoop {
                let timer = LoopTimer()
                defer { timer.close() }
                let fired = Collected<String>()
                timer.start(after: 10_000) { fired.append("first") }
                timer.start(after: 5) { fired.append("second") }
                #expect(await until { fired.count == 1 })
                await spin(milliseconds: 30)
                #expect(fired.items == ["second"])
            }
        }

        @Test func timersFireInDeadlineOrder() async throws {
            try await onLoop {
                let fired = Collected<Int>()
                let timers = (0..<5).map { _ in LoopTimer() }
                defer { for timer in timers { timer.close() } }
                for (index, delay) in [40, 10, 30, 0, 20].enumerated() {
                    timers[index].start(after: UInt64(delay)) { fired.append(delay) }
                }
                #expect(await until { fired.count == 5 })
                #expect(fired.items == [0, 10, 20, 30, 40])
            }
        }

        @Test func sleepSuspendsAtLeastThatLong() async throws {
            try await onLoop {
                for milliseconds: UInt64 in [0, 1, 20] {
                    let start = EventLoop.shared.nowMilliseconds
                    await EventLoop.sleep(milliseconds: milliseconds)
                    #expect(EventLoop.shared.nowMilliseconds - start >= milliseconds)
                    #expect(EventLoop.shared.executor.isOnLoopThread)
                }
            }
        }

        @Test func sleepsRunConcurrentlyOnTheOneLoop() async throws {
            try await onLoop {
                let start = EventLoop.hrtime()
                let done = Collected<Int>()
                for index in 0..<10 {
                    EventLoop.spawn {
                        await EventLoop.sleep(milliseconds: 50)
                        done.append(index)
                    }
                }
                #expect(await until { done.count == 10 })
                // Ten 50 ms sleeps overlap instead of taking half a second in turn.
                #expect((EventLoop.hrtime() - start) / 1_000_000 < 400)
            }
        }

        @Test func nowMillisecondsIsMonotonic() async throws {
            try await onLoop {
                var previous = EventLoop.shared.nowMilliseconds
                for _ in 0..<20 {
                    await Task.yield()
                    let now = EventLoop.shared.nowMilliseconds
                    #expect(now >= previous)
                    previous = now
                }
                let first = EventLoop.hrtime()
                #expect(EventLoop.hrtime() >= first)
            }
        }
    }
}

@Suite struct SecureRandomTests {
    @Test func bytesAreFreshEveryTime() {
        let draws = (0..<64).map { _ in SecureRandom.bytes(32) }
        #expect(draws.allSatisfy { $0.count == 32 })
        #expect(Set(draws).count == 64, "two 256-bit draws repeated")
        #expect(SecureRandom.bytes(0).isEmpty)
        // Every byte value turns up across 64 × 32 bytes (a stuck or short fill would not).
        #expect(Set(draws.joined()).count > 200)
    }
}

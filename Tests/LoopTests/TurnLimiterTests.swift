@testable import Loop
import Testing

extension LoopSuite {
    /// `TurnLimiter`: at most `perTurn` pieces start in one turn of the loop; the rest wait, in
    /// order, and the loop polls (here: fires a due timer) before starting them.
    @Suite struct TurnLimiterTests {
        @Test func workBeyondTheTurnsShareWaitsInOrderWhileTheLoopPollsBetween() async throws {
            let (order, startedAtOnce, handlesDuring) = try await onLoop {
                let before = OpenHandles.current
                let limiter = TurnLimiter(perTurn: 3)
                let order = Collected<String>()
                let timer = LoopTimer()
                var startedAtOnce = 0
                // From a libuv callback, as the HTTP server's reads are.
                timer.start(after: 0) {
                    let due = LoopTimer()
                    due.start(after: 0) {
                        order.append("timer")
                        due.close()
                    }
                    for index in 0..<10 { limiter.run { order.append("work \(index)") } }
                    startedAtOnce = order.count
                }
                _ = await until { order.count == 11 }
                let handlesDuring = OpenHandles.current - before
                limiter.close()
                timer.close()
                return (order.items, startedAtOnce, handlesDuring)
            }
            #expect(startedAtOnce == 3)
            #expect(order.filter { $0 != "timer" } == (0..<10).map { "work \($0)" })
            // The timer came due in the next turn: before the last batch could start.
            let timerAt = order.firstIndex(of: "timer") ?? .max
            #expect(timerAt <= 6, "\(order)")
            #expect(handlesDuring >= 3)
        }

        @Test func closingReleasesItsHandlesAndDropsWhatWaits() async throws {
            let (handlesLeft, ran) = try await onLoop {
                let before = OpenHandles.current
                let limiter = TurnLimiter(perTurn: 1)
                let ran = Collected<Int>()
                let timer = LoopTimer()
                timer.start(after: 0) {
                    for index in 0..<5 { limiter.run { ran.append(index) } }
                    limiter.close()
                }
                _ = await until { OpenHandles.current == before + 1 }  // the timer alone
                timer.close()
                _ = await until { OpenHandles.current == before }
                return (OpenHandles.current - before, ran.items)
            }
            #expect(handlesLeft == 0)
            #expect(ran == [0])
        }
    }
}

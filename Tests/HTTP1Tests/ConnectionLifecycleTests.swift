import HTTP1
import Testing

/// The lifecycle is driven with made-up clock values: no sleeps, no loop.
@Suite struct ConnectionLifecycleTests {
    private let idle: UInt64 = 5_000
    private let request: UInt64 = 1_000

    private func fresh(at now: UInt64 = 100) -> ConnectionLifecycle {
        ConnectionLifecycle(now: now, idleTimeout: idle, requestTimeout: request)
    }

    @Test func startsIdleWithTheIdleDeadline() {
        let lifecycle = fresh(at: 100)
        #expect(lifecycle.state == .idle(since: 100))
        #expect(lifecycle.deadline == 5_100)
    }

    @Test func idleTimeoutClosesWithout408() {
        var lifecycle = fresh(at: 100)
        #expect(lifecycle.timerFired(now: 5_100) == .close(requestTimedOut: false))
        #expect(lifecycle.state == .closed)
        #expect(lifecycle.deadline == nil)
    }

    @Test func idleTimerFiringLateStillClosesWithout408() {
        var lifecycle = fresh(at: 100)
        #expect(lifecycle.timerFired(now: 60_000) == .close(requestTimedOut: false))
    }

    @Test func bytesWhileIdleStartReceivingWithTheRequestDeadline() {
        var lifecycle = fresh(at: 100)
        #expect(lifecycle.bytesReceived(now: 2_000) == .arm(deadline: 3_000))
        #expect(lifecycle.state == .receiving(since: 2_000))
        #expect(lifecycle.deadline == 3_000)
    }

    @Test func moreBytesWhileReceivingKeepTheFirstDeadline() {
        var lifecycle = fresh(at: 100)
        _ = lifecycle.bytesReceived(now: 2_000)
        // A slow client trickling bytes does not push the deadline back.
        #expect(lifecycle.bytesReceived(now: 2_500) == .none)
        #expect(lifecycle.bytesReceived(now: 2_999) == .none)
        #expect(lifecycle.deadline == 3_000)
    }

    @Test func unfinishedRequestTimesOutWithRequestTimedOut() {
        var lifecycle = fresh(at: 100)
        _ = lifecycle.bytesReceived(now: 2_000)
        #expect(lifecycle.timerFired(now: 3_000) == .close(requestTimedOut: true))
        #expect(lifecycle.state == .closed)
    }

    @Test func requestTimeoutIsMeasuredFromTheFirstByteNotFromIdle() {
        var lifecycle = fresh(at: 0)
        _ = lifecycle.bytesReceived(now: 4_900)
        // The idle deadline (5 000) has passed, the request deadline (5 900) has not.
        #expect(lifecycle.timerFired(now: 5_000) == .arm(deadline: 5_900))
        #expect(lifecycle.state == .receiving(since: 4_900))
    }

    @Test func earlyTimerWhileIdleRearmsForTheRealDeadline() {
        var lifecycle = fresh(at: 100)
        #expect(lifecycle.timerFired(now: 5_099) == .arm(deadline: 5_100))
        #expect(lifecycle.state == .idle(since: 100))
        #expect(lifecycle.timerFired(now: 5_100) == .close(requestTimedOut: false))
    }

    @Test func earlyTimerWhileReceivingRearmsForTheRealDeadline() {
        var lifecycle = fresh(at: 100)
        _ = lifecycle.bytesReceived(now: 200)
        #expect(lifecycle.timerFired(now: 1_000) == .arm(deadline: 1_200))
        #expect(lifecycle.timerFired(now: 1_199) == .arm(deadline: 1_200))
        #expect(lifecycle.timerFired(now: 1_200) == .close(requestTimedOut: true))
    }

    @Test func respondingHasNoDeadlineAndTimerFiringDoesNothing() {
        var lifecycle = fresh(at: 100)
        _ = lifecycle.bytesReceived(now: 200)
        #expect(lifecycle.requestReceived() == .none)
        #expect(lifecycle.state == .responding)
        #expect(lifecycle.deadline == nil)
        // A slow handler is the server's time: neither timeout applies.
        #expect(lifecycle.timerFired(now: 1_000_000) == .none)
        #expect(lifecycle.state == .responding)
        // Pipelined bytes arriving meanwhile change nothing either.
        #expect(lifecycle.bytesReceived(now: 1_000_001) == .none)
        #expect(lifecycle.state == .responding)
    }

    @Test func requestCompletingInOneReadGoesStraightToResponding() {
        var lifecycle = fresh(at: 100)
        #expect(lifecycle.bytesReceived(now: 150) == .arm(deadline: 1_150))
        #expect(lifecycle.requestReceived() == .none)
        #expect(lifecycle.state == .responding)
    }

    @Test func responseSentReturnsToIdleWithANewIdleDeadline() {
        var lifecycle = fresh(at: 100)
        _ = lifecycle.bytesReceived(now: 200)
        _ = lifecycle.requestReceived()
        #expect(lifecycle.responseSent(now: 9_000, moreBuffered: false) == .arm(deadline: 14_000))
        #expect(lifecycle.state == .idle(since: 9_000))
        #expect(lifecycle.deadline == 14_000)
    }

    @Test func responseSentWithBufferedBytesGoesToReceivingWithTheRequestDeadline() {
        var lifecycle = fresh(at: 100)
        _ = lifecycle.bytesReceived(now: 200)
        _ = lifecycle.requestReceived()
        #expect(lifecycle.responseSent(now: 9_000, moreBuffered: true) == .arm(deadline: 10_000))
        #expect(lifecycle.state == .receiving(since: 9_000))
        #expect(lifecycle.timerFired(now: 10_000) == .close(requestTimedOut: true))
    }

    @Test func keepAliveCycleRepeats() {
        var lifecycle = fresh(at: 0)
        var now: UInt64 = 0
        for _ in 0..<3 {
            now += 10
            #expect(lifecycle.bytesReceived(now: now) == .arm(deadline: now + request))
            #expect(lifecycle.requestReceived() == .none)
            now += 500
            #expect(lifecycle.responseSent(now: now, moreBuffered: false) == .arm(deadline: now + idle))
        }
        #expect(lifecycle.timerFired(now: now + idle - 1) == .arm(deadline: now + idle))
        #expect(lifecycle.timerFired(now: now + idle) == .close(requestTimedOut: false))
    }

    @Test func responseSentOutsideRespondingDoesNothing() {
        var lifecycle = fresh(at: 100)
        #expect(lifecycle.responseSent(now: 200, moreBuffered: false) == .none)
        #expect(lifecycle.state == .idle(since: 100))
        _ = lifecycle.bytesReceived(now: 300)
        #expect(lifecycle.responseSent(now: 400, moreBuffered: true) == .none)
        #expect(lifecycle.state == .receiving(since: 300))
    }

    @Test func closedIgnoresEverything() {
        var lifecycle = fresh(at: 100)
        lifecycle.closed()
        #expect(lifecycle.state == .closed)
        #expect(lifecycle.deadline == nil)
        #expect(lifecycle.bytesReceived(now: 200) == .none)
        #expect(lifecycle.requestReceived() == .none)
        #expect(lifecycle.responseSent(now: 300, moreBuffered: true) == .none)
        #expect(lifecycle.timerFired(now: 1_000_000) == .none)
        #expect(lifecycle.state == .closed)
    }

    @Test func closingWhileRespondingStaysClosed() {
        var lifecycle = fresh(at: 100)
        _ = lifecycle.requestReceived()
        lifecycle.closed()
        #expect(lifecycle.responseSent(now: 200, moreBuffered: false) == .none)
        #expect(lifecycle.state == .closed)
    }
}

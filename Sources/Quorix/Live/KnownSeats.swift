import Loop

/// What this process knows of an event's seats without asking the database, from the live
/// snapshot: under a flash crowd, requests for seats it knows are taken are refused at once.
/// Only refusals come from here; every success is the database's decision. With no current
/// snapshot (not loaded yet, or not listening) it knows nothing and every request goes on.
@LoopActor
struct KnownSeats {
    let live: LiveSeats
    let eventID: Int
    let index: SeatMapIndex

    /// The snapshot, when it is current and no seat this process freed may be missing from it.
    private var snapshot: EventSeatSnapshot? {
        guard let snapshot = live.currentSnapshot(eventID: eventID, index: index), live.isSettled(eventID: eventID, forRefusals: true) else { return nil }
        return snapshot
    }

    /// `seatIDs`, when every one of them is known to be taken (a refusal names exactly the seats
    /// that are not free, and only the database knows that of the others); nil otherwise.
    func taken(_ seatIDs: [Int]) -> [Int]? {
        guard let taken = snapshot?.takenSeats(
            seatIDs, nowMilliseconds: WallClock.nowMilliseconds, loopMilliseconds: EventLoop.shared.nowMilliseconds),
            !taken.isEmpty, taken.count == seatIDs.count
        else { return nil }
        return taken
    }

    /// Whether any of the seats is known to be taken (best available skips such candidates).
    func anyTaken(_ seatIDs: [Int]) -> Bool {
        snapshot.map { !$0.takenSeats(seatIDs, nowMilliseconds: WallClock.nowMilliseconds, loopMilliseconds: EventLoop.shared.nowMilliseconds).isEmpty } ?? false
    }

    /// The database said these seats are taken: refuse them at once until the announcement
    /// comes (in a crowd, the next requests arrive before it).
    func report(_ seatIDs: [Int]) {
        live.currentSnapshot(eventID: eventID, index: index)?.reportTaken(seatIDs, loopMilliseconds: EventLoop.shared.nowMilliseconds)
    }

    /// Nothing can fit `filter`: too few seats left, or the database found none a moment ago
    /// and none was freed since.
    func noneFit(_ filter: BestAvailableFilter) -> Bool {
        guard let snapshot else { return false }
        return snapshot.cannotFit(
            quantity: filter.quantity, nowMilliseconds: WallClock.nowMilliseconds, loopMilliseconds: EventLoop.shared.nowMilliseconds)
            || snapshot.knownNoneFit(filter, nowMilliseconds: EventLoop.shared.nowMilliseconds)
    }

    /// Best-available reads may be shared while this is the same: the snapshot's count of seats
    /// freed, when it is current and settled; nil (read alone) otherwise.
    var freeGeneration: Int? { snapshot?.freeGeneration }

    func rememberNoneFit(_ filter: BestAvailableFilter) {
        snapshot?.rememberNoneFit(filter, nowMilliseconds: EventLoop.shared.nowMilliseconds)
    }
}

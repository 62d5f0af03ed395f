import Loop

/// What this process learned from PostgreSQL in the last second about seats that are not free.
///
/// When sales open, thousands of requests ask for the same few seats. Once the database has said
/// they are taken, the next requests for them are answered 409 from here, without a statement:
/// only refusals come from this memory, every success is still the database's decision. The
/// memory is short (a second) and this process forgets an event's entries as soon as it frees any
/// of its seats, so a seat freed elsewhere is refused here for at most a second. (The seat-status
/// snapshot kept by LISTEN/NOTIFY will replace this with exact knowledge.)
@LoopActor
final class RecentlyTaken {
    struct Filter: Hashable {
        let quantity: Int
        let category: String?
        let sectionID: Int?
        let adjacent: Bool
    }

    private struct EventMemory {
        var seatsUntil: [Int: UInt64] = [:]
        var noneFitUntil: [Filter: UInt64] = [:]
    }

    private var events: [Int: EventMemory] = [:]
    private let memoryMilliseconds: UInt64
    private let now: @LoopActor () -> UInt64

    init(memoryMilliseconds: UInt64 = 1_000, now: @escaping @LoopActor () -> UInt64 = { EventLoop.shared.nowMilliseconds }) {
        self.memoryMilliseconds = memoryMilliseconds
        self.now = now
    }

    func markTaken(eventID: Int, seatIDs: [Int]) {
        let current = now()
        let until = current + memoryMilliseconds
        // Mutated in place: a copy taken out of `events` would copy the whole dictionary.
        if let remembered = events[eventID]?.seatsUntil, remembered.count > 50_000 {
            events[eventID]?.seatsUntil = remembered.filter { $0.value > current }
        }
        for seat in seatIDs { events[eventID, default: EventMemory()].seatsUntil[seat] = until }
    }

    /// The seats, when every one of them is known to be taken (then the refusal names exactly
    /// the seats that are not free); nil when the database must be asked.
    func allTaken(eventID: Int, seatIDs: [Int]) -> [Int]? {
        guard let memory = events[eventID], !seatIDs.isEmpty else { return nil }
        let current = now()
        for seat in seatIDs {
            guard let until = memory.seatsUntil[seat], until > current else { return nil }
        }
        return seatIDs
    }

    /// Whether any of the seats is known to be taken (best available skips such candidates).
    func anyTaken(eventID: Int, seatIDs: [Int]) -> Bool {
        guard let memory = events[eventID] else { return false }
        let current = now()
        return seatIDs.contains { (memory.seatsUntil[$0] ?? 0) > current }
    }

    func markNoneFit(eventID: Int, _ filter: Filter) {
        events[eventID, default: EventMemory()].noneFitUntil[filter] = now() + memoryMilliseconds
    }

    func noneFit(eventID: Int, _ filter: Filter) -> Bool {
        guard let until = events[eventID]?.noneFitUntil[filter] else { return false }
        return until > now()
    }

    /// This process freed seats of the event: what it remembered may be wrong now.
    func forget(eventID: Int) {
        events.removeValue(forKey: eventID)
    }
}

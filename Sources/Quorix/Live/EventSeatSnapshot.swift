import Loop

/// One event's seat status in memory, kept current by the announcements of every change.
///
/// Each seat carries the version its last change gave it, and the event's version is their sum,
/// as in the database. Applying a change only when it is newer than what the seat has makes
/// applying idempotent and order-free per seat: a reload that already saw a change, and the
/// change's announcement arriving after it, end in the same state, so every process reaches the
/// database's version for the same commits.
@LoopActor
final class EventSeatSnapshot {
    let eventID: Int
    let index: SeatMapIndex
    private var slots: [Int: Int] = [:]
    private(set) var seatIDs: [Int] = []
    private(set) var states: [SeatState] = []
    private var versions: [Int64] = []
    private var expiries: [Int64] = []
    private(set) var version: Int64 = 0
    private(set) var freeCount = 0
    /// Bumped whenever a seat becomes free: a "nothing fits" learned earlier may be stale.
    private(set) var freeGeneration = 0
    /// No hold of a held seat expires before this (kept conservative: at or before the truth).
    private var earliestHeldExpiry: Int64 = .max
    private var earliestRecomputedAt: Int64 = 0
    /// False while the process is not listening: it may have missed changes.
    var isCurrent = false
    var lastUsedMilliseconds: UInt64 = 0

    /// Applied changes, for `Last-Event-ID` replay; the oldest go first.
    private(set) var history = ReplayHistory(capacity: LiveSeats.replayLimit)
    /// Stream clients of this event.
    var subscribers: [ObjectIdentifier: StreamSubscriber] = [:]
    /// Frames for the subscribers, written at the next flush.
    var pendingFrames: [(sequence: Int, bytes: [UInt8])] = []
    private(set) var sequence = 0
    /// Seats the database just said are taken (a hold won them, or a refusal named them) before
    /// their announcement arrived, with the seat's version then: for refusals only, until the
    /// seat's version moves on (the announcement, or another change) or a second passes.
    private var reportedTaken: [Int: (version: Int64, atMilliseconds: UInt64)] = [:]
    /// Reports outlived by their announcement leave in `apply`; ones that never see it (a seat the
    /// database reported taken, unchanged since) are swept when the table reaches this size, which
    /// doubles when a sweep keeps most of them, so a sweep costs each report O(1) on average.
    private var reportSweepAt = 10_000
    /// Best-available requests for which the database found nothing, with `freeGeneration` then.
    private var noneFit: [BestAvailableFilter: (generation: Int, atMilliseconds: UInt64)] = [:]

    init(eventID: Int, index: SeatMapIndex) {
        self.eventID = eventID
        self.index = index
    }

    /// Applies changes newer than what each seat has; returns those applied.
    @discardableResult
    func apply(_ changes: [SeatChange]) -> [SeatChange] {
        var applied: [SeatChange] = []
        for change in changes {
            let slot: Int
            if let known = slots[change.seatID] {
                slot = known
            } else {
                slot = seatIDs.count
                slots[change.seatID] = slot
                seatIDs.append(change.seatID)
                states.append(.free)
                versions.append(0)
                expiries.append(0)
                freeCount += 1
            }
            guard change.version > versions[slot] else { continue }
            // The report has served its turn once the seat's version moves on.
            if !reportedTaken.isEmpty { reportedTaken.removeValue(forKey: change.seatID) }
            version += change.version - versions[slot]
            versions[slot] = change.version
            if states[slot] == .free { freeCount -= 1 }
            if change.state == .free {
                freeCount += 1
                freeGeneration += 1
            }
            states[slot] = change.state
            let expiry = change.state == .held ? (change.expiresAtMilliseconds ?? 0) : 0
            expiries[slot] = expiry
            if change.state == .held { earliestHeldExpiry = min(earliestHeldExpiry, expiry) }
            applied.append(change)
        }
        return applied
    }

    func version(ofSeat seatID: Int) -> Int64 {
        slots[seatID].map { versions[$0] } ?? 0
    }

    /// Whether every seat of `mark` changed since it was taken.
    func shows(_ mark: LiveSeats.SeatMark) -> Bool {
        mark.versions.allSatisfy { version(ofSeat: $0.seatID) > $0.version }
    }

    /// Every seat's status, for `GET .../seats`.
    func statuses() -> [(seatID: Int, status: String)] {
        seatIDs.indices.map { (seatIDs[$0], states[$0].name) }
    }

    /// The seats among `seatIDs` known not to be free now: booked, blocked, or held by a hold
    /// that stands past `margin`. A seat of an expired hold counts as free (the hold statement
    /// takes it), and so does a seat this snapshot does not know.
    func takenSeats(_ seatIDs: [Int], nowMilliseconds: Int64, loopMilliseconds: UInt64 = 0, marginMilliseconds: Int64 = 100) -> [Int] {
        seatIDs.filter { seat in
            guard let slot = slots[seat] else { return false }
            if let reported = reportedTaken[seat], reported.version == versions[slot], loopMilliseconds - reported.atMilliseconds < 1_000 {
                return true
            }
            switch states[slot] {
            case .free: return false
            case .booked, .blocked: return true
            case .held: return expiries[slot] > nowMilliseconds + marginMilliseconds
            }
        }
    }

    /// The database said these seats are taken (see `reportedTaken`).
    func reportTaken(_ seatIDs: [Int], loopMilliseconds: UInt64) {
        if reportedTaken.count >= reportSweepAt {
            reportedTaken = reportedTaken.filter { loopMilliseconds - $0.value.atMilliseconds < 1_000 }
            reportSweepAt = max(10_000, 2 * reportedTaken.count)
        }
        for seat in seatIDs { reportedTaken[seat] = (version(ofSeat: seat), loopMilliseconds) }
    }

    /// True when fewer than `quantity` seats can be had at all: every seat is taken except
    /// fewer than `quantity` free ones, and no hold has expired.
    /// Free seats the database has since reported taken also count as taken (a flash crowd's
    /// winners, before their announcements arrive).
    func cannotFit(quantity: Int, nowMilliseconds: Int64, loopMilliseconds: UInt64 = 0) -> Bool {
        guard isCurrent, freeCount - min(reportedTaken.count, freeCount) < quantity else { return false }
        if freeCount >= quantity && reportedFreeSeats(loopMilliseconds: loopMilliseconds) <= freeCount - quantity { return false }
        if nowMilliseconds < earliestHeldExpiry { return true }
        // Some hold may have expired: look again, at most every 100 ms (the sweeper frees such
        // seats within its lag, and its announcements move the bound on).
        if nowMilliseconds - earliestRecomputedAt >= 100 {
            earliestRecomputedAt = nowMilliseconds
            var earliest = Int64.max
            for slot in states.indices where states[slot] == .held { earliest = min(earliest, expiries[slot]) }
            earliestHeldExpiry = earliest
            return nowMilliseconds < earliest
        }
        return false
    }

    /// Seats the snapshot shows free that the database reported taken within the last second.
    private func reportedFreeSeats(loopMilliseconds: UInt64) -> Int {
        reportedTaken.reduce(0) { count, entry in
            guard let slot = slots[entry.key], states[slot] == .free, versions[slot] == entry.value.version,
                  loopMilliseconds - entry.value.atMilliseconds < 1_000 else { return count }
            return count + 1
        }
    }

    func rememberNoneFit(_ filter: BestAvailableFilter, nowMilliseconds: UInt64) {
        noneFit[filter] = (freeGeneration, nowMilliseconds)
    }

    /// The database found nothing for `filter` less than a second ago and no seat was freed
    /// since (a second: holds that expire make seats available without any announcement).
    func knownNoneFit(_ filter: BestAvailableFilter, nowMilliseconds: UInt64) -> Bool {
        guard isCurrent, let known = noneFit[filter] else { return false }
        return known.generation == freeGeneration && nowMilliseconds - known.atMilliseconds < 1_000
    }

    /// Records applied changes (and offers) for replay and for the stream's subscribers.
    func record(_ entry: ReplayHistory.Entry.Content, previousVersion: Int64) {
        sequence += 1
        let entry = ReplayHistory.Entry(sequence: sequence, previousVersion: previousVersion, version: version, content: entry)
        history.append(entry)
        if !subscribers.isEmpty { pendingFrames.append((sequence, SeatStream.frame(entry, index: index))) }
    }
}

/// What `GET .../stream` may replay: the last `capacity` entries.
struct ReplayHistory {
    struct Entry {
        enum Content {
            case seats([(seatID: Int, state: SeatState)])
            case offer(entryID: Int, expiresAt: String)
        }

        let sequence: Int
        let previousVersion: Int64
        let version: Int64
        let content: Content
    }

    private var ring: [Entry] = []
    private var start = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    mutating func append(_ entry: Entry) {
        if ring.count < capacity {
            ring.append(entry)
        } else {
            ring[start] = entry
            start = (start + 1) % capacity
        }
    }

    var entries: [Entry] { Array(ring[start...] + ring[..<start]) }

    /// The entries after `version`, or nil when the history does not reach back that far (or
    /// never saw that version): then only a full snapshot will do.
    func since(_ version: Int64, current: Int64) -> [Entry]? {
        if version == current { return [] }
        guard version < current else { return nil }
        let ordered = entries
        guard let oldest = ordered.first, oldest.previousVersion <= version else { return nil }
        return ordered.filter { $0.version > version || ($0.version == version && $0.previousVersion == version) }
    }
}

/// What best available asked for (the same request finds the same nothing).
struct BestAvailableFilter: Hashable {
    let quantity: Int
    let category: String?
    let sectionID: Int?
    let adjacent: Bool
}

import Loop
import QuorixTestSupport
import Testing
@testable import Quorix

/// The pure parts of live seat status: announcements, the snapshot's arithmetic, replay.
@Suite struct LiveSeatsUnitTests {
    init() {
        TestLoop.start()
    }

    static let index = SeatMapIndex(
        seatmapID: 1, seatIDsByLabel: ["A-1-1": 10, "A-1-2": 11, "A-1-3": 12],
        labelsBySeatID: [10: "A-1-1", 11: "A-1-2", 12: "A-1-3"], sectionKeys: ["A"], sectionIDsByKey: ["A": 1],
        lastOrdinalByRow: [1: 2], categoriesInUse: ["standard"])

    @Test func announcementsParse() {
        #expect(SeatAnnouncement.parse("7|10,h,101,1767225600000;11,b,102") == .seats(eventID: 7, changes: [
            SeatChange(seatID: 10, state: .held, version: 101, expiresAtMilliseconds: 1_767_225_600_000),
            SeatChange(seatID: 11, state: .booked, version: 102),
        ]))
        #expect(SeatAnnouncement.parse("7|12,x,5;13,f,6") == .seats(eventID: 7, changes: [
            SeatChange(seatID: 12, state: .blocked, version: 5), SeatChange(seatID: 13, state: .free, version: 6),
        ]))
        #expect(SeatAnnouncement.parse("7|offer|42|2026-12-02T10:00:00.000Z") == .offer(eventID: 7, entryID: 42, expiresAt: "2026-12-02T10:00:00.000Z"))
        #expect(SeatAnnouncement.eventID(of: "123|1,f,2") == 123)
        for bad in ["", "7", "x|1,f,2", "7|", "7|1,q,2", "7|1,f", "7|1,f,2,3,4", "7|1,f,-2", "7|offer|x|t", "7|offer|1", "99999999999999999999|1,f,1"] {
            #expect(SeatAnnouncement.parse(bad) == nil, "\(bad) should not parse")
        }
        #expect(SeatAnnouncement.eventID(of: "nope") == nil)
    }

    @Test @LoopActor
    func theVersionIsTheSumOfSeatVersionsAndApplyingIsIdempotent() {
        let snapshot = EventSeatSnapshot(eventID: 1, index: Self.index)
        snapshot.apply([SeatChange(seatID: 10, state: .free, version: 0), SeatChange(seatID: 11, state: .free, version: 0),
                        SeatChange(seatID: 12, state: .free, version: 3)])
        #expect(snapshot.version == 3 && snapshot.freeCount == 3)
        let held = [SeatChange(seatID: 10, state: .held, version: 7, expiresAtMilliseconds: 9_000),
                    SeatChange(seatID: 11, state: .held, version: 8, expiresAtMilliseconds: 9_000)]
        #expect(snapshot.apply(held).count == 2)
        #expect(snapshot.version == 18 && snapshot.freeCount == 1)
        #expect(snapshot.apply(held).isEmpty, "an announcement seen again (after a reload) changes nothing")
        // An older change arriving after a newer one (a reload saw the newer) is ignored.
        #expect(snapshot.apply([SeatChange(seatID: 10, state: .free, version: 5)]).isEmpty)
        #expect(snapshot.version == 18)
        snapshot.apply([SeatChange(seatID: 10, state: .booked, version: 20)])
        #expect(snapshot.version == 31)
        #expect(snapshot.statuses().map(\.status) == ["booked", "held", "free"])
    }

    /// A release's mark comes from the versions its statement set: the hold's announcement, still
    /// on its way when the release commits, must not settle it.
    @Test @LoopActor
    func aMarkFromTheDatabaseVersionsIsNotMetByAnOlderChange() throws {
        let snapshot = EventSeatSnapshot(eventID: 1, index: Self.index)
        snapshot.apply([SeatChange(seatID: 10, state: .free, version: 4), SeatChange(seatID: 11, state: .free, version: 4)])
        let release = try #require(LiveSeats.SeatMark.after(
            eventID: 1, changed: [SeatVersion(seatID: 10, version: 9), SeatVersion(seatID: 11, version: 10)]))
        // What a mark read from the snapshot now would have been: met by the hold's announcement.
        let readBack = LiveSeats.SeatMark(eventID: 1, versions: [(10, 4), (11, 4)])
        snapshot.apply([SeatChange(seatID: 10, state: .held, version: 6, expiresAtMilliseconds: 9_000),
                        SeatChange(seatID: 11, state: .held, version: 7, expiresAtMilliseconds: 9_000)])
        #expect(snapshot.shows(readBack))
        #expect(!snapshot.shows(release))
        snapshot.apply([SeatChange(seatID: 10, state: .free, version: 9)])
        #expect(!snapshot.shows(release), "one seat of two")
        snapshot.apply([SeatChange(seatID: 11, state: .held, version: 12, expiresAtMilliseconds: 9_000)])
        #expect(snapshot.shows(release), "a later change (a waitlist offer) shows it too")
        #expect(LiveSeats.SeatMark.after(eventID: 1, changed: []) == nil)
    }

    @Test @LoopActor
    func takenMeansBookedBlockedOrHeldByAStandingHold() {
        let snapshot = EventSeatSnapshot(eventID: 1, index: Self.index)
        snapshot.isCurrent = true
        snapshot.apply([SeatChange(seatID: 10, state: .held, version: 1, expiresAtMilliseconds: 10_000),
                        SeatChange(seatID: 11, state: .blocked, version: 2), SeatChange(seatID: 12, state: .free, version: 3)])
        #expect(snapshot.takenSeats([10, 11, 12, 99], nowMilliseconds: 5_000) == [10, 11], "unknown seats are the database's to judge")
        #expect(snapshot.takenSeats([10, 11], nowMilliseconds: 9_950) == [11], "a hold about to expire is not trusted")
        #expect(snapshot.takenSeats([10], nowMilliseconds: 20_000) == [], "an expired hold's seat can be taken")
        #expect(!snapshot.cannotFit(quantity: 1, nowMilliseconds: 5_000))
        #expect(snapshot.cannotFit(quantity: 2, nowMilliseconds: 5_000), "one free seat, the hold stands")
        #expect(!snapshot.cannotFit(quantity: 2, nowMilliseconds: 10_001), "the hold expired: its seat may be had")
        let filter = BestAvailableFilter(quantity: 1, category: nil, sectionID: nil, adjacent: true)
        snapshot.rememberNoneFit(filter, nowMilliseconds: 1_000)
        #expect(snapshot.knownNoneFit(filter, nowMilliseconds: 1_500))
        #expect(!snapshot.knownNoneFit(filter, nowMilliseconds: 2_000), "remembered for under a second")
        snapshot.rememberNoneFit(filter, nowMilliseconds: 3_000)
        snapshot.apply([SeatChange(seatID: 11, state: .free, version: 9)])
        #expect(!snapshot.knownNoneFit(filter, nowMilliseconds: 3_001), "a freed seat forgets it")
        snapshot.isCurrent = false
        #expect(!snapshot.cannotFit(quantity: 5, nowMilliseconds: 5_000), "a snapshot that may be stale knows nothing")
    }

    @Test @LoopActor
    func seatsTheDatabaseReportedTakenAreRefusedUntilTheirVersionMovesOrASecondPasses() {
        let snapshot = EventSeatSnapshot(eventID: 1, index: Self.index)
        snapshot.apply([SeatChange(seatID: 10, state: .free, version: 1), SeatChange(seatID: 11, state: .free, version: 2)])
        snapshot.reportTaken([10, 11], loopMilliseconds: 1_000)
        #expect(snapshot.takenSeats([10, 11], nowMilliseconds: 0, loopMilliseconds: 1_500) == [10, 11], "before the announcement")
        #expect(snapshot.takenSeats([10], nowMilliseconds: 0, loopMilliseconds: 2_000) == [], "a second at most")
        // The announcement (held) and then a release (free) move the version: the report is spent.
        snapshot.apply([SeatChange(seatID: 11, state: .held, version: 5, expiresAtMilliseconds: 10_000)])
        #expect(snapshot.takenSeats([11], nowMilliseconds: 0, loopMilliseconds: 1_100) == [11])
        snapshot.apply([SeatChange(seatID: 11, state: .free, version: 6)])
        #expect(snapshot.takenSeats([11], nowMilliseconds: 0, loopMilliseconds: 1_200) == [], "freed after the report")
    }

    @Test @LoopActor
    func seatsReportedTakenCountAgainstWhatCanFit() {
        let snapshot = EventSeatSnapshot(eventID: 1, index: Self.index)
        snapshot.isCurrent = true
        snapshot.apply([SeatChange(seatID: 10, state: .free, version: 1), SeatChange(seatID: 11, state: .free, version: 2),
                        SeatChange(seatID: 12, state: .free, version: 3)])
        #expect(!snapshot.cannotFit(quantity: 2, nowMilliseconds: 0, loopMilliseconds: 1_000))
        snapshot.reportTaken([10], loopMilliseconds: 1_000)
        #expect(!snapshot.cannotFit(quantity: 2, nowMilliseconds: 0, loopMilliseconds: 1_000), "two seats are still free")
        snapshot.reportTaken([11], loopMilliseconds: 1_000)
        #expect(snapshot.cannotFit(quantity: 2, nowMilliseconds: 0, loopMilliseconds: 1_100), "one free seat is left")
        #expect(!snapshot.cannotFit(quantity: 1, nowMilliseconds: 0, loopMilliseconds: 1_100))
        #expect(!snapshot.cannotFit(quantity: 2, nowMilliseconds: 0, loopMilliseconds: 2_100), "reports last a second")
    }

    /// Holds noted for an event nobody reads: the list keeps what is still within the settle
    /// window and sheds the rest as it grows, instead of one entry per hold for ever.
    @Test @LoopActor
    func changesNotedForAnEventNobodyReadsStayBounded() {
        var pending: [Int: [LiveSeats.PendingChange]] = [:]
        for millisecond in 0..<30_000 {
            LiveSeats.append(LiveSeats.PendingChange(mark: nil, notedAt: UInt64(millisecond)), to: &pending, eventID: 7)
        }
        let kept = pending[7] ?? []
        #expect(kept.count <= 512, "\(kept.count) changes kept")
        // Every change of the last settle window is still there, in order.
        let window = Int(LiveSeats.settleMilliseconds)
        #expect(Array(kept.suffix(window).map(\.notedAt)) == (30_000 - window..<30_000).map(UInt64.init))
    }

    @Test func replayReachesBackOnlyAsFarAsItKeeps() {
        var history = ReplayHistory(capacity: 3)
        for (sequence, version) in [(1, 10), (2, 20), (3, 30), (4, 40)] {
            history.append(ReplayHistory.Entry(sequence: sequence, previousVersion: Int64(version - 10), version: Int64(version), content: .seats([])))
        }
        #expect(history.entries.map(\.version) == [20, 30, 40], "the oldest went")
        #expect(history.since(40, current: 40)?.isEmpty == true)
        #expect(history.since(20, current: 40)?.map(\.version) == [30, 40])
        #expect(history.since(10, current: 40)?.map(\.version) == [20, 30, 40], "10 is where the oldest kept entry starts")
        #expect(history.since(5, current: 40) == nil, "too old: a snapshot")
        #expect(history.since(50, current: 40) == nil, "ahead of this process: a snapshot")
    }

    @Test @LoopActor
    func framesAreServerSentEvents() {
        let seats = ReplayHistory.Entry(sequence: 1, previousVersion: 3, version: 9, content: .seats([(10, .held), (11, .free)]))
        #expect(String(decoding: SeatStream.frame(seats, index: Self.index), as: UTF8.self)
            == "id: 9\nevent: seats\ndata: {\"version\":9,\"changes\":[{\"seat\":\"A-1-1\",\"status\":\"held\"},{\"seat\":\"A-1-2\",\"status\":\"free\"}]}\n\n")
        let offer = ReplayHistory.Entry(sequence: 2, previousVersion: 9, version: 9, content: .offer(entryID: 4, expiresAt: "2026-12-02T10:00:00.000Z"))
        #expect(String(decoding: SeatStream.frame(offer, index: Self.index), as: UTF8.self)
            == "id: 9\nevent: waitlist_offer\ndata: {\"entry_id\":4,\"expires_at\":\"2026-12-02T10:00:00.000Z\"}\n\n")
    }
}

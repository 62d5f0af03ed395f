import Loop
import QuorixTestSupport
import Testing
@testable import Quorix

/// The pure parts of best available.
@Suite struct BestAvailableTests {
    init() {
        TestLoop.start()
    }

    private func seat(_ id: Int, row: Int, rank: Int, ordinal: Int) -> HoldStore.OpenSeat {
        HoldStore.OpenSeat(seatID: id, rowID: row, rowRank: rank, ordinal: ordinal)
    }

    @Test func runsBreakAtGapsAndRowChanges() {
        let seats = [
            seat(1, row: 10, rank: 0, ordinal: 0), seat(2, row: 10, rank: 0, ordinal: 1), seat(4, row: 10, rank: 0, ordinal: 3),
            seat(5, row: 11, rank: 0, ordinal: 4), seat(6, row: 11, rank: 0, ordinal: 5),
        ]
        #expect(BestAvailable.runs(seats) == [
            .init(rowID: 10, rowRank: 0, firstOrdinal: 0, seatIDs: [1, 2]),
            .init(rowID: 10, rowRank: 0, firstOrdinal: 3, seatIDs: [4]),
            .init(rowID: 11, rowRank: 0, firstOrdinal: 4, seatIDs: [5, 6]),
        ])
        #expect(BestAvailable.runs([]).isEmpty)
    }

    @Test func windowsPreferTheFrontRankThenTheMiddleOfTheRow() {
        // Row 20 (rank 0) has ordinals 0...9; row 21 (rank 1) likewise.
        let index = SeatMapIndex(
            seatmapID: 1, seatIDsByLabel: [:], labelsBySeatID: [:], sectionKeys: [], sectionIDsByKey: [:],
            lastOrdinalByRow: [20: 9, 21: 9], categoriesInUse: [])
        let front = (0...9).map { seat(100 + $0, row: 20, rank: 0, ordinal: $0) }
        let back = (0...9).map { seat(200 + $0, row: 21, rank: 1, ordinal: $0) }
        let windows = BestAvailable.windows(BestAvailable.runs(back + front), quantity: 2, index: index)
        #expect(windows.first == [104, 105], "the middle pair of the front row")
        #expect(windows.last == [204, 205])
        // A run shorter than the quantity offers nothing.
        #expect(BestAvailable.windows(BestAvailable.runs(Array(front.prefix(1))), quantity: 2, index: index).isEmpty)
    }

    @Test func aRefusalNamesItsSeats() {
        #expect(HoldStore.refusedSeatIDs("seats_unavailable:12,13") == [12, 13])
        #expect(HoldStore.refusedSeatIDs("seats_unavailable:") == [])
        #expect(HoldStore.refusedSeatIDs("seats_unavailable") == [])
    }
}

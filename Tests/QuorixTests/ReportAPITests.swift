import Foundation
import PG
import Quorix
import QuorixTestSupport
import Testing

@Suite struct ReportAPITests {
    /// `{status: n}` of a report map, checking it names all four statuses.
    func statusMap(_ value: JSONValue?, sourceLocation: SourceLocation = #_sourceLocation) -> [String: Int] {
        let members = value?.catalogMembers ?? []
        #expect(members.map(\.0) == ["free", "held", "booked", "blocked"], "\(members.map(\.0))", sourceLocation: sourceLocation)
        return Dictionary(members.map { ($0.0, $0.1.catalogInt ?? -1) }, uniquingKeysWith: { first, _ in first })
    }

    @Test func theReportAddsUpWhatHappenedToTheEvent() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        try sale.block(id, ["BOXL-A-1", "BOXL-A-2", "BOXL-A-3"])
        let first = try sale.book(id, seats: ["STALLS-A-1", "STALLS-A-2"])
        #expect(try sale.release(try sale.requireHold(id, seats: ["STALLS-A-3"]).token).status == 204)
        let expiring = try sale.requireHold(id, seats: ["STALLS-A-4", "STALLS-A-5"], ttl: 1)
        _ = try sale.requireHold(id, seats: ["STALLS-A-6"])
        let second = try sale.book(id, seats: ["STALLS-B-1", "STALLS-B-2"])
        #expect(try sale.cancel(second.id, seats: ["STALLS-B-1"]).status == 200)
        try await sale.waitUntilExpired(id, expiring.id)

        let response = try sale.send("GET", "/v1/events/\(id)/report", key: sale.organizer)
        #expect(response.status == 200, "\(response)")
        #expect(response.header("Access-Control-Allow-Origin") == nil, "a report is not public")
        let report = try response.json()
        #expect(report["event_id"]?.catalogInt == id)
        let total = SampleMaps.theatre.seats
        // The expired hold counts as expired whether or not the sweeper got to it; its seats are
        // held until it does, so wait for the release to compare seat counts exactly.
        let deadline = ContinuousClock.now + .seconds(5)
        var counts = statusMap(report["counts"])
        var current = report
        while counts["held"] != 1, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            current = try sale.send("GET", "/v1/events/\(id)/report", key: sale.organizer).json()
            counts = statusMap(current["counts"])
        }
        #expect(counts == ["free": total - 7, "held": 1, "booked": 3, "blocked": 3])
        // Every breakdown adds up to the counts.
        let sections = current["by_section"]?.catalogMembers ?? []
        #expect(sections.map(\.0) == ["STALLS", "CIRCLE", "BOXL", "BOXR"])
        let stalls = statusMap(current["by_section"]?["STALLS"])
        #expect(stalls["booked"] == 3 && stalls["held"] == 1 && stalls["blocked"] == 0)
        #expect(statusMap(current["by_section"]?["BOXL"]) == ["free": 5, "held": 0, "booked": 0, "blocked": 3])
        for breakdown in ["by_section", "by_category"] {
            var sum: [String: Int] = [:]
            for (_, map) in current[breakdown]?.catalogMembers ?? [] {
                for (status, n) in statusMap(map) { sum[status, default: 0] += n }
            }
            #expect(sum == counts, "\(breakdown) adds up to \(sum)")
        }
        let categories = (current["by_category"]?.catalogMembers ?? []).map(\.0)
        #expect(categories == SalePrices.theatre.keys.sorted())
        // Revenue: the booked seats still booked, at the event's prices.
        let priced = try await sale.categories(["STALLS-A-1", "STALLS-A-2", "STALLS-B-2"])
        let revenue = priced.values.map { SalePrices.theatre[$0] ?? 0 }.reduce(0, +)
        #expect(current["revenue_cents"]?.catalogInt == revenue)
        #expect(revenue > first.totalCents && first.totalCents > 0)
        let holds = current["holds"]
        #expect(holds?["created"]?.catalogInt == 5)
        #expect(holds?["confirmed"]?.catalogInt == 2)
        #expect(holds?["released"]?.catalogInt == 1)
        #expect(holds?["expired"]?.catalogInt == 1)
        #expect(holds?["active"]?.catalogInt == 1)
        if case .number(let conversion)? = current["conversion"] {
            #expect(abs(conversion.value - 0.4) < 1e-9, "conversion \(conversion.value)")
        } else {
            Issue.record("conversion is not a number: \(String(describing: current["conversion"]))")
        }
        let waitlist = current["waitlist"]?.catalogMembers ?? []
        #expect(waitlist.map(\.0) == ["waiting", "offered", "converted", "expired", "left", "offers_made"])
        #expect(waitlist.allSatisfy { $0.1.catalogInt == 0 })
    }

    @Test func onlyTheOwnerReadsTheReport() async throws {
        let sale = try await saleServer.get()
        let id = try sale.newEvent()
        expectError(try sale.send("GET", "/v1/events/\(id)/report", key: nil), status: 401)
        expectError(try sale.send("GET", "/v1/events/\(id)/report", key: sale.client), status: 403)
        expectError(try sale.send("GET", "/v1/events/\(id)/report", key: sale.otherOrganizer), status: 403)
        expectError(try sale.send("GET", "/v1/events/999999/report", key: sale.organizer), status: 404)
        let fresh = try sale.send("GET", "/v1/events/\(id)/report", key: sale.organizer).json()
        if case .number(let conversion)? = fresh["conversion"] { #expect(conversion.value == 0) } else { Issue.record("no conversion") }
        #expect(statusMap(fresh["counts"])["free"] == SampleMaps.theatre.seats)
    }
}

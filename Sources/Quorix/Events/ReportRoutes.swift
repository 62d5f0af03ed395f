import HTTP1
import Loop
import PG

/// `GET /v1/events/{id}/report` (the event's owner): seats by status, section and category,
/// revenue, holds and their conversion, the waitlist. Read in one statement, so every number
/// comes from one snapshot and the counts add up.
@LoopActor
enum ReportRoutes {

    static func register(in app: QuorixApp) {
        app.add("GET", "/v1/events/{id}/report", access: .roles([.organizer])) { [unowned app] context in
            let event = try await EventRoutes.ownedEvent(context, app)
            let index = try await EventRoutes.seatMapIndex(for: event, app)
            let rows = try await app.pool.query("""
                SELECT 'seats' AS kind, sec.key AS section, sec.position, es.category, es.status, count(*)::bigint AS n, 0::bigint AS extra
                FROM event_seats es JOIN sections sec ON sec.id = es.section_id
                WHERE es.event_id = \(event.id) GROUP BY sec.key, sec.position, es.category, es.status
                UNION ALL
                SELECT 'revenue', NULL, NULL, NULL, NULL, 0, coalesce(sum(price_cents), 0)::bigint
                FROM seat_bookings WHERE event_id = \(event.id) AND cancelled_at IS NULL
                UNION ALL
                SELECT 'holds', NULL, NULL, NULL, held.status, count(*)::bigint, count(*) FILTER (WHERE held.waitlist_entry_id IS NOT NULL)::bigint
                FROM (SELECT CASE WHEN status = 'active' AND expires_at <= now() THEN 'expired' ELSE status END AS status, waitlist_entry_id
                      FROM holds WHERE event_id = \(event.id)) held
                GROUP BY held.status
                UNION ALL
                SELECT 'waitlist', NULL, NULL, NULL, status, count(*)::bigint, 0 FROM waitlist_entries WHERE event_id = \(event.id) GROUP BY status
                """)
            return .json(try EventReport(rows: rows.rows, categories: index.categoriesInUse).json(eventID: event.id))
        }
    }
}

/// The report's numbers, filled from the statement's rows (kind, section, category, status, n).
struct EventReport {
    static let statuses = ["free", "held", "booked", "blocked"]
    var counts: [String: Int] = [:]
    var sections: [(key: String, position: Int, counts: [String: Int])] = []
    var categories: [String: [String: Int]] = [:]
    var revenueCents = 0
    var holds: [String: Int] = [:]
    var offersMade = 0
    var waitlist: [String: Int] = [:]

    init(rows: [PGRow], categories inUse: Set<String>) throws {
        for category in inUse { categories[category] = [:] }
        for row in rows {
            let n = try row.int("n")
            switch try row.string("kind") {
            case "seats":
                let status = try row.string("status")
                let section = try row.string("section")
                counts[status, default: 0] += n
                categories[try row.string("category"), default: [:]][status, default: 0] += n
                if let at = sections.firstIndex(where: { $0.key == section }) {
                    sections[at].counts[status, default: 0] += n
                } else {
                    sections.append((section, try row.int("position"), [status: n]))
                }
            case "revenue":
                revenueCents = try row.int("extra")
            case "holds":
                holds[try row.string("status"), default: 0] += n
                offersMade += try row.int("extra")
            case "waitlist":
                waitlist[try row.string("status"), default: 0] += n
            default:
                break
            }
        }
        sections.sort { $0.position < $1.position }
    }

    /// A map of every status, zeros included.
    static func statusMap(_ counts: [String: Int], _ statuses: [String] = EventReport.statuses) -> JSONValue {
        .object(statuses.map { ($0, .int(counts[$0] ?? 0)) })
    }

    func json(eventID: Int) -> JSONValue {
        let created = holds.values.reduce(0, +)
        let confirmed = holds["confirmed"] ?? 0
        return .object([
            ("event_id", .int(eventID)),
            ("counts", Self.statusMap(counts)),
            ("by_section", .object(sections.map { ($0.key, Self.statusMap($0.counts)) })),
            ("by_category", .object(categories.keys.sorted().map { ($0, Self.statusMap(categories[$0] ?? [:])) })),
            ("revenue_cents", .int(revenueCents)),
            ("holds", .object([
                ("created", .int(created)), ("confirmed", .int(confirmed)), ("released", .int(holds["released"] ?? 0)),
                ("expired", .int(holds["expired"] ?? 0)), ("active", .int(holds["active"] ?? 0)),
            ])),
            ("conversion", .double(created == 0 ? 0 : Double(confirmed) / Double(created))),
            ("waitlist", .object(
                ["waiting", "offered", "converted", "expired", "left"].map { ($0, .int(waitlist[$0] ?? 0)) }
                    + [("offers_made", .int(offersMade))])),
        ])
    }
}

public import Loop
public import PG

/// What the server keeps in memory about a stored seat map (immutable once stored): labels to
/// seat ids and back, section keys and categories used. Holds and seat status resolve labels
/// here instead of joining `seats` on every request.
public struct SeatMapIndex: Sendable {
    public let seatmapID: Int
    public let seatIDsByLabel: [String: Int]
    public let labelsBySeatID: [Int: String]
    public let sectionKeys: Set<String>
    public let sectionIDsByKey: [String: Int]
    /// The last ordinal of each row (its seat count − 1): best available aims at the middle.
    public let lastOrdinalByRow: [Int: Int]
    /// Categories that at least one seat has (every one needs a price).
    public let categoriesInUse: Set<String>
    public var seatCount: Int { seatIDsByLabel.count }
}

/// Stores validated seat maps in bulk and reads them back.
@LoopActor
public final class SeatMapStore {
    private let pool: PGPool
    private let indexes = CoalescingCache<Int, SeatMapIndex>(maxAgeMilliseconds: nil)

    public init(pool: PGPool) {
        self.pool = pool
    }

    public struct Stored: Sendable {
        public let id: Int
        public let name: String
        public let seatCount: Int
        public let sections: [(key: String, label: String, seatCount: Int)]
    }

    /// The statements that store one document: built off the loop (they carry every seat of the
    /// map as array parameters) and run in one transaction on it.
    public struct InsertPlan: Sendable {
        let seatmap: (name: String, document: String, seatCount: Int)
        let sections: (keys: [String], labels: [String], positions: [Int])
        let rows: (sectionKeys: [String], keys: [String], ranks: [Int])
        let seats: SeatColumns
        let summary: [(key: String, label: String, seatCount: Int)]

        public var seatCount: Int { seatmap.seatCount }
    }

    struct SeatColumns: Sendable {
        var sectionKeys: [String] = []
        var rowKeys: [String] = []
        var keys: [String] = []
        var labels: [String] = []
        var categories: [String] = []
        var xs: [Double] = []
        var ys: [Double] = []
        var ordinals: [Int] = []
        var accessible: [Bool] = []
        var restrictedView: [Bool] = []
        var companion: [Bool] = []
    }

    /// Column arrays for a validated document; pure, and meant to run off the loop.
    public nonisolated static func plan(_ document: SeatMapDocument, json: JSONValue) -> InsertPlan {
        var sectionKeys: [String] = [], sectionLabels: [String] = [], positions: [Int] = []
        var rowSections: [String] = [], rowKeys: [String] = [], ranks: [Int] = []
        var seats = SeatColumns()
        var summary: [(key: String, label: String, seatCount: Int)] = []
        for section in document.sections {
            sectionKeys.append(section.key)
            sectionLabels.append(section.label)
            positions.append(section.position)
            var count = 0
            for row in section.rows {
                rowSections.append(section.key)
                rowKeys.append(row.key)
                ranks.append(row.rank)
                for seat in row.seats {
                    seats.sectionKeys.append(section.key)
                    seats.rowKeys.append(row.key)
                    seats.keys.append(seat.key)
                    seats.labels.append(seat.label)
                    seats.categories.append(seat.category)
                    seats.xs.append(seat.x)
                    seats.ys.append(seat.y)
                    seats.ordinals.append(seat.ordinal)
                    seats.accessible.append(seat.accessible)
                    seats.restrictedView.append(seat.restrictedView)
                    seats.companion.append(seat.companion)
                    count += 1
                }
            }
            summary.append((section.key, section.label, count))
        }
        return InsertPlan(
            seatmap: (document.name, JSONWriter.string(json), document.seatCount),
            sections: (sectionKeys, sectionLabels, positions),
            rows: (rowSections, rowKeys, ranks),
            seats: seats,
            summary: summary)
    }

    /// Stores the whole map in one transaction: nothing is left behind if any statement fails.
    public func store(_ plan: InsertPlan, ownerKeyID: String?) async throws -> Stored {
        let id = try await pool.withTransaction { connection in
            let inserted = try await connection.query("""
                INSERT INTO seatmaps (owner_key_id, name, document, seat_count)
                VALUES (\(ownerKeyID)::uuid, \(plan.seatmap.name), \(plan.seatmap.document)::jsonb, \(plan.seatmap.seatCount))
                RETURNING id
                """)
            let id = try inserted.first.map { try $0.int("id") } ?? 0
            try await connection.query("""
                INSERT INTO sections (seatmap_id, key, label, position)
                SELECT \(id), t.key, t.label, t.position
                FROM unnest(\(plan.sections.keys)::text[], \(plan.sections.labels)::text[], \(plan.sections.positions)::int[])
                    AS t(key, label, position)
                """)
            try await connection.query("""
                INSERT INTO seat_rows (section_id, key, rank)
                SELECT s.id, t.key, t.rank
                FROM unnest(\(plan.rows.sectionKeys)::text[], \(plan.rows.keys)::text[], \(plan.rows.ranks)::int[])
                    AS t(section_key, key, rank)
                JOIN sections s ON s.seatmap_id = \(id) AND s.key = t.section_key
                """)
            let seats = plan.seats
            let stored = try await connection.query("""
                INSERT INTO seats (seatmap_id, section_id, row_id, key, label, category, x, y, ordinal,
                                   accessible, restricted_view, companion)
                SELECT \(id), s.id, r.id, t.key, t.label, t.category, t.x, t.y, t.ordinal,
                       t.accessible, t.restricted_view, t.companion
                FROM unnest(\(seats.sectionKeys)::text[], \(seats.rowKeys)::text[], \(seats.keys)::text[],
                            \(seats.labels)::text[], \(seats.categories)::text[], \(seats.xs)::float8[],
                            \(seats.ys)::float8[], \(seats.ordinals)::int[], \(seats.accessible)::bool[],
                            \(seats.restrictedView)::bool[], \(seats.companion)::bool[])
                    AS t(section_key, row_key, key, label, category, x, y, ordinal, accessible, restricted_view, companion)
                JOIN sections s ON s.seatmap_id = \(id) AND s.key = t.section_key
                JOIN seat_rows r ON r.section_id = s.id AND r.key = t.row_key
                """)
            guard stored.affectedRows == plan.seatmap.seatCount else {
                throw PGError(kind: .decoding, message: "stored \(stored.affectedRows) of \(plan.seatmap.seatCount) seats")
            }
            return id
        }
        return Stored(id: id, name: plan.seatmap.name, seatCount: plan.seatmap.seatCount, sections: plan.summary)
    }

    public struct Summary: Sendable {
        public let id: Int
        public let name: String
        public let seatCount: Int
        public let createdAt: String
    }

    /// Seat maps by id, after `afterID`, at most `limit`.
    public func list(afterID: Int, limit: Int) async throws -> [Summary] {
        let result = try await pool.query("""
            SELECT id, name, seat_count, \(unsafeSQL: SQLTime.rfc3339("created_at")) AS created_at
            FROM seatmaps WHERE id > \(afterID) ORDER BY id LIMIT \(limit)
            """)
        return try result.rows.map { row in
            Summary(id: try row.int("id"), name: try row.string("name"), seatCount: try row.int("seat_count"), createdAt: try row.string("created_at"))
        }
    }

    /// The document as stored, or nil for an unknown id.
    public func document(id: Int) async throws -> (document: JSONValue, seatCount: Int)? {
        let result = try await pool.query("SELECT document::text AS document, seat_count FROM seatmaps WHERE id = \(id)")
        guard let row = result.first else { return nil }
        let document = try JSONParser.parse(Array(try row.string("document").utf8))
        return (document, try row.int("seat_count"))
    }

    /// The map's labels and ids, loaded once per process (seat maps never change).
    public func index(seatmapID: Int) async throws -> SeatMapIndex? {
        try await indexes.value(for: seatmapID) { try await loadIndex(seatmapID: seatmapID) }
    }

    private func loadIndex(seatmapID: Int) async throws -> SeatMapIndex? {
        let result = try await pool.query("""
            SELECT s.id, s.label, s.category, s.row_id, s.ordinal, sec.id AS section_id, sec.key AS section_key
            FROM seats s JOIN sections sec ON sec.id = s.section_id
            WHERE s.seatmap_id = \(seatmapID)
            """)
        if result.isEmpty { return nil }
        var byLabel: [String: Int] = [:]
        var byID: [Int: String] = [:]
        var sections = Set<String>()
        var sectionIDs: [String: Int] = [:]
        var lastOrdinals: [Int: Int] = [:]
        var categories = Set<String>()
        byLabel.reserveCapacity(result.count)
        byID.reserveCapacity(result.count)
        for row in result.rows {
            let id = try row.int("id")
            let label = try row.string("label")
            byLabel[label] = id
            byID[id] = label
            let sectionKey = try row.string("section_key")
            sections.insert(sectionKey)
            sectionIDs[sectionKey] = try row.int("section_id")
            let rowID = try row.int("row_id")
            lastOrdinals[rowID] = max(lastOrdinals[rowID] ?? 0, try row.int("ordinal"))
            categories.insert(try row.string("category"))
        }
        let index = SeatMapIndex(
            seatmapID: seatmapID, seatIDsByLabel: byLabel, labelsBySeatID: byID,
            sectionKeys: sections, sectionIDsByKey: sectionIDs, lastOrdinalByRow: lastOrdinals,
            categoriesInUse: categories)
        return index
    }
}

/// SQL expressions for the API's time format (RFC 3339, UTC, milliseconds).
enum SQLTime {
    static func rfc3339(_ column: String) -> String {
        "to_char(\(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    }
}

import Testing
@testable import Quorix

/// The seat-map format (`SEATMAPS.md`): every rule is rejected with its exact path and a message a
/// person can act on, and its near miss is accepted.
@Suite struct SeatMapValidatorTests {
    /// The example from SEATMAPS.md.
    static let example = #"""
        {
          "name": "Riverside Hall",
          "categories": [
            {"key": "premium", "label": "Premium", "color": "#b3261e"},
            {"key": "standard", "label": "Standard", "color": "#1d4ed8"}
          ],
          "sections": [
            {
              "key": "ORCH", "label": "Orchestra",
              "rows": [
                {"key": "A", "y": 40, "seats": [
                  {"key": "1", "x": 10, "category": "premium", "accessible": true},
                  {"key": "2", "x": 20, "category": "premium"}
                ]},
                {"key": "B", "y": 50, "category": "standard",
                 "range": {"from": 1, "to": 30}, "x0": 10, "dx": 10}
              ]
            }
          ]
        }
        """#

    // MARK: Helpers

    func parse(_ text: String) throws -> JSONValue {
        try JSONParser.parse(Array(text.utf8))
    }

    /// A document with one category per key and the given sections (JSON text of the array's elements).
    func document(sections: String, categories: String = #"{"key": "std"}, {"key": "vip"}"#) throws -> JSONValue {
        try parse(#"{"name": "Hall", "categories": [\#(categories)], "sections": [\#(sections)]}"#)
    }

    /// A document with one section `S` (category `std`) holding the given rows.
    func document(rows: String, sectionExtra: String = "") throws -> JSONValue {
        try document(sections: #"{"key": "S", "category": "std"\#(sectionExtra), "rows": [\#(rows)]}"#)
    }

    func problems(_ json: JSONValue) -> [ValidationProblem] {
        switch SeatMapValidator.validate(json) {
        case .success: []
        case .failure(let failure): failure.problems
        }
    }

    func valid(_ json: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) -> SeatMapDocument? {
        switch SeatMapValidator.validate(json) {
        case .success(let document): return document
        case .failure(let failure):
            Issue.record("expected a valid document, got:\n\(failure)", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// Exactly one problem, at `path`, whose message contains every fragment.
    func expectOnly(
        _ json: JSONValue, at path: String, _ fragments: String..., sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let found = problems(json)
        #expect(found.count == 1, "expected one problem at \(path), got:\n\(found.map(\.description).joined(separator: "\n"))", sourceLocation: sourceLocation)
        guard let problem = found.first else { return }
        #expect(problem.path == path, sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(problem.message.contains(fragment), "\(problem.message) lacks \(fragment)", sourceLocation: sourceLocation)
        }
    }

    func seats(_ row: SeatMapDocument.Row) -> [String] { row.seats.map(\.key) }

    // MARK: The example

    @Test func exampleValidatesWith32Seats() throws {
        guard let map = valid(try parse(Self.example)) else { return }
        #expect(map.name == "Riverside Hall")
        #expect(map.seatCount == 32)
        #expect(map.categories == [
            .init(key: "premium", label: "Premium", color: "#b3261e"),
            .init(key: "standard", label: "Standard", color: "#1d4ed8"),
        ])
        let section = try #require(map.sections.first)
        #expect(section.key == "ORCH" && section.label == "Orchestra" && section.position == 0)
        #expect(section.origin == nil && section.rotation == nil)
        #expect(section.seatCount == 32)
        #expect(section.rows.map(\.key) == ["A", "B"])
        #expect(section.rows.map(\.rank) == [0, 1])

        let a = section.rows[0]
        #expect(a.seats.map(\.label) == ["ORCH-A-1", "ORCH-A-2"])
        #expect(a.seats.map(\.category) == ["premium", "premium"])
        #expect(a.seats.map(\.accessible) == [true, false])
        #expect(a.seats.allSatisfy { $0.y == 40 && !$0.restrictedView && !$0.companion })

        let b = section.rows[1]
        #expect(seats(b) == (1...30).map(String.init))
        #expect(b.seats.map(\.x) == (0..<30).map { 10 + Double($0) * 10 })
        #expect(b.seats.map(\.ordinal) == Array(0..<30))
        #expect(b.seats.allSatisfy { $0.y == 50 && $0.category == "standard" && !$0.accessible })
        #expect(b.seats.last?.label == "ORCH-B-30")
    }

    @Test func aNonObjectIsOneProblemAtTheRoot() throws {
        for text in ["[]", "\"map\"", "12", "null"] {
            expectOnly(try parse(text), at: "", "must be a JSON object")
        }
    }

    // MARK: Name

    @Test func nameIsRequiredNonEmptyAndAtMost200Characters() throws {
        func named(_ name: String) throws -> JSONValue {
            try parse(#"{\#(name)"categories": [{"key": "c"}], "sections": [{"key": "S", "category": "c", "rows": [{"key": "A", "y": 0, "range": {"from": 1, "to": 2}}]}]}"#)
        }
        expectOnly(try named(""), at: "name", "is required")
        expectOnly(try named(#""name": "", "#), at: "name", "must not be empty")
        expectOnly(try named(#""name": "   ", "#), at: "name", "must not be empty")
        expectOnly(try named(#""name": 5, "#), at: "name", "must be a string, not an integer")
        expectOnly(try named(#""name": "\#(String(repeating: "é", count: 201))", "#), at: "name", "at most 200 characters", "201")
        #expect(valid(try named(#""name": "\#(String(repeating: "é", count: 200))", "#))?.name.count == 200)
    }

    // MARK: Categories

    @Test func categoriesAreRequiredAndNonEmpty() throws {
        // The section names a category: with no usable categories, that is not reported as unknown.
        let sections = #""sections": [{"key": "S", "category": "c", "rows": [{"key": "A", "y": 0, "range": {"from": 1, "to": 2}}]}]"#
        expectOnly(try parse(#"{"name": "H", \#(sections)}"#), at: "categories", "is required")
        expectOnly(try parse(#"{"name": "H", "categories": [], \#(sections)}"#), at: "categories", "at least one category")
        expectOnly(try parse(#"{"name": "H", "categories": {}, \#(sections)}"#), at: "categories", "must be an array, not an object")
        #expect(valid(try parse(#"{"name": "H", "categories": [{"key": "c"}], \#(sections)}"#))?.seatCount == 2)
    }

    @Test func categoryFieldsAreChecked() throws {
        let rows = #"{"key": "S", "category": "a", "rows": [{"key": "A", "y": 0, "range": {"from": 1, "to": 2}}]}"#
        expectOnly(try document(sections: rows, categories: #"{"key": "a", "color": "red"}"#), at: "categories[0].color", "#rrggbb", "\"red\"")
        expectOnly(try document(sections: rows, categories: ##"{"key": "a", "color": "#12345g"}"##), at: "categories[0].color", "#rrggbb")
        expectOnly(try document(sections: rows, categories: ##"{"key": "a", "color": "#1234567"}"##), at: "categories[0].color", "#rrggbb")
        expectOnly(try document(sections: rows, categories: #"{"key": "a", "label": ""}"#), at: "categories[0].label", "must not be empty")
        expectOnly(try document(sections: rows, categories: #"{"key": "a", "label": 3}"#), at: "categories[0].label", "must be a string, not an integer")
        expectOnly(try document(sections: rows, categories: #"{"key": "a", "price": 10}"#), at: "categories[0].price", "is not a known field")
        expectOnly(try document(sections: rows, categories: #"{"key": "a"}, 7"#), at: "categories[1]", "must be an object")
        expectOnly(try document(sections: rows, categories: #"{"key": "a"}, {"label": "B"}"#), at: "categories[1].key", "is required")

        let map = valid(try document(sections: rows, categories: ##"{"key": "a", "color": "#ABCdef"}, {"key": "b", "label": "Balcony"}"##))
        #expect(map?.categories == [.init(key: "a", label: "a", color: "#ABCdef"), .init(key: "b", label: "Balcony", color: nil)])
    }

    @Test func duplicateCategoryKeysAreReportedAtTheLaterOne() throws {
        let rows = #"{"key": "S", "category": "a", "rows": [{"key": "A", "y": 0, "range": {"from": 1, "to": 2}}]}"#
        expectOnly(
            try document(sections: rows, categories: #"{"key": "a"}, {"key": "b"}, {"key": "a"}"#),
            at: "categories[2].key", "duplicate category key \"a\"", "categories[0].key")
        // Keys are case-sensitive.
        #expect(valid(try document(sections: rows, categories: #"{"key": "a"}, {"key": "A"}"#)) != nil)
    }

    // MARK: Keys

    @Test func keysAre1To16CharactersOfTheAllowedSet() throws {
        let message = "must be 1-16 characters of A-Z a-z 0-9 _ . (got \"A-1\")"
        expectOnly(try document(rows: #"{"key": "A-1", "y": 0, "range": {"from": 1, "to": 2}}"#), at: "sections[0].rows[0].key", message)
        expectOnly(try document(sections: #"{"key": "A-1", "category": "std", "rows": [{"key": "A", "y": 0, "range": {"from": 1, "to": 2}}]}"#),
                   at: "sections[0].key", message)
        expectOnly(try document(rows: #"{"key": "A", "y": 0, "seats": [{"key": "A-1", "x": 0}]}"#), at: "sections[0].rows[0].seats[0].key", message)
        expectOnly(try document(sections: #"{"key": "S", "category": "A-1", "rows": [{"key": "A", "y": 0, "range": {"from": 1, "to": 2}}]}"#,
                                categories: #"{"key": "A-1"}"#),
                   at: "categories[0].key", message)

        for bad in ["", "12345678901234567", "é", "a b", "a/b", "ORCH-1"] {
            expectOnly(try document(rows: #"{"key": "\#(bad)", "y": 0, "range": {"from": 1, "to": 2}}"#),
                       at: "sections[0].rows[0].key", "must be 1-16 characters of A-Z a-z 0-9 _ .")
        }
        expectOnly(try document(rows: #"{"y": 0, "range": {"from": 1, "to": 2}}"#), at: "sections[0].rows[0].key", "is required")
        expectOnly(try document(rows: #"{"key": 1, "y": 0, "range": {"from": 1, "to": 2}}"#), at: "sections[0].rows[0].key", "must be a string, not an integer")

        let map = valid(try document(rows: #"{"key": "Row_1.b_2345678Z", "y": 0, "seats": [{"key": "9", "x": 0}]}"#))
        #expect(map?.sections[0].rows[0].seats[0].label == "S-Row_1.b_2345678Z-9")
    }

    // MARK: Sections and rows

    @Test func sectionsAreRequiredAndNonEmpty() throws {
        expectOnly(try parse(#"{"name": "H", "categories": [{"key": "c"}]}"#), at: "sections", "is required")
        expectOnly(try parse(#"{"name": "H", "categories": [{"key": "c"}], "sections": []}"#), at: "sections", "at least one section")
        expectOnly(try parse(#"{"name": "H", "categories": [{"key": "c"}], "sections": 1}"#), at: "sections", "must be an array, not an integer")
        expectOnly(try document(sections: #""ORCH""#), at: "sections[0]", "must be an object", "not a string")
    }

    @Test func sectionKeysAreUniqueInTheDocument() throws {
        let section = #"{"key": "ORCH", "category": "std", "rows": [{"key": "A", "y": 0, "range": {"from": 1, "to": 2}}]}"#
        let other = #"{"key": "BALC", "category": "std", "rows": [{"key": "A", "y": 0, "range": {"from": 1, "to": 2}}]}"#
        expectOnly(try document(sections: [section, other, section].joined(separator: ",")),
                   at: "sections[2].key", "duplicate section key \"ORCH\"", "sections[0].key")
        let map = valid(try document(sections: [section, other].joined(separator: ",")))
        #expect(map?.sections.map(\.key) == ["ORCH", "BALC"])
        #expect(map?.sections.map(\.position) == [0, 1])
        #expect(map?.sections.map(\.label) == ["ORCH", "BALC"])
        #expect(map?.seatCount == 4)
    }

    @Test func sectionGeometryIsChecked() throws {
        let rows = #""rows": [{"key": "A", "y": 0, "range": {"from": 1, "to": 2}}]"#
        func section(_ extra: String) throws -> JSONValue {
            try document(sections: #"{"key": "S", "category": "std", \#(extra) \#(rows)}"#)
        }
        expectOnly(try section(#""origin": {"x": 1},"#), at: "sections[0].origin.y", "is required")
        expectOnly(try section(#""origin": {"x": 1, "y": 2, "z": 3},"#), at: "sections[0].origin.z", "is not a known field")
        expectOnly(try section(#""origin": {"x": 2000000, "y": 2},"#), at: "sections[0].origin.x", "between -1,000,000 and 1,000,000", "2000000")
        expectOnly(try section(#""origin": [1, 2],"#), at: "sections[0].origin", "must be an object {x, y}, not an array")
        expectOnly(try section(#""rotation": 400,"#), at: "sections[0].rotation", "between -360 and 360", "400")
        expectOnly(try section(#""rotation": -360.5,"#), at: "sections[0].rotation", "between -360 and 360")
        expectOnly(try section(#""rotation": 1e400,"#), at: "sections[0].rotation", "between -360 and 360")
        expectOnly(try section(#""rotation": "90","#), at: "sections[0].rotation", "must be a number, not a string")
        expectOnly(try section(#""label": "","#), at: "sections[0].label", "must not be empty")

        let map = try #require(valid(try section(#""label": "Stalls", "origin": {"x": -1000000, "y": 1000000}, "rotation": -360,"#)))
        #expect(map.sections[0].label == "Stalls")
        #expect(map.sections[0].origin?.x == -1_000_000 && map.sections[0].origin?.y == 1_000_000)
        #expect(map.sections[0].rotation == -360)
        #expect(valid(try section(#""rotation": 360,"#))?.sections[0].rotation == 360)
    }

    @Test func aSectionNeedsRows() throws {
        expectOnly(try document(sections: #"{"key": "S", "category": "std", "rows": []}"#), at: "sections[0].rows", "at least one row")
        expectOnly(try document(sections: #"{"key": "S", "category": "std"}"#), at: "sections[0].rows", "is required")
        expectOnly(try document(rows: #""A""#), at: "sections[0].rows[0]", "must be an object", "not a string")
    }

    @Test func rowKeysAreUniqueWithinASection() throws {
        let row = #"{"key": "A", "y": 0, "range": {"from": 1, "to": 2}}"#
        let other = #"{"key": "B", "y": 1, "range": {"from": 1, "to": 2}}"#
        expectOnly(try document(rows: [row, other, row].joined(separator: ",")),
                   at: "sections[0].rows[2].key", "duplicate row key \"A\"", "sections[0].rows[0].key")
        // The same row key in two sections is fine.
        let two = #"""
            {"key": "S1", "category": "std", "rows": [\#(row)]}, {"key": "S2", "category": "std", "rows": [\#(row)]}
            """#
        #expect(valid(try document(sections: two))?.seatCount == 4)
    }

    @Test func aRowNeedsAtLeastOneSeat() throws {
        expectOnly(try document(rows: #"{"key": "A", "y": 0}"#), at: "sections[0].rows[0]", "needs seats or a range")
        expectOnly(try document(rows: #"{"key": "A", "y": 0, "seats": []}"#), at: "sections[0].rows[0].seats", "at least one seat")
        expectOnly(try document(rows: #"{"key": "A", "y": 0, "seats": {}}"#), at: "sections[0].rows[0].seats", "must be an array, not an object")
        expectOnly(try document(rows: #"{"key": "A", "y": 0, "seats": [3]}"#), at: "sections[0].rows[0].seats[0]", "must be an object", "not an integer")
        // An empty list beside a range is fine.
        #expect(valid(try document(rows: #"{"key": "A", "y": 0, "seats": [], "range": {"from": 1, "to": 1}}"#))?.seatCount == 1)
        #expect(valid(try document(rows: #"{"key": "A", "seats": [{"key": "1", "x": 0, "y": 0}]}"#))?.seatCount == 1)
    }

    // MARK: Ranges

    @Test func rangesExpandIntoSeats() throws {
        let map = try #require(valid(try document(rows: #"""
            {"key": "C", "y": 7.5, "range": {"from": 5, "to": 12}, "x0": 100, "dx": 2.5},
            {"key": "D", "y": 9, "range": {"from": 0, "to": 0}}
            """#)))
        let c = map.sections[0].rows[0]
        #expect(seats(c) == ["5", "6", "7", "8", "9", "10", "11", "12"])
        #expect(c.seats.map(\.x) == [100, 102.5, 105, 107.5, 110, 112.5, 115, 117.5])
        #expect(c.seats.map(\.ordinal) == Array(0..<8))
        #expect(c.seats.allSatisfy { $0.y == 7.5 && $0.category == "std" })
        #expect(c.seats.map(\.label).first == "S-C-5")
        // Defaults: x0 = 0, dx = 1.
        let d = map.sections[0].rows[1]
        #expect(seats(d) == ["0"] && d.seats[0].x == 0)
        #expect(map.seatCount == 9)
    }

    @Test func aRangeMixesWithListedSeatsInOrderOfX() throws {
        let map = try #require(valid(try document(rows: #"""
            {"key": "B", "y": 50, "range": {"from": 1, "to": 30}, "x0": 10, "dx": 10,
             "seats": [{"key": "31A", "x": 305, "accessible": true}, {"key": "0", "x": 0, "companion": true}]}
            """#)))
        let row = map.sections[0].rows[0]
        #expect(row.seats.count == 32 && map.seatCount == 32)
        #expect(seats(row) == ["0"] + (1...30).map(String.init) + ["31A"])
        #expect(row.seats.map(\.ordinal) == Array(0..<32))
        #expect(row.seats.last?.accessible == true && row.seats.last?.x == 305 && row.seats.last?.y == 50)
        #expect(row.seats.first?.companion == true)
        #expect(row.seats.last?.label == "S-B-31A")
    }

    @Test func seatsAreOrderedByXThenOrderOfAppearance() throws {
        let map = try #require(valid(try document(rows: #"""
            {"key": "R", "y": 0, "range": {"from": 1, "to": 4}, "x0": 40, "dx": -10},
            {"key": "L", "y": 0, "seats": [{"key": "b", "x": 5}, {"key": "a", "x": 5}, {"key": "c", "x": -1}]},
            {"key": "M", "y": 0, "seats": [{"key": "L", "x": 10}], "range": {"from": 1, "to": 2}, "x0": 10},
            {"key": "N", "y": 0, "range": {"from": 1, "to": 2}, "x0": 10, "seats": [{"key": "L", "x": 10}]}
            """#)))
        let rows = map.sections[0].rows
        #expect(seats(rows[0]) == ["4", "3", "2", "1"])
        #expect(rows[0].seats.map(\.x) == [10, 20, 30, 40])
        #expect(seats(rows[1]) == ["c", "b", "a"])
        #expect(seats(rows[2]) == ["L", "1", "2"])
        #expect(seats(rows[3]) == ["1", "L", "2"])
        #expect(rows.allSatisfy { $0.seats.map(\.ordinal) == Array(0..<$0.seats.count) })
    }

    @Test func rangeBoundsAreChecked() throws {
        func row(_ range: String, extra: String = "") throws -> JSONValue {
            try document(rows: #"{"key": "A", "y": 0, "range": \#(range)\#(extra)}"#)
        }
        expectOnly(try row(#"{"from": 30, "to": 1}"#), at: "sections[0].rows[0].range", "from (30) must not be greater than to (1)")
        expectOnly(try row(#"{"from": 1, "to": 10001}"#), at: "sections[0].rows[0].range", "10,001 seats", "at most 10,000")
        expectOnly(try row(#"{"from": -1, "to": 5}"#), at: "sections[0].rows[0].range.from", "≥ 0", "-1")
        expectOnly(try row(#"{"from": 1.5, "to": 5}"#), at: "sections[0].rows[0].range.from", "whole number")
        expectOnly(try row(#"{"from": 1, "to": 5.0}"#), at: "sections[0].rows[0].range.to", "whole number", "5.0")
        expectOnly(try row(#"{"from": "1", "to": 5}"#), at: "sections[0].rows[0].range.from", "not a string")
        expectOnly(try row(#"{"from": 1}"#), at: "sections[0].rows[0].range.to", "is required")
        expectOnly(try row(#"{"from": 1, "to": 2, "step": 2}"#), at: "sections[0].rows[0].range.step", "is not a known field")
        expectOnly(try row(#""1-30""#), at: "sections[0].rows[0].range", "must be an object {from, to}, not a string")
        expectOnly(try row(#"{"from": 1, "to": 99999999999999999}"#), at: "sections[0].rows[0].range.to", "at most 9999999999999999")
        expectOnly(try row(#"{"from": 1, "to": 1e30}"#), at: "sections[0].rows[0].range.to", "at most 9999999999999999")

        #expect(valid(try row(#"{"from": 1, "to": 10000}"#))?.seatCount == 10_000)
        let biggest = valid(try row(#"{"from": 9999999999999999, "to": 9999999999999999}"#))
        #expect(biggest?.sections[0].rows[0].seats[0].key == "9999999999999999")
    }

    @Test func x0AndDxNeedARange() throws {
        expectOnly(try document(rows: #"{"key": "A", "y": 0, "x0": 5, "seats": [{"key": "1", "x": 0}]}"#),
                   at: "sections[0].rows[0].x0", "needs range")
        expectOnly(try document(rows: #"{"key": "A", "y": 0, "dx": 5, "seats": [{"key": "1", "x": 0}]}"#),
                   at: "sections[0].rows[0].dx", "needs range")
        expectOnly(try document(rows: #"{"key": "A", "y": 0, "x0": "5", "range": {"from": 1, "to": 2}}"#),
                   at: "sections[0].rows[0].x0", "must be a number, not a string")
        #expect(valid(try document(rows: #"{"key": "A", "y": 0, "x0": 5, "dx": 5, "range": {"from": 1, "to": 2}}"#))?.seatCount == 2)
    }

    @Test func aRangeNeedsTheRowsY() throws {
        expectOnly(try document(rows: #"{"key": "A", "range": {"from": 1, "to": 2}}"#), at: "sections[0].rows[0].y", "is required when the row has a range")
        // A listed seat may carry its own y instead.
        expectOnly(try document(rows: #"{"key": "A", "seats": [{"key": "1", "x": 0}]}"#), at: "sections[0].rows[0].seats[0].y", "is required")
        let map = valid(try document(rows: #"{"key": "A", "y": 3, "seats": [{"key": "1", "x": 0, "y": 4}, {"key": "2", "x": 1}]}"#))
        #expect(map?.sections[0].rows[0].seats.map(\.y) == [4, 3])
    }

    // MARK: Numbers

    @Test func coordinatesAreFiniteAndWithinAMillion() throws {
        func seat(_ x: String) throws -> JSONValue {
            try document(rows: #"{"key": "A", "y": 0, "seats": [{"key": "1", "x": \#(x)}]}"#)
        }
        expectOnly(try seat("1e400"), at: "sections[0].rows[0].seats[0].x", "between -1,000,000 and 1,000,000", "too large to represent")
        expectOnly(try seat("-1e400"), at: "sections[0].rows[0].seats[0].x", "between -1,000,000 and 1,000,000")
        expectOnly(try seat("1000000.5"), at: "sections[0].rows[0].seats[0].x", "between -1,000,000 and 1,000,000", "1000000.5")
        expectOnly(try seat("\"3\""), at: "sections[0].rows[0].seats[0].x", "must be a number, not a string")
        expectOnly(try seat("null"), at: "sections[0].rows[0].seats[0].x", "is required")
        #expect(valid(try seat("1000000"))?.sections[0].rows[0].seats[0].x == 1_000_000)
        #expect(valid(try seat("-1e6"))?.sections[0].rows[0].seats[0].x == -1_000_000)
        #expect(valid(try seat("0.125"))?.sections[0].rows[0].seats[0].x == 0.125)

        expectOnly(try document(rows: #"{"key": "A", "y": -1000001, "range": {"from": 1, "to": 2}}"#), at: "sections[0].rows[0].y", "between")
        expectOnly(try document(rows: #"{"key": "A", "y": 0, "range": {"from": 1, "to": 2}, "x0": 2e6}"#), at: "sections[0].rows[0].x0", "between")
        expectOnly(try document(rows: #"{"key": "A", "y": 0, "range": {"from": 1, "to": 2}, "dx": 1e300}"#), at: "sections[0].rows[0].dx", "between")
        expectOnly(try document(rows: #"{"key": "A", "y": 0, "seats": [{"key": "1", "x": 0, "y": 1e7}]}"#), at: "sections[0].rows[0].seats[0].y", "between")
    }

    @Test func computedRangeXMustStayWithinAMillion() throws {
        // Seat 10,000 would sit at 999,000 + 9,999 * 1000 = 10,998,000.
        expectOnly(try document(rows: #"{"key": "A", "y": 0, "range": {"from": 1, "to": 10000}, "x0": 999000, "dx": 1000}"#),
                   at: "sections[0].rows[0].range", "would place seat 10000 at x = 10998000", "±1,000,000")
        expectOnly(try document(rows: #"{"key": "A", "y": 0, "range": {"from": 1, "to": 3}, "x0": -999999, "dx": -1}"#),
                   at: "sections[0].rows[0].range", "would place seat 3 at x = -1000001")
        let map = valid(try document(rows: #"{"key": "A", "y": 0, "range": {"from": 1, "to": 10000}, "x0": 900000, "dx": 10}"#))
        #expect(map?.sections[0].rows[0].seats.last?.x == 999_990)
    }

    // MARK: Types and unknown fields

    @Test func wrongTypesAreProblemsWithPaths() throws {
        expectOnly(try document(rows: #"{"key": "A", "y": "40", "range": {"from": 1, "to": 2}}"#),
                   at: "sections[0].rows[0].y", "must be a number, not a string")
        expectOnly(try document(rows: #"{"key": "A", "y": 0, "seats": [{"key": "1", "x": 0, "accessible": "yes"}]}"#),
                   at: "sections[0].rows[0].seats[0].accessible", "must be true or false, not a string")
        expectOnly(try document(rows: #"{"key": "A", "y": 0, "seats": [{"key": "1", "x": 0, "restricted_view": 1}]}"#),
                   at: "sections[0].rows[0].seats[0].restricted_view", "must be true or false, not an integer")
        expectOnly(try document(rows: #"{"key": "A", "y": 0, "seats": [{"key": "1", "x": 0, "companion": []}]}"#),
                   at: "sections[0].rows[0].seats[0].companion", "must be true or false, not an array")
        expectOnly(try document(rows: #"{"key": "A", "y": 0, "category": 2, "range": {"from": 1, "to": 2}}"#),
                   at: "sections[0].rows[0].category", "must be a string, not an integer")
        expectOnly(try document(rows: #"{"key": "A", "y": true, "range": {"from": 1, "to": 2}}"#),
                   at: "sections[0].rows[0].y", "must be a number, not a boolean")
    }

    @Test func nullMeansNotGivenForOptionalFields() throws {
        let map = try #require(valid(try document(
            sections: #"{"key": "S", "label": null, "category": "std", "origin": null, "rotation": null, "rows": [{"key": "A", "y": 0, "category": null, "x0": null, "seats": [{"key": "1", "x": 0, "accessible": null, "category": null}]}]}"#,
            categories: #"{"key": "std", "label": null, "color": null}"#)))
        #expect(map.sections[0].label == "S" && map.categories[0].label == "std" && map.sections[0].rows[0].seats[0].accessible == false)
    }

    @Test func unknownFieldsAtEveryLevel() throws {
        let json = try parse(#"""
            {"name": "H", "venue": "x",
             "categories": [{"key": "c", "colour": "#000000"}],
             "sections": [{"key": "S", "category": "c", "origin": {"x": 0, "y": 0, "z": 0}, "kind": 1,
               "rows": [{"key": "A", "y": 0, "range": {"from": 1, "to": 2, "by": 1}, "count": 2,
                         "seats": [{"key": "3", "x": 3, "price": 5}]}]}]}
            """#)
        let found = problems(json)
        #expect(found.map(\.path) == [
            "venue", "categories[0].colour", "sections[0].kind", "sections[0].origin.z", "sections[0].rows[0].count",
            "sections[0].rows[0].range.by", "sections[0].rows[0].seats[0].price",
        ])
        #expect(found.allSatisfy { $0.message.hasPrefix("is not a known field") })
        #expect(found[6].message.contains("key, x, y, category, accessible, restricted_view, companion"))
    }

    // MARK: Categories of seats

    @Test func categoryIsInheritedSeatThenRowThenSection() throws {
        let map = try #require(valid(try document(
            sections: #"""
                {"key": "S", "category": "a", "rows": [
                  {"key": "A", "y": 0, "seats": [{"key": "1", "x": 0}, {"key": "2", "x": 1, "category": "c"}]},
                  {"key": "B", "y": 1, "category": "b", "seats": [{"key": "1", "x": 0}, {"key": "2", "x": 1, "category": "c"}],
                   "range": {"from": 3, "to": 4}, "x0": 2},
                  {"key": "C", "y": 2, "range": {"from": 1, "to": 2}}
                ]},
                {"key": "T", "rows": [{"key": "A", "y": 0, "category": "b", "range": {"from": 1, "to": 1}}]}
                """#,
            categories: #"{"key": "a"}, {"key": "b"}, {"key": "c"}"#)))
        let rows = map.sections[0].rows
        #expect(rows[0].seats.map(\.category) == ["a", "c"])
        #expect(rows[1].seats.map(\.category) == ["b", "c", "b", "b"])
        #expect(rows[2].seats.map(\.category) == ["a", "a"])
        #expect(map.sections[1].rows[0].seats.map(\.category) == ["b"])
    }

    @Test func aMissingCategoryIsReportedWhereTheSeatIsWritten() throws {
        func section(_ rows: String) throws -> JSONValue {
            try document(sections: #"{"key": "S", "rows": [\#(rows)]}"#)
        }
        expectOnly(try section(#"{"key": "A", "y": 0, "seats": [{"key": "1", "x": 0, "category": "std"}, {"key": "2", "x": 1}]}"#),
                   at: "sections[0].rows[0].seats[1].category", "is required")
        expectOnly(try section(#"{"key": "A", "y": 0, "range": {"from": 1, "to": 9}}"#),
                   at: "sections[0].rows[0].category", "is required", "range")
        #expect(valid(try section(#"{"key": "A", "y": 0, "category": "vip", "range": {"from": 1, "to": 9}}"#))?.seatCount == 9)
    }

    @Test func anUnknownCategoryIsNamedWithTheKnownOnes() throws {
        expectOnly(try document(rows: #"{"key": "A", "y": 0, "seats": [{"key": "1", "x": 0, "category": "gold"}]}"#),
                   at: "sections[0].rows[0].seats[0].category", "unknown category \"gold\"", "std, vip")
        expectOnly(try document(rows: #"{"key": "A", "y": 0, "category": "gold", "range": {"from": 1, "to": 500}}"#),
                   at: "sections[0].rows[0].category", "unknown category \"gold\"")
        // A section's unknown default is one problem, not one per seat that inherits it.
        expectOnly(try document(sections: #"{"key": "S", "category": "gold", "rows": [{"key": "A", "y": 0, "seats": [{"key": "1", "x": 0}, {"key": "2", "x": 1}]}]}"#),
                   at: "sections[0].category", "unknown category \"gold\"")

        // Many categories: the list is shortened.
        let many = (1...25).map { #"{"key": "c\#($0)"}"# }.joined(separator: ",")
        let found = problems(try document(sections: #"{"key": "S", "category": "gold", "rows": [{"key": "A", "y": 0, "range": {"from": 1, "to": 2}}]}"#, categories: many))
        #expect(found.count == 1)
        #expect(found.first?.message.contains("c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, … (25 in all)") == true)
        #expect(found.first?.message.contains("c11") == false)
    }

    // MARK: Seat keys

    @Test func seatKeysAreUniqueWithinARowAcrossRangeAndListedSeats() throws {
        expectOnly(try document(rows: #"{"key": "A", "y": 0, "seats": [{"key": "1", "x": 0}, {"key": "2", "x": 1}, {"key": "1", "x": 2}]}"#),
                   at: "sections[0].rows[0].seats[2].key", "duplicate seat key \"1\"", "sections[0].rows[0].seats[0].key")
        expectOnly(try document(rows: #"{"key": "B", "y": 0, "range": {"from": 1, "to": 30}, "seats": [{"key": "31A", "x": 31}, {"key": "12", "x": 40}]}"#),
                   at: "sections[0].rows[0].seats[1].key", "duplicate seat key \"12\"", "range 1-30")
        expectOnly(try document(rows: #"{"key": "B", "y": 0, "range": {"from": 1, "to": 30}, "seats": [{"key": "30", "x": 40}]}"#),
                   at: "sections[0].rows[0].seats[0].key", "range 1-30")
        // Not clashes: another row, a leading zero, a suffix, a number outside the range.
        let map = valid(try document(rows: #"""
            {"key": "A", "y": 0, "range": {"from": 1, "to": 30}, "seats": [{"key": "012", "x": 40}, {"key": "12A", "x": 41}, {"key": "31", "x": 42}, {"key": "0", "x": 43}]},
            {"key": "B", "y": 1, "seats": [{"key": "12", "x": 0}]}
            """#))
        #expect(map?.seatCount == 35)
    }

    // MARK: Several problems and limits

    @Test func everyProblemIsListedWithItsPath() throws {
        let json = try parse(#"""
            {"name": "",
             "categories": [{"key": "a"}, {"key": "a", "color": "blue"}],
             "sections": [
               {"key": "bad key", "rows": [
                 {"key": "A", "y": "high", "range": {"from": 5, "to": 1}, "x0": 1},
                 {"key": "A", "y": 0, "seats": [{"key": "1", "x": 1e400, "category": "zzz"}, {"key": "1", "x": 0, "category": "a"}]}
               ]},
               {"key": "T", "category": "a", "rotation": 720, "rows": [{"key": "R", "y": 0, "x0": 5, "seats": [{"key": "2", "x": 0, "extra": 1}]}]}
             ]}
            """#)
        let found = problems(json)
        #expect(found.map(\.path) == [
            "name",
            "categories[1].key",
            "categories[1].color",
            "sections[0].key",
            "sections[0].rows[0].y",
            "sections[0].rows[0].range",
            "sections[0].rows[1].key",
            "sections[0].rows[1].seats[0].x",
            "sections[0].rows[1].seats[0].category",
            "sections[0].rows[1].seats[1].key",
            "sections[1].rotation",
            "sections[1].rows[0].x0",
            "sections[1].rows[0].seats[0].extra",
        ], "\(found.map(\.description).joined(separator: "\n"))")
        #expect(found.count == 13)
        // No cascades: the invalid range adds nothing about the row's seats or x0, the bad section key
        // still has its rows checked, and the first seat's unknown category is reported once.
        #expect(!found.contains { $0.path == "sections[0].rows[0]" || $0.path == "sections[0].rows[0].x0" })
        #expect(found.first { $0.path == "sections[0].rows[1].seats[0].category" }?.message.contains("\"zzz\"") == true)
    }

    @Test func problemsAreCappedAtAThousand() throws {
        // 3,000 seats with a bad key each.
        let seats: [JSONValue] = (0..<3000).map { .object([("key", .string("bad-\($0)")), ("x", .int($0))]) }
        let json = mapJSON(rows: [.object([("key", "A"), ("y", 0), ("seats", .array(seats))])])
        let found = problems(json)
        #expect(found.count == 1_001)
        #expect(found[999].path == "sections[0].rows[0].seats[999].key")
        #expect(found[1000].path == "")
        #expect(found[1000].message.hasPrefix("… and 2,000 more"))
    }

    @Test func aDocumentMayHaveAtMost200000Seats() throws {
        func rows(_ count: Int, extra: Bool) -> [JSONValue] {
            var rows: [JSONValue] = (0..<count).map { index in
                .object([("key", .string("R\(index)")), ("y", .int(index)), ("range", .object([("from", 1), ("to", 10_000)]))])
            }
            if extra { rows.append(.object([("key", "X"), ("y", 99), ("seats", [.object([("key", "1"), ("x", 0)])])])) }
            return rows
        }
        let over = problems(mapJSON(rows: rows(20, extra: true)))
        #expect(over == [ValidationProblem("sections", "the document has 200,001 seats; a seat map may have at most 200,000")])

        let clock = ContinuousClock()
        var map: SeatMapDocument?
        let elapsed = clock.measure { map = valid(mapJSON(rows: rows(20, extra: false))) }
        #expect(map?.seatCount == 200_000)
        #expect(map?.sections[0].rows[19].seats.last?.label == "S-R19-10000")
        #expect(elapsed < .seconds(5))
    }

    // MARK: Size and speed

    /// A one-category (`std`) document built without text, sections of the given rows.
    func mapJSON(rows: [JSONValue], sections: Int = 1) -> JSONValue {
        .object([
            ("name", "Big"),
            ("categories", [.object([("key", "std")])]),
            ("sections", .array((0..<sections).map { index in
                .object([("key", .string(index == 0 ? "S" : "S\(index)")), ("category", "std"), ("rows", .array(rows))])
            })),
        ])
    }

    @Test func largeDocumentsValidateQuickly() throws {
        let clock = ContinuousClock()

        // A 60,000-seat stadium written with ranges: 12 sections of 50 rows of 100 seats.
        let rangeRows: [JSONValue] = (0..<50).map { index in
            .object([("key", .string("R\(index)")), ("y", .int(index * 10)),
                     ("range", .object([("from", 1), ("to", 100)])), ("x0", 5), ("dx", .double(7.5))])
        }
        let stadium = mapJSON(rows: rangeRows, sections: 12)
        var ranged: SeatMapDocument?
        let rangeTime = clock.measure { ranged = valid(stadium) }
        #expect(ranged?.seatCount == 60_000)

        // A 20,000-seat hall with every seat listed: 4 sections of 50 rows of 100 seats.
        let listedRows: [JSONValue] = (0..<50).map { index in
            .object([("key", .string("R\(index)")), ("y", .int(index * 10)),
                     ("seats", .array((1...100).map { seat in
                         .object([("key", .string(String(seat))), ("x", .int(seat * 10)), ("accessible", .bool(seat == 1))])
                     }))])
        }
        let hall = mapJSON(rows: listedRows, sections: 4)
        var listed: SeatMapDocument?
        let listedTime = clock.measure { listed = valid(hall) }
        #expect(listed?.seatCount == 20_000)
        #expect(listed?.sections[3].rows[49].seats[99].label == "S3-R49-100")

        print("seat maps: 60,000 range seats validated in \(rangeTime), 20,000 listed seats in \(listedTime)")
        #expect(rangeTime < .seconds(2))
        #expect(listedTime < .seconds(2))
    }

    // MARK: Labels

    @Test func labelsAreMadeAndSplit() {
        #expect(SeatLabel.make(section: "ORCH", row: "C", seat: "12") == "ORCH-C-12")
        #expect(SeatLabel.split("ORCH-C-12")! == ("ORCH", "C", "12"))
        #expect(SeatLabel.split("Balc.2-row_1-31A")! == ("Balc.2", "row_1", "31A"))
        let long = String(repeating: "a", count: 16)
        #expect(SeatLabel.split("\(long)-\(long)-\(long)")! == (long, long, long))
        for bad in ["A-B", "A-B-C-D", "-B-C", "A--C", "A-B-", "", "A B-C-D", "A-B-é", "ORCH", "\(long)a-B-C", "A-B-\(long)a", "A-B-C\n"] {
            #expect(SeatLabel.split(bad) == nil, "\(bad)")
        }
        #expect(SeatLabel.isValidKey("ORCH") && SeatLabel.isValidKey("a_b.c") && SeatLabel.isValidKey(long))
        #expect(!SeatLabel.isValidKey("") && !SeatLabel.isValidKey(long + "a") && !SeatLabel.isValidKey("A-1") && !SeatLabel.isValidKey("ü"))
    }
}

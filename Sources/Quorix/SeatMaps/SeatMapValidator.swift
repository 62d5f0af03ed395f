/// Every problem found in a seat-map document, each with its JSON path (`sections[2].rows[5].seats[3].key`).
/// At most `limit` are kept; when there were more, a last problem at path `""` says how many were left out.
public struct SeatMapProblems: Error, Sendable, CustomStringConvertible {
    public static let limit = 1_000
    public let problems: [ValidationProblem]

    public init(problems: [ValidationProblem]) {
        self.problems = problems
    }

    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// Checks a seat-map document (format: `SEATMAPS.md`) and expands it into a `SeatMapDocument`.
/// Pure: no I/O. Wrong JSON types inside the document are problems like any other, so one answer
/// lists everything to fix.
public enum SeatMapValidator {
    public static let maxNameLength = 200
    public static let maxLabelLength = 200
    /// Largest magnitude of a coordinate, in map units.
    public static let maxCoordinate = 1_000_000.0
    public static let maxRotation = 360.0
    public static let maxRangeSeats = 10_000
    public static let maxSeats = 200_000
    /// A range's bounds become seat keys, which are at most 16 characters.
    public static let maxRangeBound: Int64 = 9_999_999_999_999_999

    /// Every problem, each with its JSON path, or the expanded document.
    public static func validate(_ json: JSONValue) -> Result<SeatMapDocument, SeatMapProblems> {
        var checker = SeatMapChecker()
        let plan = checker.check(json)
        if let plan, checker.problems.isEmpty {
            return .success(plan.build())
        }
        return .failure(checker.problems.finished())
    }
}

// MARK: - Problems and paths

struct SeatMapProblemList {
    private var kept: [ValidationProblem] = []
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// Paths and messages are only formatted for problems that are kept.
    mutating func add(_ path: @autoclosure () -> String, _ message: @autoclosure () -> String) {
        count += 1
        if kept.count < SeatMapProblems.limit {
            kept.append(ValidationProblem(path(), message()))
        }
    }

    func finished() -> SeatMapProblems {
        var list = kept
        let left = count - kept.count
        if left > 0 {
            list.append(ValidationProblem(
                "", "… and \(grouped(left)) more \(left == 1 ? "problem" : "problems") (only the first \(grouped(kept.count)) are listed)"))
        }
        return SeatMapProblems(problems: list)
    }
}

/// Where an object sits in the document; turned into a path string only when a problem is reported.
enum SeatMapLocation {
    case root
    case category(Int)
    case section(Int)
    case origin(Int)
    case row(Int, Int)
    case range(Int, Int)
    case seat(Int, Int, Int)

    var path: String {
        switch self {
        case .root: ""
        case .category(let c): "categories[\(c)]"
        case .section(let s): "sections[\(s)]"
        case .origin(let s): "sections[\(s)].origin"
        case .row(let s, let r): "sections[\(s)].rows[\(r)]"
        case .range(let s, let r): "sections[\(s)].rows[\(r)].range"
        case .seat(let s, let r, let k): "sections[\(s)].rows[\(r)].seats[\(k)]"
        }
    }

    func path(_ field: String) -> String {
        if case .root = self { return field }
        return path + "." + field
    }
}

/// A field's outcome: not given (or null), given but wrong (already reported), or usable.
enum SeatMapField<Value> {
    case absent
    case invalid
    case valid(Value)

    var value: Value? {
        if case .valid(let value) = self { return value }
        return nil
    }

    var isAbsent: Bool {
        if case .absent = self { return true }
        return false
    }
}

fileprivate func grouped(_ number: Int) -> String {
    let digits = String(number.magnitude)
    var result = ""
    for (index, character) in digits.enumerated() {
        if index > 0 && (digits.count - index) % 3 == 0 { result.append(",") }
        result.append(character)
    }
    return number < 0 ? "-" + result : result
}

/// A number as a person wrote it (our parser never produces NaN; a huge literal becomes infinity).
fileprivate func describe(_ number: Double) -> String {
    guard number.isFinite else { return "a number too large to represent" }
    if number == number.rounded() && number.magnitude < 1e15 { return String(Int64(number)) }
    return "\(number)"
}

/// A string quoted for a message, shortened if long.
fileprivate func quoted(_ string: String) -> String {
    if string.count <= 40 { return string.debugDescription }
    return String(string.prefix(40)).debugDescription + "…"
}

// MARK: - The plan: a checked document, before expansion

extension SeatMapPlan {
    struct ListedSeat {
        let key: String
        let x: Double
        let y: Double
        let category: String
        let accessible: Bool
        let restrictedView: Bool
        let companion: Bool
    }

    struct RangePlan {
        let from: Int
        let to: Int
        let x0: Double
        let dx: Double
        let y: Double
        let category: String
    }

    struct RowPlan {
        let key: String
        let range: SeatMapPlan.RangePlan?
        /// Whether `range` is written before `seats`: the order of seats with equal `x`.
        let rangeFirst: Bool
        let listed: [SeatMapPlan.ListedSeat]
    }

    struct SectionPlan {
        let key: String
        let label: String
        let origin: (x: Double, y: Double)?
        let rotation: Double?
        let rows: [SeatMapPlan.RowPlan]
    }
}

struct SeatMapPlan {
    let name: String
    let categories: [SeatMapDocument.Category]
    let sections: [SeatMapPlan.SectionPlan]
    let seatCount: Int

    func build() -> SeatMapDocument {
        var built: [SeatMapDocument.Section] = []
        built.reserveCapacity(sections.count)
        for (position, section) in sections.enumerated() {
            var rows: [SeatMapDocument.Row] = []
            rows.reserveCapacity(section.rows.count)
            for (rank, row) in section.rows.enumerated() {
                rows.append(SeatMapDocument.Row(key: row.key, rank: rank, seats: Self.seats(of: row, section: section.key)))
            }
            built.append(SeatMapDocument.Section(
                key: section.key, label: section.label, position: position, origin: section.origin,
                rotation: section.rotation, rows: rows))
        }
        return SeatMapDocument(name: name, categories: categories, sections: built, seatCount: seatCount)
    }

    private static func seats(of row: SeatMapPlan.RowPlan, section: String) -> [SeatMapDocument.Seat] {
        var drafts: [SeatMapPlan.ListedSeat] = []
        var count = row.listed.count
        if let range = row.range { count += range.to - range.from + 1 }
        drafts.reserveCapacity(count)
        if !row.rangeFirst { drafts.append(contentsOf: row.listed) }
        if let range = row.range {
            for number in range.from...range.to {
                drafts.append(SeatMapPlan.ListedSeat(
                    key: String(number), x: range.x0 + Double(number - range.from) * range.dx, y: range.y,
                    category: range.category, accessible: false, restrictedView: false, companion: false))
            }
        }
        if row.rangeFirst { drafts.append(contentsOf: row.listed) }

        var sorted = true
        var index = 1
        while index < drafts.count {
            if drafts[index].x < drafts[index - 1].x {
                sorted = false
                break
            }
            index += 1
        }
        // Ties keep the order of appearance: compare positions explicitly rather than rely on a stable sort.
        let order: [Int] = sorted
            ? Array(drafts.indices)
            : drafts.indices.sorted { drafts[$0].x < drafts[$1].x || (drafts[$0].x == drafts[$1].x && $0 < $1) }

        let prefix = section + "-" + row.key + "-"
        var seats: [SeatMapDocument.Seat] = []
        seats.reserveCapacity(drafts.count)
        for (ordinal, position) in order.enumerated() {
            let draft = drafts[position]
            seats.append(SeatMapDocument.Seat(
                key: draft.key, label: prefix + draft.key, category: draft.category, x: draft.x, y: draft.y,
                ordinal: ordinal, accessible: draft.accessible, restrictedView: draft.restrictedView,
                companion: draft.companion))
        }
        return seats
    }
}

// MARK: - The checker

struct SeatMapChecker {
    typealias V = SeatMapValidator

    var problems = SeatMapProblemList()
    /// Valid category keys, and the same in document order for messages.
    private var categoryKeys: Set<String> = []
    private var categoryOrder: [String] = []
    /// Category keys written with bad characters: already reported, so references to them are not.
    private var toleratedCategories: Set<String> = []
    /// False when the categories could not all be read; unknown-category checks would then be noise.
    private var categoriesUsable = true
    private var sectionKeys: [String: Int] = [:]

    // MARK: Document

    mutating func check(_ json: JSONValue) -> SeatMapPlan? {
        guard case .object(let members) = json else {
            problems.add("", "must be a JSON object (a seat map document with name, categories and sections), not \(json.typeName)")
            return nil
        }
        var name: JSONValue?
        var categories: JSONValue?
        var sections: JSONValue?
        for (field, value) in members {
            switch field {
            case "name": name = value
            case "categories": categories = value
            case "sections": sections = value
            default: unknownField(.root, field, allowed: "name, categories, sections")
            }
        }

        let checkedName = checkName(name)
        let checkedCategories = checkCategories(categories)
        let (checkedSections, seatCount) = checkSections(sections)

        if seatCount > V.maxSeats {
            problems.add(
                "sections",
                "the document has \(grouped(seatCount)) seats; a seat map may have at most \(grouped(V.maxSeats))")
        }
        guard problems.isEmpty, let checkedName, let checkedCategories, let checkedSections else { return nil }
        return SeatMapPlan(name: checkedName, categories: checkedCategories, sections: checkedSections, seatCount: seatCount)
    }

    private mutating func checkName(_ value: JSONValue?) -> String? {
        switch string(value, .root, "name", required: "the seat map's name, 1-\(V.maxNameLength) characters") {
        case .valid(let name):
            return checkText(name, .root, "name", limit: V.maxNameLength) ? name : nil
        default:
            return nil
        }
    }

    /// A name or label: not blank, at most `limit` characters.
    private mutating func checkText(_ text: String, _ location: SeatMapLocation, _ field: String, limit: Int) -> Bool {
        if text.allSatisfy(\.isWhitespace) {
            problems.add(location.path(field), "must not be empty")
            return false
        }
        let length = text.count
        if length > limit {
            problems.add(location.path(field), "must be at most \(limit) characters (got \(grouped(length)))")
            return false
        }
        return true
    }

    // MARK: Categories

    private mutating func checkCategories(_ value: JSONValue?) -> [SeatMapDocument.Category]? {
        let elements: [JSONValue]
        switch array(value, .root, "categories", required: "the price categories, at least one") {
        case .valid(let array): elements = array
        default:
            categoriesUsable = false
            return nil
        }
        if elements.isEmpty {
            problems.add("categories", "must list at least one category")
            categoriesUsable = false
            return nil
        }
        let before = problems.count
        var firstIndex: [String: Int] = [:]
        var result: [SeatMapDocument.Category] = []
        for (index, element) in elements.enumerated() {
            let location = SeatMapLocation.category(index)
            guard case .object(let members) = element else {
                problems.add(location.path, "must be an object {key, label, color}, not \(element.typeName)")
                categoriesUsable = false
                continue
            }
            var keyValue: JSONValue?
            var labelValue: JSONValue?
            var colorValue: JSONValue?
            for (field, value) in members {
                switch field {
                case "key": keyValue = value
                case "label": labelValue = value
                case "color": colorValue = value
                default: unknownField(location, field, allowed: "key, label, color")
                }
            }
            let key: String?
            switch string(keyValue, location, "key", required: "the key seats use to name this category") {
            case .valid(let written):
                if SeatLabel.isValidKey(written) {
                    key = written
                } else {
                    reportBadKey(written, location)
                    toleratedCategories.insert(written)
                    key = nil
                }
            default:
                categoriesUsable = false
                key = nil
            }
            if let key {
                if let first = firstIndex[key] {
                    problems.add(location.path("key"), "duplicate category key \(quoted(key)) (also categories[\(first)].key)")
                } else {
                    firstIndex[key] = index
                    categoryKeys.insert(key)
                    categoryOrder.append(key)
                }
            }
            let label = label(labelValue, location)
            var color: String?
            if case .valid(let written) = string(colorValue, location, "color") {
                if Self.isColor(written) {
                    color = written
                } else {
                    problems.add(location.path("color"), "must be a color written #rrggbb, such as \"#1d4ed8\" (got \(quoted(written)))")
                }
            }
            if let key, problems.count == before {
                result.append(SeatMapDocument.Category(key: key, label: label ?? key, color: color))
            }
        }
        return problems.count == before ? result : nil
    }

    private static func isColor(_ text: String) -> Bool {
        let utf8 = text.utf8
        guard utf8.count == 7, utf8.first == UInt8(ascii: "#") else { return false }
        return utf8.dropFirst().allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"): true
            default: false
            }
        }
    }

    /// An optional label; nil when absent or invalid (invalid ones are reported).
    private mutating func label(_ value: JSONValue?, _ location: SeatMapLocation) -> String? {
        guard case .valid(let text) = string(value, location, "label") else { return nil }
        return checkText(text, location, "label", limit: V.maxLabelLength) ? text : nil
    }

    /// A category named by a section, row or seat.
    private mutating func categoryReference(_ value: JSONValue?, _ location: SeatMapLocation) -> SeatMapField<String> {
        switch string(value, location, "category") {
        case .absent: return .absent
        case .invalid: return .invalid
        case .valid(let key):
            if categoryKeys.contains(key) { return .valid(key) }
            if categoriesUsable && !toleratedCategories.contains(key) {
                let known = knownCategories
                problems.add(location.path("category"), "names the unknown category \(quoted(key)); \(known)")
            }
            return .invalid
        }
    }

    private var knownCategoriesText: String?

    /// Made once, on the first unknown category.
    private var knownCategories: String {
        mutating get {
            if let knownCategoriesText { return knownCategoriesText }
            let text = Self.describeCategories(categoryOrder)
            knownCategoriesText = text
            return text
        }
    }

    private static func describeCategories(_ categoryOrder: [String]) -> String {
        let shown = 10
        let listed = categoryOrder.prefix(shown).joined(separator: ", ")
        if categoryOrder.count <= shown { return "the categories are \(listed)" }
        return "the categories are \(listed), … (\(grouped(categoryOrder.count)) in all)"
    }

    // MARK: Sections

    private mutating func checkSections(_ value: JSONValue?) -> ([SeatMapPlan.SectionPlan]?, Int) {
        let elements: [JSONValue]
        switch array(value, .root, "sections", required: "the venue's sections, at least one") {
        case .valid(let array): elements = array
        default: return (nil, 0)
        }
        if elements.isEmpty {
            problems.add("sections", "must list at least one section")
            return (nil, 0)
        }
        var plans: [SeatMapPlan.SectionPlan] = []
        plans.reserveCapacity(elements.count)
        var seatCount = 0
        for (index, element) in elements.enumerated() {
            let (plan, seats) = checkSection(element, index)
            seatCount += seats
            if let plan, problems.isEmpty { plans.append(plan) }
        }
        return (problems.isEmpty ? plans : nil, seatCount)
    }

    private mutating func checkSection(_ element: JSONValue, _ index: Int) -> (SeatMapPlan.SectionPlan?, Int) {
        let location = SeatMapLocation.section(index)
        guard case .object(let members) = element else {
            problems.add(location.path, "must be an object {key, label, category, origin, rotation, rows}, not \(element.typeName)")
            return (nil, 0)
        }
        let before = problems.count
        var keyValue: JSONValue?
        var labelValue: JSONValue?
        var categoryValue: JSONValue?
        var originValue: JSONValue?
        var rotationValue: JSONValue?
        var rowsValue: JSONValue?
        for (field, value) in members {
            switch field {
            case "key": keyValue = value
            case "label": labelValue = value
            case "category": categoryValue = value
            case "origin": originValue = value
            case "rotation": rotationValue = value
            case "rows": rowsValue = value
            default: unknownField(location, field, allowed: "key, label, category, origin, rotation, rows")
            }
        }

        let key = self.key(keyValue, location, required: "the section's key, 1-16 characters of A-Z a-z 0-9 _ .")
        if let key {
            if let first = sectionKeys[key] {
                problems.add(location.path("key"), "duplicate section key \(quoted(key)) (also sections[\(first)].key)")
            } else {
                sectionKeys[key] = index
            }
        }
        let label = label(labelValue, location)
        let category = categoryReference(categoryValue, location)
        let origin = checkOrigin(originValue, index)
        let rotation = checkRotation(rotationValue, location)

        var rowPlans: [SeatMapPlan.RowPlan] = []
        var seatCount = 0
        switch array(rowsValue, location, "rows", required: "the section's rows, at least one") {
        case .valid(let rows):
            if rows.isEmpty {
                problems.add(location.path("rows"), "must list at least one row")
            }
            rowPlans.reserveCapacity(rows.count)
            var rowKeys: [String: Int] = [:]
            for (rowIndex, row) in rows.enumerated() {
                let (plan, seats) = checkRow(row, index, rowIndex, sectionCategory: category, rowKeys: &rowKeys)
                seatCount += seats
                if let plan, problems.isEmpty { rowPlans.append(plan) }
            }
        default:
            break
        }

        guard problems.count == before, let key else { return (nil, seatCount) }
        return (SeatMapPlan.SectionPlan(key: key, label: label ?? key, origin: origin, rotation: rotation, rows: rowPlans), seatCount)
    }

    private mutating func checkOrigin(_ value: JSONValue?, _ section: Int) -> (x: Double, y: Double)? {
        guard case .valid(let members) = object(value, .section(section), "origin", shape: "{x, y}") else { return nil }
        let location = SeatMapLocation.origin(section)
        var xValue: JSONValue?
        var yValue: JSONValue?
        for (field, value) in members {
            switch field {
            case "x": xValue = value
            case "y": yValue = value
            default: unknownField(location, field, allowed: "x, y")
            }
        }
        let x = coordinate(xValue, location, "x", required: "the section's origin needs both x and y")
        let y = coordinate(yValue, location, "y", required: "the section's origin needs both x and y")
        guard let x = x.value, let y = y.value else { return nil }
        return (x, y)
    }

    private mutating func checkRotation(_ value: JSONValue?, _ location: SeatMapLocation) -> Double? {
        guard case .valid(let degrees) = number(value, location, "rotation") else { return nil }
        guard degrees.isFinite, degrees.magnitude <= V.maxRotation else {
            problems.add(location.path("rotation"), "must be between -360 and 360 degrees (got \(describe(degrees)))")
            return nil
        }
        return degrees
    }

    // MARK: Rows

    private mutating func checkRow(
        _ element: JSONValue, _ section: Int, _ index: Int, sectionCategory: SeatMapField<String>, rowKeys: inout [String: Int]
    ) -> (SeatMapPlan.RowPlan?, Int) {
        let location = SeatMapLocation.row(section, index)
        guard case .object(let members) = element else {
            problems.add(location.path, "must be an object {key, y, category, seats, range, x0, dx}, not \(element.typeName)")
            return (nil, 0)
        }
        let before = problems.count
        var keyValue: JSONValue?
        var yValue: JSONValue?
        var categoryValue: JSONValue?
        var seatsValue: JSONValue?
        var rangeValue: JSONValue?
        var x0Value: JSONValue?
        var dxValue: JSONValue?
        var rangeFirst = true
        for (field, value) in members {
            switch field {
            case "key": keyValue = value
            case "y": yValue = value
            case "category": categoryValue = value
            case "seats":
                seatsValue = value
                if rangeValue == nil { rangeFirst = false }
            case "range": rangeValue = value
            case "x0": x0Value = value
            case "dx": dxValue = value
            default: unknownField(location, field, allowed: "key, y, category, seats, range, x0, dx")
            }
        }

        let key = self.key(keyValue, location, required: "the row's key, 1-16 characters of A-Z a-z 0-9 _ .")
        if let key {
            if let first = rowKeys[key] {
                problems.add(location.path("key"), "duplicate row key \(quoted(key)) in this section (also sections[\(section)].rows[\(first)].key)")
            } else {
                rowKeys[key] = index
            }
        }
        let y = coordinate(yValue, location, "y")
        let rowCategory = categoryReference(categoryValue, location)
        let x0 = coordinate(x0Value, location, "x0")
        let dx = coordinate(dxValue, location, "dx")

        // The range: its bounds, then what its seats need (x, y, a category).
        var bounds: ClosedRange<Int>?
        var rangeGiven = false
        if case .valid(let rangeMembers) = object(rangeValue, location, "range", shape: "{from, to}") {
            rangeGiven = true
            bounds = checkRange(rangeMembers, section, index)
        } else if rangeValue != nil && rangeValue != .null {
            rangeGiven = true  // given, but not an object: already reported
        }
        if !rangeGiven {
            if !x0Value.isAbsentOrNull {
                problems.add(location.path("x0"), "needs range: x0 places the first seat of a range, and this row has no range")
            }
            if !dxValue.isAbsentOrNull {
                problems.add(location.path("dx"), "needs range: dx spaces the seats of a range, and this row has no range")
            }
        }
        var rangePlan: SeatMapPlan.RangePlan?
        if let bounds {
            if case .absent = y {
                problems.add(location.path("y"), "is required when the row has a range: range seats take the row's y")
            }
            var category: String?
            switch rowCategory {
            case .valid(let key): category = key
            case .invalid: break
            case .absent:
                switch sectionCategory {
                case .valid(let key): category = key
                case .invalid: break
                case .absent:
                    problems.add(
                        location.path("category"),
                        "is required: the seats of this row's range need a category, and neither the row nor its section names one")
                }
            }
            let start = x0.isAbsent ? 0 : x0.value
            let step = dx.isAbsent ? 1 : dx.value
            if let start, let step {
                let last = start + Double(bounds.upperBound - bounds.lowerBound) * step
                if !(last.isFinite && last.magnitude <= V.maxCoordinate) {
                    problems.add(
                        location.path("range"),
                        "would place seat \(bounds.upperBound) at x = \(describe(last)), beyond the limit of ±1,000,000 map units; change x0, dx or the range")
                } else if let rowY = y.value, let category {
                    rangePlan = SeatMapPlan.RangePlan(from: bounds.lowerBound, to: bounds.upperBound, x0: start, dx: step, y: rowY, category: category)
                }
            }
        }

        // Listed seats.
        var listed: [SeatMapPlan.ListedSeat] = []
        var listedCount = 0
        switch array(seatsValue, location, "seats") {
        case .valid(let seats):
            listedCount = seats.count
            if seats.isEmpty && !rangeGiven {
                problems.add(location.path("seats"), "must list at least one seat (or the row must give a range)")
            }
            listed.reserveCapacity(seats.count)
            var seatKeys: [String: Int] = [:]
            seatKeys.reserveCapacity(seats.count)
            let context = RowContext(y: y, category: rowCategory, sectionCategory: sectionCategory, range: bounds)
            for (seatIndex, seat) in seats.enumerated() {
                if let checked = checkSeat(seat, section, index, seatIndex, context, &seatKeys) {
                    listed.append(checked)
                }
            }
        case .absent:
            if !rangeGiven {
                problems.add(location.path, "needs seats or a range: a row has at least one seat")
            }
        case .invalid:
            break
        }

        let seatCount = listedCount + (bounds?.count ?? 0)
        guard problems.count == before, let key else { return (nil, seatCount) }
        return (SeatMapPlan.RowPlan(key: key, range: rangePlan, rangeFirst: rangeFirst, listed: listed), seatCount)
    }

    /// The bounds of a valid range; nil (reported) otherwise.
    private mutating func checkRange(_ members: [(String, JSONValue)], _ section: Int, _ row: Int) -> ClosedRange<Int>? {
        let location = SeatMapLocation.range(section, row)
        var fromValue: JSONValue?
        var toValue: JSONValue?
        for (field, value) in members {
            switch field {
            case "from": fromValue = value
            case "to": toValue = value
            default: unknownField(location, field, allowed: "from, to")
            }
        }
        let from = rangeBound(fromValue, location, "from")
        let to = rangeBound(toValue, location, "to")
        guard let from, let to else { return nil }
        if from > to {
            problems.add(location.path, "from (\(from)) must not be greater than to (\(to)); a range counts up, inclusive")
            return nil
        }
        let count = to - from + 1
        if count > V.maxRangeSeats {
            problems.add(
                location.path,
                "covers \(grouped(count)) seats (\(from) to \(to)); a range may cover at most \(grouped(V.maxRangeSeats))")
            return nil
        }
        return from...to
    }

    private mutating func rangeBound(_ value: JSONValue?, _ location: SeatMapLocation, _ field: String) -> Int? {
        let path = { location.path(field) }
        guard let value else {
            problems.add(path(), "is required: the range's \(field == "from" ? "first" : "last") seat number")
            return nil
        }
        guard case .number(let number) = value else {
            problems.add(path(), "must be a whole number ≥ 0, not \(value.typeName)")
            return nil
        }
        guard let integer = number.integer else {
            if number.value.isFinite && number.value == number.value.rounded() && number.value.magnitude > Double(V.maxRangeBound) {
                problems.add(path(), "must be at most \(V.maxRangeBound): range numbers become seat keys, at most 16 characters")
            } else {
                problems.add(path(), "must be a whole number ≥ 0 written without a fraction or exponent (got \(number.value.isFinite ? "\(number.value)" : describe(number.value)))")
            }
            return nil
        }
        if integer < 0 {
            problems.add(path(), "must be a whole number ≥ 0 (got \(integer))")
            return nil
        }
        if integer > V.maxRangeBound {
            problems.add(path(), "must be at most \(V.maxRangeBound): range numbers become seat keys, at most 16 characters")
            return nil
        }
        return Int(integer)
    }

    // MARK: Seats

    struct RowContext {
        let y: SeatMapField<Double>
        let category: SeatMapField<String>
        let sectionCategory: SeatMapField<String>
        let range: ClosedRange<Int>?
    }

    private mutating func checkSeat(
        _ element: JSONValue, _ section: Int, _ row: Int, _ index: Int, _ context: RowContext, _ seatKeys: inout [String: Int]
    ) -> SeatMapPlan.ListedSeat? {
        let location = SeatMapLocation.seat(section, row, index)
        guard case .object(let members) = element else {
            problems.add(location.path, "must be an object {key, x, y, category, accessible, restricted_view, companion}, not \(element.typeName)")
            return nil
        }
        let before = problems.count
        var keyValue: JSONValue?
        var xValue: JSONValue?
        var yValue: JSONValue?
        var categoryValue: JSONValue?
        var accessibleValue: JSONValue?
        var restrictedValue: JSONValue?
        var companionValue: JSONValue?
        for (field, value) in members {
            switch field {
            case "key": keyValue = value
            case "x": xValue = value
            case "y": yValue = value
            case "category": categoryValue = value
            case "accessible": accessibleValue = value
            case "restricted_view": restrictedValue = value
            case "companion": companionValue = value
            default: unknownField(location, field, allowed: "key, x, y, category, accessible, restricted_view, companion")
            }
        }

        let key = self.key(keyValue, location, required: "the seat's key, 1-16 characters of A-Z a-z 0-9 _ .")
        if let key {
            if let first = seatKeys.updateValue(index, forKey: key) {
                seatKeys[key] = first
                problems.add(
                    location.path("key"),
                    "duplicate seat key \(quoted(key)) in this row (also sections[\(section)].rows[\(row)].seats[\(first)].key)")
            } else if let range = context.range, Self.rangeContains(range, key) {
                problems.add(
                    location.path("key"),
                    "duplicate seat key \(quoted(key)) in this row: the row's range \(range.lowerBound)-\(range.upperBound) has this seat too")
            }
        }
        let x = coordinate(xValue, location, "x", required: "the seat's position along its row")
        var y = coordinate(yValue, location, "y")
        if case .absent = y {
            y = context.y
            if case .absent = y {
                problems.add(location.path("y"), "is required: give the seat a y, or its row a y")
            }
        }
        var category = categoryReference(categoryValue, location)
        if case .absent = category {
            category = context.category.isAbsent ? context.sectionCategory : context.category
            if case .absent = category {
                problems.add(location.path("category"), "is required: neither this seat, its row nor its section names a category")
            }
        }
        let accessible = flag(accessibleValue, location, "accessible")
        let restrictedView = flag(restrictedValue, location, "restricted_view")
        let companion = flag(companionValue, location, "companion")

        guard problems.count == before, let key, let x = x.value, let y = y.value, let category = category.value else { return nil }
        return SeatMapPlan.ListedSeat(
            key: key, x: x, y: y, category: category, accessible: accessible, restrictedView: restrictedView, companion: companion)
    }

    /// Whether a seat key is one of a range's (the decimal numbers, written without leading zeros).
    private static func rangeContains(_ range: ClosedRange<Int>, _ key: String) -> Bool {
        let utf8 = key.utf8
        guard let first = utf8.first, first != UInt8(ascii: "0") || utf8.count == 1 else { return false }
        guard utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let number = Int(key) else { return false }
        return range.contains(number)
    }

    // MARK: Typed fields

    private mutating func unknownField(_ location: SeatMapLocation, _ field: String, allowed: String) {
        problems.add(location.path(field), "is not a known field (allowed here: \(allowed))")
    }

    private mutating func reportBadKey(_ key: String, _ location: SeatMapLocation) {
        problems.add(location.path("key"), "must be 1-16 characters of A-Z a-z 0-9 _ . (got \(quoted(key)))")
    }

    /// A required key: reported and nil unless it is a valid key. `required` is a literal: this runs for every seat.
    private mutating func key(_ value: JSONValue?, _ location: SeatMapLocation, required: String) -> String? {
        guard case .valid(let key) = string(value, location, "key", required: required) else {
            return nil
        }
        guard SeatLabel.isValidKey(key) else {
            reportBadKey(key, location)
            return nil
        }
        return key
    }

    /// `required`, when given, explains what the missing field is for. Null counts as absent.
    private mutating func string(_ value: JSONValue?, _ location: SeatMapLocation, _ field: String, required: String? = nil) -> SeatMapField<String> {
        switch value {
        case .string(let text): return .valid(text)
        case nil, .null?: return absent(location, field, required)
        case let value?:
            problems.add(location.path(field), "must be a string, not \(value.typeName)")
            return .invalid
        }
    }

    private mutating func number(_ value: JSONValue?, _ location: SeatMapLocation, _ field: String, required: String? = nil) -> SeatMapField<Double> {
        switch value {
        case .number(let number): return .valid(number.value)
        case nil, .null?: return absent(location, field, required)
        case let value?:
            problems.add(location.path(field), "must be a number, not \(value.typeName)")
            return .invalid
        }
    }

    /// A finite number of magnitude at most 1,000,000.
    private mutating func coordinate(_ value: JSONValue?, _ location: SeatMapLocation, _ field: String, required: String? = nil) -> SeatMapField<Double> {
        let given = number(value, location, field, required: required)
        if case .valid(let number) = given, !(number.isFinite && number.magnitude <= V.maxCoordinate) {
            problems.add(location.path(field), "must be between -1,000,000 and 1,000,000 map units (got \(describe(number)))")
            return .invalid
        }
        return given
    }

    private mutating func flag(_ value: JSONValue?, _ location: SeatMapLocation, _ field: String) -> Bool {
        switch value {
        case .bool(let flag): return flag
        case nil, .null?: return false
        case let value?:
            problems.add(location.path(field), "must be true or false, not \(value.typeName)")
            return false
        }
    }

    private mutating func array(_ value: JSONValue?, _ location: SeatMapLocation, _ field: String, required: String? = nil) -> SeatMapField<[JSONValue]> {
        switch value {
        case .array(let elements): return .valid(elements)
        case nil, .null?: return absent(location, field, required)
        case let value?:
            problems.add(location.path(field), "must be an array, not \(value.typeName)")
            return .invalid
        }
    }

    private mutating func object(
        _ value: JSONValue?, _ location: SeatMapLocation, _ field: String, shape: String
    ) -> SeatMapField<[(String, JSONValue)]> {
        switch value {
        case .object(let members): return .valid(members)
        case nil, .null?: return .absent
        case let value?:
            problems.add(location.path(field), "must be an object \(shape), not \(value.typeName)")
            return .invalid
        }
    }

    private mutating func absent<Value>(_ location: SeatMapLocation, _ field: String, _ required: String?) -> SeatMapField<Value> {
        guard let required else { return .absent }
        problems.add(location.path(field), "is required: \(required)")
        return .invalid
    }
}

extension Optional where Wrapped == JSONValue {
    fileprivate var isAbsentOrNull: Bool {
        switch self {
        case nil, .null?: true
        default: false
        }
    }
}

/// The rows of one statement's result, copied out of libpq (text format).
public struct PGResult: Sendable {
    public let columns: [String]
    /// Row-major cell values; nil is SQL NULL.
    let cells: [String?]
    /// Rows affected by INSERT/UPDATE/DELETE (from the command tag), or returned by SELECT.
    public let affectedRows: Int

    public init(columns: [String], cells: [String?], affectedRows: Int) {
        self.columns = columns
        self.cells = cells
        self.affectedRows = affectedRows
    }

    public var count: Int { columns.isEmpty ? 0 : cells.count / columns.count }
    public var isEmpty: Bool { count == 0 }

    public subscript(row: Int) -> PGRow {
        PGRow(result: self, index: row)
    }

    public var rows: [PGRow] { (0..<count).map { self[$0] } }
    public var first: PGRow? { isEmpty ? nil : self[0] }

    func columnIndex(_ name: String) -> Int? { columns.firstIndex(of: name) }
}

/// One row; typed accessors throw a `.decoding` error naming the column on a bad value.
public struct PGRow: Sendable {
    let result: PGResult
    let index: Int

    public func value(_ column: String) throws(PGError) -> String? {
        guard let position = result.columnIndex(column) else {
            throw PGError(kind: .decoding, message: "no column \(column) in result")
        }
        return result.cells[index * result.columns.count + position]
    }

    public func string(_ column: String) throws(PGError) -> String {
        guard let value = try value(column) else { throw PGError(kind: .decoding, message: "column \(column) is NULL") }
        return value
    }

    public func optionalString(_ column: String) throws(PGError) -> String? { try value(column) }

    public func int(_ column: String) throws(PGError) -> Int {
        guard let value = Int(try string(column)) else { throw PGError(kind: .decoding, message: "column \(column) is not an integer") }
        return value
    }

    public func optionalInt(_ column: String) throws(PGError) -> Int? {
        guard let text = try value(column) else { return nil }
        guard let value = Int(text) else { throw PGError(kind: .decoding, message: "column \(column) is not an integer") }
        return value
    }

    public func double(_ column: String) throws(PGError) -> Double {
        guard let value = Double(try string(column)) else { throw PGError(kind: .decoding, message: "column \(column) is not a number") }
        return value
    }

    public func bool(_ column: String) throws(PGError) -> Bool {
        switch try string(column) {
        case "t": return true
        case "f": return false
        default: throw PGError(kind: .decoding, message: "column \(column) is not a boolean")
        }
    }
}

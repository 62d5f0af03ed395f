import Foundation
import QuorixTestSupport
import Testing

/// `quorix import`, run as a user would: the real binary against a real database.
@Suite struct ImportCommandTests {
    @Test func importsValidFilesAndReportsEveryProblemOfAnInvalidOne() async throws {
        let conninfo = try await TestCluster.shared.createDatabase()
        defer { try? TestCluster.shared.dropDatabase(conninfo: conninfo) }
        let invalid = FileManager.default.temporaryDirectory.appendingPathComponent("quorix-invalid-\(TestCluster.randomHex(bytes: 4)).json").path
        try #"{"name": "", "categories": [{"key": "a"}], "sections": [{"key": "BAD-KEY", "rows": [{"key": "A", "y": 1, "seats": [{"key": "1", "x": 0, "category": "nope"}]}]}], "extra": true}"#
            .write(toFile: invalid, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: invalid) }

        let result = try Subprocess.run(
            try PackagePaths.quorixBinary(),
            ["import", "--database-url", conninfo, PackagePaths.root + "/SeatMaps/theatre.json", invalid],
            timeout: .seconds(120))

        #expect(result.status == 1, "an invalid file makes the command fail")
        // Every problem of the invalid file, each with its JSON path.
        #expect(result.standardError.contains("4 problems, nothing stored"), "\(result.standardError)")
        for path in ["name:", "extra:", "sections[0].key:", "sections[0].rows[0].seats[0].category:"] {
            #expect(result.standardError.contains(path), "missing \(path) in \(result.standardError)")
        }
        // Plain progress lines when standard error is not a terminal.
        #expect(result.standardError.contains("import: [0/2] validating"))
        // The valid file is stored anyway, and announced on standard output as JSON.
        let line = try #require(result.standardOutput.split(separator: "\n").last)
        let stored = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(stored["seat_count"] as? Int == 1_339)
        let counts = try TestCluster.psql(conninfo, "SELECT count(*) FROM seatmaps; SELECT count(*) FROM seats")
        #expect(counts.split(separator: "\n") == ["1", "1339"], "only the valid map is stored")
    }
}

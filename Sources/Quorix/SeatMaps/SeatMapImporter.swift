import Foundation
public import Logging
public import Loop
public import PG

/// Loads seat-map files: `quorix import`, and the sample maps an embedded server loads on its
/// first run. Reading, parsing and validating happen off the loop; storing happens on it.
public enum SeatMapImporter {
    public struct FileOutcome: Sendable {
        public let path: String
        public let plan: SeatMapStore.InsertPlan?
        /// Why the file cannot be imported: read errors, JSON errors, or every validation problem.
        public let problems: [String]
    }

    /// Reads and validates one file. Blocking: call off the loop.
    public static func prepare(path: String) -> FileOutcome {
        guard let data = FileManager.default.contents(atPath: path) else {
            return FileOutcome(path: path, plan: nil, problems: ["cannot read the file (does it exist, and may quorix read it?)"])
        }
        if data.count > SeatMapRoutes.uploadLimit {
            return FileOutcome(path: path, plan: nil, problems: ["the file is \(data.count) bytes; seat maps are at most \(SeatMapRoutes.uploadLimit) bytes"])
        }
        switch SeatMapIntake.prepare(Array(data)) {
        case .notJSON(let reason): return FileOutcome(path: path, plan: nil, problems: ["not valid JSON: \(reason)"])
        case .invalid(let problems): return FileOutcome(path: path, plan: nil, problems: problems.map { "\($0.path.isEmpty ? "(document)" : $0.path): \($0.message)" })
        case .ready(let plan): return FileOutcome(path: path, plan: plan, problems: [])
        }
    }

    /// The `.json` files of a folder, sorted by name.
    public static func jsonFiles(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted().map { directory + "/" + $0 }
    }

    /// Loads the sample maps into an empty database (the embedded default's first run).
    @LoopActor
    public static func loadSamplesIfEmpty(directory: String, pool: PGPool, logger: Logger) async throws {
        let existing = try await pool.query("SELECT EXISTS (SELECT 1 FROM seatmaps) AS any")
        guard try existing.first?.bool("any") == false else { return }
        let files = jsonFiles(in: directory)
        let store = SeatMapStore(pool: pool)
        for path in files {
            let outcome = await Task.detached { prepare(path: path) }.value
            guard let plan = outcome.plan else {
                logger.error("sample seat map is invalid", metadata: ["file": "\(path)", "problems": "\(outcome.problems.prefix(5))"])
                continue
            }
            let stored = try await store.store(plan, ownerKeyID: nil)
            logger.info("sample seat map loaded", metadata: ["file": "\(path)", "seatmap_id": "\(stored.id)", "seats": "\(stored.seatCount)"])
        }
    }
}

import Foundation
public import PG

/// Finds the project's `Migrations/` (and later `SeatMaps/`) folders: an explicit setting, then
/// the working directory, then the folders above the executable (a build under `.build/`).
public enum ResourceLocator {
    public struct NotFound: Error, CustomStringConvertible {
        public let description: String
    }

    public static func directory(named name: String, explicit: String?, environmentName: String) throws -> String {
        if let explicit {
            guard isDirectory(explicit) else {
                throw NotFound(description: "\(environmentName)=\(explicit) is not a directory")
            }
            return explicit
        }
        var candidates = [FileManager.default.currentDirectoryPath + "/" + name]
        var folder = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            candidates.append(folder.appendingPathComponent(name).path)
            folder = folder.deletingLastPathComponent()
        }
        if let found = candidates.first(where: isDirectory) { return found }
        throw NotFound(description: "cannot find the \(name)/ folder; run quorix from the project folder or set \(environmentName)")
    }

    /// Reads `NNNN_name.sql` files in version order. Runs before the loop starts.
    public static func loadMigrations(from directory: String) throws -> [MigrationFile] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        return try names.compactMap { fileName -> MigrationFile? in
            guard let (version, name) = MigrationFile.parseFileName(fileName) else { return nil }
            let sql = try String(contentsOfFile: directory + "/" + fileName, encoding: .utf8)
            return MigrationFile(version: version, name: name, sql: sql)
        }
    }

    private static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}

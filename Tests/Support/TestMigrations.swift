public import PG
import Quorix

/// The project's `Migrations/*.sql`, loaded the way the server loads them.
public enum TestMigrations {
    public static func load() throws -> [MigrationFile] {
        let files = try ResourceLocator.loadMigrations(from: PackagePaths.migrationsDirectory)
        guard !files.isEmpty else { throw SupportError("no migrations found in \(PackagePaths.migrationsDirectory)") }
        return files
    }
}

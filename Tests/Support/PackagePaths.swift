import Foundation

/// Where the package and its built products are, found from the test binary
/// (`<root>/.build/<triple>/debug/quorixPackageTests.xctest`) or, failing that, from this file.
public enum PackagePaths {
    /// The package root (the folder holding Package.swift).
    public static let root: String = {
        if let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"),
            let range = executable.range(of: "/.build/")
        {
            let candidate = String(executable[..<range.lowerBound])
            if FileManager.default.fileExists(atPath: candidate + "/Package.swift") { return candidate }
        }
        // <root>/Tests/Support/PackagePaths.swift
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    public static var migrationsDirectory: String { root + "/Migrations" }

    /// The `quorix` executable built beside the test bundle (`.build/debug/quorix`), or the path in
    /// `QUORIX_TEST_BINARY`.
    public static func quorixBinary() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["QUORIX_TEST_BINARY"], !explicit.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: explicit) else {
                throw SupportError("QUORIX_TEST_BINARY=\(explicit) is not an executable file")
            }
            return explicit
        }
        var candidates: [String] = []
        if let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            // The test bundle sits in the same build folder as the executable.
            var folder = URL(fileURLWithPath: executable).deletingLastPathComponent()
            candidates.append(folder.appendingPathComponent("quorix").path)
            for _ in 0..<6 {
                folder.deleteLastPathComponent()
                candidates.append(folder.appendingPathComponent(".build/debug/quorix").path)
            }
        }
        candidates.append(root + "/.build/debug/quorix")
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            return found
        }
        throw SupportError(
            "the quorix executable was not found (looked at \(candidates.joined(separator: ", "))). "
                + "Build it first: swift build --build-tests (or swift build --product quorix), or set QUORIX_TEST_BINARY.")
    }
}

/// A failure of the test support itself, saying what to do about it.
public struct SupportError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

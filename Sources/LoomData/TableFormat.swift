import Foundation
import LoomCore

/// A tabular file format that Loom reads.
public enum TableFormat: String, Sendable, Codable, Hashable {
    /// Comma-separated values with a header row (RFC 4180 quoting).
    case csv
    /// JSON Lines: one JSON object per line.
    case jsonl

    /// The format a file name says (`.csv`, `.tsv`, `.jsonl`, `.ndjson`, each optionally `.gz`).
    public static func of(fileName: String) -> TableFormat? {
        var name = fileName.lowercased()
        if name.hasSuffix(".gz") { name.removeLast(3) }
        if name.hasSuffix(".csv") || name.hasSuffix(".tsv") { return .csv }
        if name.hasSuffix(".jsonl") || name.hasSuffix(".ndjson") { return .jsonl }
        return nil
    }
}

/// One file of a dataset.
public struct TableFile: Sendable, Hashable, Codable {
    /// Where it is on disk.
    public var path: String
    /// Its path inside the dataset (its name when the dataset is one file).
    public var relativePath: String
    public var format: TableFormat
    public var size: Int64
}

/// The files that make up a dataset: one file, or every table file under a folder (sorted by
/// path, all of one format).
public enum TableFiles {
    public static func list(_ path: String) throws(LoomError) -> [TableFile] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .notFound("No such file or folder: \(path)")
        }
        if !isDirectory.boolValue {
            let name = (path as NSString).lastPathComponent
            guard let format = TableFormat.of(fileName: name) else {
                throw .invalidParameter("Cannot tell the format of \(name): expected .csv, .tsv, .jsonl or .ndjson (optionally .gz)")
            }
            return [TableFile(path: path, relativePath: name, format: format, size: fileSize(path))]
        }
        guard let walker = FileManager.default.enumerator(atPath: path) else {
            throw .invalidParameter("Cannot read the folder \(path)")
        }
        var files: [TableFile] = []
        while let relative = walker.nextObject() as? String {
            let full = (path as NSString).appendingPathComponent(relative)
            var dir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: full, isDirectory: &dir), !dir.boolValue else { continue }
            let name = (relative as NSString).lastPathComponent
            if name.hasPrefix(".") { continue }
            guard let format = TableFormat.of(fileName: name) else { continue }
            files.append(TableFile(path: full, relativePath: relative, format: format, size: fileSize(full)))
        }
        files.sort { $0.relativePath.utf8.lexicographicallyPrecedes($1.relativePath.utf8) }
        guard let first = files.first else {
            throw .invalidParameter("The folder \(path) holds no .csv, .tsv, .jsonl or .ndjson files")
        }
        if let other = files.first(where: { $0.format != first.format }) {
            throw .invalidParameter("The folder \(path) mixes formats: \(first.relativePath) is \(first.format.rawValue), \(other.relativePath) is \(other.format.rawValue)")
        }
        return files
    }

    static func fileSize(_ path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
    }
}

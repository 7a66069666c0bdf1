import Crypto
import Foundation
import LoomCore

/// The files an index's sources name, under a root folder: walked in path order, hidden files
/// and folders skipped, include and exclude globs applied, and nothing outside the root
/// (symbolic links that lead out of it are skipped, not followed).
struct IndexSources {
    /// A file found, before it is read.
    struct File: Sendable, Equatable {
        /// Its path relative to the root (what documents are named by).
        var path: String
        var url: URL
        var size: Int64
        var modified: Millis
        var textField: String
    }

    /// The extensions a folder is read for when its source names no `include` patterns (other
    /// files are read as plain text when a pattern names them).
    static let readable: Set<String> = ["txt", "text", "md", "markdown", "html", "htm", "jsonl", "rst"]

    /// The longest file read; longer ones are reported and skipped.
    static let maxFileBytes: Int64 = 64 << 20

    let root: URL

    init(root: String) {
        self.root = URL(fileURLWithPath: root, isDirectory: true).standardizedFileURL.resolvingSymlinksInPath()
    }

    /// Every file the sources take, by path; problems for sources that cannot be read.
    func files(_ sources: [IndexSpec.Source]) -> (files: [File], problems: [String]) {
        var found: [String: File] = [:]
        var problems: [String] = []
        let rootPath = root.path.hasSuffix("/") ? root.path : root.path + "/"
        for source in sources {
            let base = root.appendingPathComponent(source.path == "." ? "" : source.path).standardizedFileURL.resolvingSymlinksInPath()
            guard base.path == root.path || base.path.hasPrefix(rootPath) else {
                problems.append("\(source.path): leads outside the sources root")
                continue
            }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: base.path, isDirectory: &isDirectory) else {
                problems.append("\(source.path): no such file or folder under the sources root")
                continue
            }
            var candidates: [URL] = []
            if isDirectory.boolValue {
                let keys: [URLResourceKey] = [.isRegularFileKey, .isSymbolicLinkKey]
                guard let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: keys, options: [.skipsHiddenFiles]) else {
                    problems.append("\(source.path): cannot be read")
                    continue
                }
                for case let url as URL in walker { candidates.append(url) }
            } else {
                candidates = [base]
            }
            for url in candidates {
                let real = url.resolvingSymlinksInPath()
                guard real.path.hasPrefix(rootPath) else { continue }
                guard let attributes = try? FileManager.default.attributesOfItem(atPath: real.path),
                    attributes[.type] as? FileAttributeType == .typeRegular
                else { continue }
                let relative = String(url.standardizedFileURL.path.dropFirst(rootPath.count))
                let withinSource = isDirectory.boolValue ? String(relative.dropFirst(source.path == "." ? 0 : source.path.count + 1)) : url.lastPathComponent
                guard !source.include.isEmpty || Self.readable.contains(url.pathExtension.lowercased()) else { continue }
                if !source.include.isEmpty, !source.include.contains(where: { Glob.matches($0, withinSource) }) { continue }
                if source.exclude.contains(where: { Glob.matches($0, withinSource) }) { continue }
                let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
                let modified = ((attributes[.modificationDate] as? Date)?.timeIntervalSince1970).map { Millis($0 * 1000) } ?? 0
                found[relative] = File(path: relative, url: real, size: size, modified: modified, textField: source.textField)
            }
        }
        return (found.values.sorted { $0.path < $1.path }, problems)
    }

    /// A file's bytes and their `sha256:` digest.
    static func read(_ file: File) throws -> (bytes: [UInt8], digest: String) {
        guard file.size <= maxFileBytes else { throw LoomError.invalidParameter("larger than \(maxFileBytes >> 20) MiB") }
        let data = try Data(contentsOf: file.url)
        let bytes = [UInt8](data)
        return (bytes, "sha256:" + Identifiers.hex(bytes: SHA256.hash(data: bytes)))
    }
}

/// Glob patterns over relative paths: `*` and `?` within a path segment, `**` across segments,
/// `[...]` classes. A pattern without `/` matches a file's name wherever it is.
enum Glob {
    static func matches(_ pattern: String, _ path: String) -> Bool {
        if !pattern.contains("/") {
            return fnmatch(pattern, (path as NSString).lastPathComponent, 0) == 0
        }
        if fnmatch(pattern, path, FNM_PATHNAME) == 0 { return true }
        // `**` crosses folders: `a/**/b` and `**/b` also match with no folder in between, and
        // `**` itself matches any run of segments.
        if pattern.contains("**") {
            let loose = pattern.replacingOccurrences(of: "**/", with: "*").replacingOccurrences(of: "/**", with: "/*")
            if fnmatch(loose, path, 0) == 0 { return true }
            if pattern.hasPrefix("**/"), fnmatch(String(pattern.dropFirst(3)), path, FNM_PATHNAME) == 0 { return true }
        }
        return false
    }
}

import Crypto
import Foundation
import LoomCore

/// What a dataset's files hold, by content: the digest that identifies a dataset version.
public struct TableContent: Sendable, Hashable, Codable {
    /// `sha256:<hex>`: of the file's bytes for one file; for a folder, of the sorted list of its
    /// files' paths and digests.
    public var digest: String
    /// Bytes as stored (compressed files count as stored).
    public var size: Int64
    public var format: TableFormat
    public var files: [FileDigest]

    public init(digest: String, size: Int64, format: TableFormat, files: [FileDigest]) {
        self.digest = digest
        self.size = size
        self.format = format
        self.files = files
    }

    /// The content of these files, read in this order.
    init(files digests: [FileDigest], format: TableFormat) {
        let total = digests.reduce(Int64(0)) { $0 + $1.size }
        if digests.count == 1 {
            self.init(digest: digests[0].digest, size: total, format: format, files: digests)
            return
        }
        var hasher = SHA256()
        for d in digests { hasher.update(data: Data("\(d.path)\t\(d.digest)\n".utf8)) }
        self.init(digest: "sha256:" + Identifiers.hex(bytes: hasher.finalize()), size: total, format: format, files: digests)
    }

    public struct FileDigest: Sendable, Hashable, Codable {
        public var path: String
        public var digest: String
        public var size: Int64
    }
}

/// Reads every record of a dataset's files into a sink, one chunk at a time: memory stays
/// bounded by the chunk size and the sink, whatever the size of the files.
public enum TableReader {
    /// Reads `files` in order into `sink`; `digesting: false` skips the files' SHA-256 (their
    /// digests are then empty).
    public static func read<S: RowSink>(_ files: [TableFile], into sink: inout S, digesting: Bool = true) throws -> TableContent {
        guard let format = files.first?.format else { throw LoomError.invalidParameter("no files to read") }
        var digests: [TableContent.FileDigest] = []
        var checked = SameColumns(inner: sink)
        for file in files {
            checked.file = file.relativePath
            checked.strict = file.format == .csv
            let (digest, size): (String, Int64)
            switch file.format {
            case .csv:
                var parser = CSVParser(sink: checked, delimiter: delimiter(of: file), file: file.relativePath)
                (digest, size) = try FileBytes.stream(file.path, digesting: digesting) { try parser.feed($0) }
                try parser.finish()
                checked = parser.sink
            case .jsonl:
                var parser = JSONLinesParser(sink: checked, file: file.relativePath)
                (digest, size) = try FileBytes.stream(file.path, digesting: digesting) { try parser.feed($0) }
                try parser.finish()
                checked = parser.sink
            }
            digests.append(.init(path: file.relativePath, digest: digest, size: size))
        }
        sink = checked.inner
        return TableContent(files: digests, format: format)
    }

    /// Tab for `.tsv` (and `.tsv.gz`) files, comma otherwise.
    static func delimiter(of file: TableFile) -> UInt8 {
        let name = file.relativePath.lowercased()
        return name.hasSuffix(".tsv") || name.hasSuffix(".tsv.gz") ? UInt8(ascii: "\t") : UInt8(ascii: ",")
    }

    /// Passes records on in the columns of the dataset: the first file's, plus (JSON Lines) keys
    /// first seen later. Every CSV file of a folder must have the same columns, in any order.
    struct SameColumns<Inner: RowSink>: RowSink {
        var inner: Inner
        var file = ""
        var strict = true
        private var columns: [String] = []
        private var index: [String: Int] = [:]
        /// For each column of the dataset, where it is in the current file's records (-1: absent).
        private var source: [Int] = []
        private var identity = true
        private let scratch = Row()

        init(inner: Inner) { self.inner = inner }

        mutating func begin(columns fileColumns: [String]) throws {
            if columns.isEmpty {
                columns = fileColumns
                for (i, c) in fileColumns.enumerated() { index[c] = i }
                try inner.begin(columns: fileColumns)
            } else {
                let missing = columns.filter { !fileColumns.contains($0) }
                let extra = fileColumns.filter { index[$0] == nil }
                if strict, !(missing.isEmpty && extra.isEmpty) {
                    throw LoomError.invalidParameter("\(file): its columns differ from the first file's (missing: \(missing.joined(separator: ", ")); extra: \(extra.joined(separator: ", ")))")
                }
                for c in extra { try addGlobal(c) }
            }
            source = Array(repeating: -1, count: columns.count)
            for (f, c) in fileColumns.enumerated() { source[index[c]!] = f }
            identity = source == Array(0..<columns.count)
        }

        private mutating func addGlobal(_ name: String) throws {
            index[name] = columns.count
            columns.append(name)
            source.append(-1)
            try inner.addColumn(name)
        }

        mutating func addColumn(_ name: String) throws {
            let fileIndex = source.reduce(0) { max($0, $1 + 1) }
            if index[name] == nil { try addGlobal(name) }
            source[index[name]!] = fileIndex
            identity = source == Array(0..<columns.count)
        }

        mutating func consume(_ row: Row) throws {
            if identity { return try inner.consume(row) }
            scratch.reset()
            scratch.line = row.line
            if scratch.source != row.source {
                scratch.file = row.file
                scratch.source = row.source
            }
            for f in source {
                if f >= 0 {
                    row.withBytes(f) { scratch.bytes.append(contentsOf: $0) }
                    scratch.endField(row.kind(f))
                } else {
                    scratch.endField(.null)
                }
            }
            try inner.consume(scratch)
        }
    }
}

/// MLflow's limits and naming rules, so that what MLflow refuses Loom refuses with the same message.
public enum Limits {
    public static let maxParamsTagsPerBatch = 100
    public static let maxMetricsPerBatch = 1000
    public static let maxEntitiesPerBatch = 1000
    public static let maxParamValueLength = 6000
    public static let maxTagValueLength = 8000
    public static let maxExperimentNameLength = 500
    public static let maxExperimentTagKeyLength = 250
    public static let maxExperimentTagValueLength = 20000
    public static let maxEntityKeyLength = 250
    public static let maxRegistryTagKeyLength = 250
    public static let maxRegistryTagValueLength = 100_000
    public static let maxAliasLength = 255
    public static let maxDatasetNameLength = 500
    public static let maxDatasetDigestLength = 36
    public static let maxDatasetSchemaLength = 1_048_575
    public static let maxDatasetSourceLength = 65_535
    public static let maxDatasetProfileLength = 16_777_215
    public static let maxInputTagKeyLength = 255
    public static let maxInputTagValueLength = 500
    public static let maxModelNameLength = 500
    public static let maxDescriptionLength = 65_535
    /// Search page sizes.
    public static let maxRunsPerSearch = 50_000
    public static let maxExperimentsPerSearch = 50_000
    public static let maxRegisteredModelsPerSearch = 1000
    public static let maxModelVersionsPerSearch = 200_000
    public static let maxLoggedModelsPerSearch = 1000
    public static let maxMetricHistoryPage = 25_000
}

/// Validation of names and values. Every check throws `invalidParameter` with MLflow's wording.
public enum Validate {
    /// Param, metric and tag keys: alphanumerics, `_ - . / :` and spaces; no path tricks.
    public static func key(_ name: String, path: @autoclosure () -> String = "key", limit: Int = Limits.maxEntityKeyLength) throws(LoomError) {
        if isPlainASCIIKey(name, limit: limit) { return }
        guard !name.isEmpty || path() != "key" else {
            throw .invalidParameter("Invalid value \"\" for parameter '\(path())' supplied: A key name must be provided.")
        }
        for scalar in name.unicodeScalars {
            if scalar.isASCIIAlnum || scalar == "_" || scalar == "-" || scalar == "." || scalar == "/" || scalar == " " || scalar == ":" { continue }
            let ok = scalar.properties.isAlphabetic || scalar.properties.numericType != nil || scalar == "_" || scalar == "-"
                || scalar == "." || scalar == "/" || scalar == " " || scalar == ":"
            if !ok {
                throw .invalidParameter("Invalid value \(jsonQuoted(name)) for parameter '\(path())' supplied: Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).")
            }
        }
        if !isUniquePath(name) {
            throw .invalidParameter("Invalid value \(jsonQuoted(name)) for parameter '\(path())' supplied: Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to '\(normalize(name))'")
        }
        try length(name, path: path(), limit: limit)
    }

    public static func length(_ value: String?, path: @autoclosure () -> String, limit: Int) throws(LoomError) {
        guard let value else { return }
        // MLflow counts characters (Python str length); a string has no more than UTF-8 bytes.
        if value.utf8.count > limit, value.unicodeScalars.count > limit {
            throw .invalidParameter("'\(path())' exceeds the maximum length of \(limit) characters")
        }
    }

    /// `path` (such as `metrics[3]`) is made only for an error message.
    public static func metric(_ m: Metric, path: @autoclosure () -> String = "") throws(LoomError) {
        try key(m.key, path: path().isEmpty ? "name" : "\(path()).name")
        if m.timestamp < 0 {
            throw .invalidParameter("Invalid value \(m.timestamp) for parameter '\(path().isEmpty ? "timestamp" : path() + ".timestamp")' supplied: metric '\(m.key)' (value=\(m.value)). Timestamp must be a nonnegative long (64-bit integer) ")
        }
    }

    /// Validates a param; a value longer than the limit is truncated, as MLflow's server does
    /// (`MLFLOW_TRUNCATE_LONG_VALUES` defaults to on).
    public static func param(_ p: Param, path: @autoclosure () -> String = "") throws(LoomError) -> Param {
        try key(p.key, path: path().isEmpty ? "key" : "\(path()).key")
        return Param(key: p.key, value: truncated(p.value, Limits.maxParamValueLength))
    }

    /// Validates a run tag; long values are truncated like params.
    public static func runTag(_ t: Tag, path: @autoclosure () -> String = "") throws(LoomError) -> Tag {
        try key(t.key, path: path().isEmpty ? "key" : "\(path()).key")
        return Tag(key: t.key, value: truncated(t.value, Limits.maxTagValueLength))
    }

    static func truncated(_ s: String, _ limit: Int) -> String {
        s.unicodeScalars.count <= limit ? s : String(String.UnicodeScalarView(s.unicodeScalars.prefix(limit)))
    }

    public static func experimentTag(_ t: Tag) throws(LoomError) {
        try key(t.key, limit: Limits.maxExperimentTagKeyLength)
        try length(t.value, path: "value", limit: Limits.maxExperimentTagValueLength)
    }

    public static func registryTag(_ t: Tag) throws(LoomError) {
        try key(t.key, limit: Limits.maxRegistryTagKeyLength)
        try length(t.value, path: "value", limit: Limits.maxRegistryTagValueLength)
    }

    public static func batchLimits(metrics: Int, params: Int, tags: Int) throws(LoomError) {
        func check(_ entity: String, _ limit: Int, _ n: Int) throws(LoomError) {
            if n > limit {
                throw .invalidParameter("A batch logging request can contain at most \(limit) \(entity). Got \(n) \(entity). Please split up \(entity) across multiple requests and try again.")
            }
        }
        try check("metrics", Limits.maxMetricsPerBatch, metrics)
        try check("params", Limits.maxParamsTagsPerBatch, params)
        try check("tags", Limits.maxParamsTagsPerBatch, tags)
        try check("metrics, params, and tags", Limits.maxEntitiesPerBatch, metrics + params + tags)
    }

    public static func experimentName(_ name: String?) throws(LoomError) {
        guard let name, !name.isEmpty else { throw .invalidParameter("Invalid experiment name: '\(name ?? "")'") }
        try length(name, path: "name", limit: Limits.maxExperimentNameLength)
    }

    public static func modelName(_ name: String?, path: String = "name") throws(LoomError) {
        guard let name, !name.allSatisfy(\.isWhitespace) else {
            throw .invalidParameter("Missing value for required parameter '\(path)'.")
        }
        if name.contains("/") || name.contains(":") {
            throw .invalidParameter("Invalid model name '\(name)'. Names cannot contain '/' or ':'.")
        }
        if !isUniquePath(name) {
            throw .invalidParameter("Invalid value \(jsonQuoted(name)) for parameter '\(path)' supplied: Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to '\(normalize(name))'")
        }
        try length(name, path: path, limit: Limits.maxModelNameLength)
    }

    /// A dataset name: 1–200 letters, digits, `.`, `_` or `-`, starting with a letter or digit
    /// (it names a folder of the artifact store).
    public static func datasetName(_ name: String?) throws(LoomError) {
        guard let name, !name.isEmpty else { throw .invalidParameter("Missing value for required parameter 'name'.") }
        guard name.utf8.count <= 200,
            let first = name.utf8.first, Self.isAlphanumeric(first),
            name.utf8.allSatisfy({ Self.isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") })
        else {
            throw .invalidParameter("Invalid dataset name '\(name)': use 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit.")
        }
    }

    static func isAlphanumeric(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z")) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
    }

    public static func alias(_ alias: String?) throws(LoomError) {
        guard let alias, !alias.isEmpty else { throw .invalidParameter("Registered model alias name cannot be empty.") }
        guard alias.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || $0.properties.numericType != nil || $0 == "_" || $0 == "-" }) else {
            throw .invalidParameter("Invalid alias name: '\(alias)'. Names may only contain alphanumerics, underscores (_), and dashes (-).")
        }
        try length(alias, path: "Registered model alias name", limit: Limits.maxAliasLength)
    }

    public static func aliasNotReserved(_ alias: String) throws(LoomError) {
        if alias.lowercased() == "latest" {
            throw .invalidParameter("'latest' alias name (case insensitive) is reserved.")
        }
        if let f = alias.first, f == "v" || f == "V", alias.count > 1, alias.dropFirst().allSatisfy(\.isNumber) {
            throw .invalidParameter("Version alias name '\(alias)' is reserved.")
        }
    }

    public static func runID(_ id: String, path: String = "run_id") throws(LoomError) {
        guard let first = id.unicodeScalars.first, first.isASCIIAlnum, id.count <= 256,
              id.unicodeScalars.allSatisfy({ $0.isASCIIAlnum || $0 == "_" || $0 == "-" })
        else {
            throw .invalidParameter("Invalid value \(jsonQuoted(id)) for parameter '\(path)' supplied.")
        }
    }

    public static func version(_ v: String, path: String = "version") throws(LoomError) -> Int64 {
        guard let n = Int64(v.trimmingSpaces) else {
            throw .invalidParameter("Parameter '\(path)' must be an integer, got '\(v)'.")
        }
        return n
    }

    /// One pass over the bytes for the everyday key (`loss`, `train/acc`): ASCII from the allowed
    /// set, not empty, within `limit`, no empty, `.` or `..` segment and no leading `..`. Anything
    /// else, valid or not, goes through the full check, which also words the error.
    static func isPlainASCIIKey(_ name: String, limit: Int) -> Bool {
        var name = name
        return name.withUTF8 { bytes -> Bool in
            guard !bytes.isEmpty, bytes.count <= limit else { return false }
            if bytes.count >= 2, bytes[0] == 0x2E, bytes[1] == 0x2E { return false }  // ".."
            var segmentLength = 0
            var segmentDots = 0
            for b in bytes {
                switch b {
                case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x5F, 0x2D, 0x20, 0x3A:  // alnum _ - space :
                    segmentLength += 1
                case 0x2E:  // .
                    segmentLength += 1
                    segmentDots += 1
                case 0x2F:  // /
                    if segmentLength == 0 || segmentLength == segmentDots && segmentDots <= 2 { return false }
                    segmentLength = 0
                    segmentDots = 0
                default:
                    return false
                }
            }
            return !(segmentLength == 0 || segmentLength == segmentDots && segmentDots <= 2)
        }
    }

    /// Mirrors `posixpath.normpath(name) == name` and the checks around it.
    static func isUniquePath(_ name: String) -> Bool {
        // Fast path for the common name that normalization cannot change: not empty, no leading
        // `..` or `/`, no empty, `.` or `..` segment.
        if !name.isEmpty, !name.hasPrefix(".."), !name.hasPrefix("/"), !name.contains("//"), !name.hasSuffix("/"),
           !name.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == "." || $0 == ".." }) {
            return true
        }
        return normalizedIsUnique(name)
    }

    /// The reference check: `posixpath.normpath(name) == name` and no leading `.`, `..` or `/`.
    static func normalizedIsUnique(_ name: String) -> Bool {
        let norm = normalize(name)
        return norm == name && norm != "." && !norm.hasPrefix("..") && !norm.hasPrefix("/")
    }

    static func normalize(_ path: String) -> String {
        if path.isEmpty { return "." }
        let initialSlashes = path.hasPrefix("//") && !path.hasPrefix("///") ? 2 : (path.hasPrefix("/") ? 1 : 0)
        var parts: [Substring] = []
        for comp in path.split(separator: "/", omittingEmptySubsequences: true) {
            if comp == "." { continue }
            if comp == ".." {
                if initialSlashes == 0 && (parts.isEmpty || parts.last == "..") { parts.append(comp) }
                else if !parts.isEmpty { parts.removeLast() }
                continue
            }
            parts.append(comp)
        }
        let joined = String(repeating: "/", count: initialSlashes) + parts.joined(separator: "/")
        return joined.isEmpty ? "." : joined
    }

    static func jsonQuoted(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }
}

extension Unicode.Scalar {
    var isASCIIAlnum: Bool {
        (value >= 48 && value <= 57) || (value >= 65 && value <= 90) || (value >= 97 && value <= 122)
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}

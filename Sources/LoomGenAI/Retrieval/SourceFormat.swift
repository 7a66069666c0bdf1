/// The file formats understood by ``DocumentParser``.
public enum SourceFormat: String, Sendable, Codable, CaseIterable {
    /// Plain text (also used for unknown extensions).
    case text
    /// Markdown (`.md`, `.markdown`), with optional YAML front matter.
    case markdown
    /// HTML (`.html`, `.htm`); visible text is extracted.
    case html
    /// JSON Lines (`.jsonl`): one JSON object per line, one document per object.
    case jsonl

    /// Detects the format from a path's extension (case-insensitive).
    ///
    /// `.md`/`.markdown` → ``markdown``, `.html`/`.htm` → ``html``,
    /// `.jsonl` → ``jsonl``; anything else (including no extension) → ``text``.
    public init(path: String) {
        let name = PathName.fileName(path)
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else {
            self = .text
            return
        }
        switch name[name.index(after: dot)...].lowercased() {
        case "md", "markdown": self = .markdown
        case "html", "htm": self = .html
        case "jsonl": self = .jsonl
        default: self = .text
        }
    }
}

/// Small helpers for relative paths.
enum PathName {
    /// The last component of a `/`- or `\`-separated path (the whole path if
    /// it has no separator, or the path itself if the last component is empty).
    static func fileName(_ path: String) -> String {
        let component = path.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last
        return component.map(String.init) ?? path
    }
}

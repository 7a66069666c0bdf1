import ArgumentParser
import Foundation
import LoomCore
import LoomPipelines
import LoomStore
import LoomTracking

/// `loom apply -f spec.yaml`: makes a spec the live one (today: pipelines, whose schedules and
/// triggers `loom server` then fires).
struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply", abstract: "Apply a spec: a pipeline becomes the version whose schedules and triggers the server fires.",
        discussion: """
            The spec is checked whole first (every problem with its line and field). A pipeline is recorded as a new \
            version when its text changed, and applied with the spec's folder as the folder its command steps run in. \
            Its cron schedules (UTC) and dataset triggers fire in `loom server`; its webhooks at \
            POST /api/v1/pipelines/NAME/hooks/HOOK. See docs/pipelines.md.
            """)

    @Option(name: .shortAndLong, help: "The spec (YAML).") var file: String
    @OptionGroup var output: OutputOptions
    @OptionGroup var storage: StoreOptions

    struct Report: Encodable {
        var pipeline: String
        var version: Int64
        var created: Bool
        var schedules: [String]
        var nextRuns: [String]
        var triggers: Int
    }

    func run() async throws {
        let (spec, _) = try PipelineCommand.load(file)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let (tracking, _) = try await storage.open(logger: cliLogger())
        let directory = URL(fileURLWithPath: file).standardizedFileURL.deletingLastPathComponent().path
        let (applied, created) = try await tracking.store.applyPipeline(
            spec, text: text, directory: directory, workspace: Workspace.defaultName, actor: NSUserName())
        let formatter = ISO8601DateFormatter()
        let next = spec.schedules.map { $0.cron.next(after: Date()).map(formatter.string(from:)) ?? "never" }
        let report = Report(
            pipeline: spec.name, version: applied.version, created: created, schedules: spec.schedules.map(\.cron.expression), nextRuns: next,
            triggers: spec.triggers.count)
        if output.json { return try Output.json(report) }
        print("pipeline \(spec.name) version \(applied.version)\(created ? " (new)" : "") applied: \(spec.schedules.count) schedule\(spec.schedules.count == 1 ? "" : "s"), \(spec.triggers.count) trigger\(spec.triggers.count == 1 ? "" : "s")")
        for (s, n) in zip(report.schedules, next) { print("  \(s): next at \(n)") }
    }
}

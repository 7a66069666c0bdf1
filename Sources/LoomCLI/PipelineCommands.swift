import ArgumentParser
import Foundation
import LoomCore
import LoomPipelines

/// `loom pipeline`.
struct PipelineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline", abstract: "Check and plan pipeline specs (docs/pipelines.md).",
        subcommands: [Validate.self, Plan.self])

    /// Reads a spec file and parses it; a problem names the file, line and field.
    static func load(_ path: String) throws -> (PipelineSpec, parseSeconds: Double) {
        guard let data = FileManager.default.contents(atPath: path) else { throw LoomError.notFound("No such file: \(path)") }
        guard let text = String(data: data, encoding: .utf8) else { throw LoomError.invalidParameter("\(path) is not UTF-8 text") }
        let started = DispatchTime.now().uptimeNanoseconds
        let spec = try PipelineSpec.parse(yaml: text, file: path)
        return (spec, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "validate", abstract: "Check a pipeline spec without running it: every problem, with its line and field.",
            discussion: "Exits 1 and lists the problems when the spec cannot run; prints a summary when it can.")

        @Option(name: .shortAndLong, help: "The spec (YAML).") var file: String

        func run() async throws {
            let (spec, _) = try PipelineCommand.load(file)
            let plan = try PipelinePlan(spec)
            print("\(file): pipeline \(spec.name): \(spec.steps.count) steps in \(plan.levelCount) levels, \(spec.parameters.count) parameters, \(spec.schedules.count) schedules, \(spec.triggers.count) triggers")
        }
    }

    struct Plan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "plan", abstract: "Print the order a pipeline's steps run in: levels of steps that may run at once.",
            discussion: "With --json, also the time parsing and planning took (planning_ms).")

        @Option(name: .shortAndLong, help: "The spec (YAML).") var file: String
        @OptionGroup var output: OutputOptions

        struct Report: Encodable {
            var pipeline: String
            var steps: Int
            var levels: [[String]]
            var parsingMs: Double
            var planningMs: Double
        }

        func run() async throws {
            let (spec, parseSeconds) = try PipelineCommand.load(file)
            let started = DispatchTime.now().uptimeNanoseconds
            let plan = try PipelinePlan(spec)
            let planSeconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            var levels = [[String]](repeating: [], count: plan.levelCount)
            for i in plan.order { levels[plan.levels[i]].append(spec.steps[i].name) }
            if output.json {
                try Output.json(Report(pipeline: spec.name, steps: spec.steps.count, levels: levels, parsingMs: parseSeconds * 1000, planningMs: planSeconds * 1000))
            } else {
                Output.table(["LEVEL", "STEPS"], levels.enumerated().map { [String($0.offset), $0.element.joined(separator: ", ")] })
            }
        }
    }
}

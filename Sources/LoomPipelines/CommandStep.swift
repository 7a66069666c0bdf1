import Foundation
import LoomCore
import Subprocess

#if canImport(System)
import System
#else
import SystemPackage
#endif

/// Runs a `command` step: `/bin/sh -c` with its inputs and outputs given as paths, both on the
/// command line (`${{ inputs.x }}`) and in the environment (`LOOM_INPUT_X`, `LOOM_OUTPUT_X`),
/// `MLFLOW_TRACKING_URI` and `MLFLOW_RUN_ID` set so that the mlflow client logs into the step's
/// run, and standard output and error written to the run's `logs/stdout.txt` and
/// `logs/stderr.txt` as they come. The process runs in a session of its own: cancelling the
/// step (a timeout, a cancelled run) sends the whole group SIGTERM, then SIGKILL 5 s later.
public struct CommandStep {
    /// Runs a command step's attempt (a worker's entry point; the runner calls it too).
    public static func run(_ invocation: StepInvocation, operations: any StepOperations) async throws -> [String: StepValue] {
        try await CommandStep(invocation: invocation, operations: operations).run()
    }

    let invocation: StepInvocation
    let operations: any StepOperations

    func run() async throws -> [String: StepValue] {
        let step = invocation.step
        guard let command = step.command else { throw StepFailure("step '\(step.name)' has no command") }
        let staging = FileManager.default.temporaryDirectory.appendingPathComponent("loom-step-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: staging) }

        var environment: [Environment.Key: String?] = [:]
        var values: [String: (text: String, variable: String)] = [:]
        for input in step.inputs {
            guard let value = invocation.inputs[input.name] else { throw StepFailure("input '\(input.name)' has no value") }
            let text: String
            switch value.type {
            case .dataset, .model, .file:
                let folder = (staging as NSString).appendingPathComponent("inputs/\(input.name)")
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                text = try await operations.localPath(of: value, staging: folder)
            default:
                text = value.value
            }
            let variable = Self.variable("LOOM_INPUT_", input.name)
            environment[Environment.Key(stringLiteral: variable)] = text
            values["inputs." + input.name] = (text, variable)
        }
        var outputPaths: [String: String] = [:]
        for output in step.outputs {
            let path = (staging as NSString).appendingPathComponent("outputs/\(output.name)")
            if output.type == .dataset || output.type == .model {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            } else {
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            }
            outputPaths[output.name] = path
            let variable = Self.variable("LOOM_OUTPUT_", output.name)
            environment[Environment.Key(stringLiteral: variable)] = path
            values["outputs." + output.name] = (path, variable)
        }
        for (name, value) in invocation.parameters {
            let variable = Self.variable("LOOM_PARAM_", name)
            environment[Environment.Key(stringLiteral: variable)] = value.text
            values["parameters." + name] = (value.text, variable)
        }
        for (key, value) in step.environment {
            environment[Environment.Key(stringLiteral: key)] = Substitution.text(value) { path in
                path.count == 2 ? values[path.joined(separator: ".")]?.text : nil
            }
        }
        if let uri = operations.trackingURI { environment["MLFLOW_TRACKING_URI"] = uri }
        environment["MLFLOW_RUN_ID"] = invocation.trackingRunID
        environment["LOOM_PIPELINE_RUN_ID"] = invocation.pipelineRunID
        environment["LOOM_STEP"] = step.name
        environment["LOOM_ATTEMPT"] = String(invocation.attempt)

        let line = Self.shellLine(command) { path in values[path.joined(separator: ".")] }
        let out = try await operations.logDestination(trackingRunID: invocation.trackingRunID, name: "stdout.txt", staging: staging)
        let err = try await operations.logDestination(trackingRunID: invocation.trackingRunID, name: "stderr.txt", staging: staging)
        let status: TerminationStatus
        do {
            let outFD = try FileDescriptor.open(FilePath(out.path), .writeOnly, options: [.create, .append], permissions: [.ownerReadWrite, .groupRead, .otherRead])
            let errFD: FileDescriptor
            do {
                errFD = try FileDescriptor.open(FilePath(err.path), .writeOnly, options: [.create, .append], permissions: [.ownerReadWrite, .groupRead, .otherRead])
            } catch {
                try? outFD.close()
                throw error
            }
            var options = PlatformOptions()
            options.createSession = true
            options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .seconds(5))]
            let directory = invocation.directory ?? staging
            let result = try await Subprocess.run(
                .path("/bin/sh"), arguments: ["-c", line], environment: .inherit.updating(environment),
                workingDirectory: FilePath(directory), platformOptions: options, input: .none,
                output: .fileDescriptor(outFD, closeAfterSpawningProcess: true),
                error: .fileDescriptor(errFD, closeAfterSpawningProcess: true))
            status = result.terminationStatus
        } catch {
            await storeLogs(out, err)
            if Task.isCancelled || error is CancellationError { throw CancellationError() }
            throw StepFailure("the command could not start: \(error)", retryable: true)
        }
        await storeLogs(out, err)
        switch status {
        case .exited(0):
            break
        case .exited(let code):
            throw StepFailure("the command exited with status \(code) (its output is in the step run's logs/stderr.txt)\(Self.tail(err.path))", retryable: true)
        case .signaled(let signal):
            if Task.isCancelled { throw CancellationError() }
            throw StepFailure("the command was killed by signal \(signal)", retryable: true)
        }
        var outputs: [String: StepValue] = [:]
        for output in step.outputs {
            outputs[output.name] = try await operations.commitOutput(name: output.name, type: output.type, path: outputPaths[output.name]!, invocation: invocation)
        }
        return outputs
    }

    private func storeLogs(_ out: LogDestination, _ err: LogDestination) async {
        for (destination, name) in [(out, "stdout.txt"), (err, "stderr.txt")] where !destination.isStored {
            try? await operations.storeLog(trackingRunID: invocation.trackingRunID, name: name, from: destination.path)
        }
    }

    /// The last line of standard error, for the step's message.
    static func tail(_ path: String) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > 600 ? size - 600 : 0)
        let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return "" }
        guard let last = text.split(separator: "\n").last.map({ $0.trimmingCharacters(in: .whitespaces) }), !last.isEmpty else { return "" }
        return ": " + (last.count > 240 ? "…" + last.suffix(240) : last)
    }

    /// `LOOM_INPUT_` + the name upper-cased, anything but letters and digits as `_`.
    static func variable(_ prefix: String, _ name: String) -> String {
        prefix + String(name.uppercased().unicodeScalars.map { ("A"..."Z").contains($0) || ("0"..."9").contains($0) ? Character($0) : "_" })
    }

    /// The command line with each `${{ ... }}` replaced so that no value can change the shell's
    /// reading of it: outside quotes by the value in single quotes, inside double quotes by its
    /// environment variable, inside single quotes by closing them around the quoted value.
    static func shellLine(_ command: String, _ lookup: ([String]) -> (text: String, variable: String)?) -> String {
        var out = ""
        var at = command.startIndex
        var quote: Character?
        func scan(_ s: Substring) {
            var escaped = false
            for c in s {
                if escaped { escaped = false; continue }
                switch (quote, c) {
                case (nil, "\\"), ("\"", "\\"): escaped = true
                case (nil, "'"), (nil, "\""): quote = c
                case ("'", "'"), ("\"", "\""): quote = nil
                default: break
                }
            }
        }
        for ref in References.find(in: command) {
            let before = command[at..<ref.range.lowerBound]
            scan(before)
            out += before
            if let value = lookup(ref.path) {
                switch quote {
                case "\"": out += "${\(value.variable)}"
                case "'": out += "'" + quoted(value.text) + "'"
                default: out += quoted(value.text)
                }
            } else {
                out += command[ref.range]
            }
            at = ref.range.upperBound
        }
        out += command[at...]
        return out
    }

    static func quoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

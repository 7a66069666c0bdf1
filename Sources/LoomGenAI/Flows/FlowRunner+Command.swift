import Foundation
import LoomCore
import Subprocess
import SystemPackage

/// A `tool` node's command (docs/flows.md, "Tools"): a program and its arguments (no shell), the
/// node's `input` on its standard input (text as it is, anything else as JSON), what it writes
/// to standard output as the node's `text` (and `body`, parsed when it is JSON), its exit status
/// as `status`. A status other than 0 fails the node with the end of its standard error.
extension FlowRunner {
    /// Output kept from a command, at most.
    static let commandOutputLimit = 16 << 20

    func runCommand(
        _ node: String, command: JSONValue, input: JSONValue?, directory: String?, environment: [String: String], timeout: Double
    ) async throws -> JSONValue {
        guard let argv = command.arrayValue?.map(FlowValues.text), let program = argv.first, !program.isEmpty else {
            throw Failure(node: node, message: "command must be a list: [program, argument, ...]")
        }
        let stdin: String
        switch input {
        case nil, .null?: stdin = ""
        case .string(let text)?: stdin = text
        case let value?: stdin = value.jsonString
        }
        let executable: Executable = program.contains("/") ? .path(FilePath(program)) : .name(program)
        var platform = PlatformOptions()
        platform.createSession = true
        platform.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .seconds(2))]
        let options = platform
        var env: [Environment.Key: String?] = [:]
        for (k, v) in environment { env[Environment.Key(stringLiteral: k)] = v }
        let finalEnv = env
        let run: @Sendable () async throws -> ExecutionResult<Void, StringOutput<UTF8>, StringOutput<UTF8>> = {
            try await Subprocess.run(
                executable, arguments: Arguments(Array(argv.dropFirst())), environment: .inherit.updating(finalEnv),
                workingDirectory: directory.map { FilePath($0) }, platformOptions: options, input: .string(stdin),
                output: .string(limit: Self.commandOutputLimit), error: .string(limit: 1 << 20))
        }
        let result: ExecutionResult<Void, StringOutput<UTF8>, StringOutput<UTF8>>
        do {
            result = try await withThrowingTaskGroup(of: ExecutionResult<Void, StringOutput<UTF8>, StringOutput<UTF8>>?.self) { group in
                group.addTask { try await run() }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(Int64(max(0.001, timeout) * 1000)))
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let done = first else {
                    throw Failure(node: node, message: "\(program) did not finish within \(timeout) s (it was stopped)")
                }
                return done
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(node: node, message: "\(program) could not run: \(error)")
        }
        let text = result.standardOutput
        switch result.terminationStatus {
        case .exited(0):
            return .object([
                "status": .int(0), "body": (try? JSONValue.parse(Array(text.utf8))) ?? .string(text), "text": .string(text),
            ])
        case .exited(let code):
            let tail = result.standardError.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").last.map(String.init) ?? ""
            throw Failure(node: node, message: "\(program) exited with status \(code)\(tail.isEmpty ? "" : ": " + String(tail.suffix(300)))")
        case .signaled(let signal):
            throw Failure(node: node, message: "\(program) was killed by signal \(signal)")
        }
    }
}

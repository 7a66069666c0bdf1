import ArgumentParser
import Foundation
import LoomCore

/// `loom`: the Loom server and command-line client.
public struct LoomCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "loom",
        abstract: "Loom runs the lifecycle of AI workloads: tracking, registry, and more, in one binary.",
        version: "loom \(LoomVersionInfo.current)",
        subcommands: [
            ServerCommand.self, DBCommand.self, ExperimentsCommand.self, RunsCommand.self, ModelsCommand.self,
            UsersCommand.self, TokensCommand.self, DatasetsCommand.self, TrainCommand.self, PredictCommand.self,
            PipelineCommand.self, ApplyCommand.self, LineageCommand.self, WorkerCommand.self, EndpointCommand.self, DriftCommand.self, MonitorCommand.self, QuickstartCommand.self,
            GatewayCommand.self, CatalogCommand.self, PromptCommand.self, IndexCommand.self, FlowCommand.self, EvalCommand.self,
        ])

    public init() {}

    /// Runs the command line and exits with Loom's exit codes: 0 success, 1 failure,
    /// 2 not found, 64 usage error. Errors print one line to standard error.
    public static func runMain(_ arguments: [String]? = nil) async -> Never {
        do {
            var command = try parseAsRoot(arguments)
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
            await OpenStores.closeAll()
            Foundation.exit(0)
        } catch let error as LoomError {
            await OpenStores.closeAll()
            FileHandle.standardError.write(Data("loom: error: \(error.message)\n".utf8))
            Foundation.exit(error.code == .notFound ? 2 : 1)
        } catch {
            await OpenStores.closeAll()
            let code = exitCode(for: error)
            if code == .success {
                // --help and --version print to standard output and succeed.
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            let message = fullMessage(for: error)
            // A command that printed its own outcome (`datasets validate`) and only sets the code.
            if message.isEmpty { Foundation.exit(code.rawValue) }
            FileHandle.standardError.write(Data((message.hasPrefix("Error:") || message.contains("\n") ? message : "loom: error: \(message)").utf8 + [0x0A]))
            Foundation.exit(code == .validationFailure ? 64 : 1)
        }
    }
}

enum LoomVersionInfo {
    static let current = "0.1.0"
}

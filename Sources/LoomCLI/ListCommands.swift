import ArgumentParser
import Foundation
import LoomCore
import LoomStore
import LoomTracking

/// `loom experiments list|show`.
struct ExperimentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "experiments", abstract: "List and show experiments.", subcommands: [List.self, Show.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List experiments.")
        @Option(help: "MLflow filter, e.g. \"name LIKE 'fraud%'\".") var filter: String?
        @Flag(help: "Include deleted experiments.") var all = false
        @Option(help: "Maximum number to list.") var limit = 1000
        @OptionGroup var output: OutputOptions
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger())
            let page = try await tracking.searchExperiments(filter: filter, orderBy: ["experiment_id ASC"], viewType: all ? .all : .activeOnly, maxResults: limit, pageToken: nil, workspace: nil)
            await tracking.store.shutdown()
            if output.json { return try Output.json(page.items) }
            Output.table(["ID", "NAME", "STAGE", "CREATED", "ARTIFACTS"], page.items.map {
                [$0.id, $0.name, $0.lifecycleStage.rawValue, Output.time($0.creationTime), $0.artifactLocation]
            })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one experiment by id or name.")
        @Argument(help: "Experiment id or name.") var experiment: String
        @OptionGroup var output: OutputOptions
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger())
            let e: Experiment
            if Int64(experiment) != nil, let byID = try await tracking.store.experiment(id: experiment) {
                e = byID
            } else {
                e = try await tracking.experiment(named: experiment)
            }
            let runs = try await tracking.store.countRuns(experimentIDs: [e.id], viewType: .activeOnly)
            await tracking.store.shutdown()
            if output.json { return try Output.json(e) }
            print("id:         \(e.id)\nname:       \(e.name)\nstage:      \(e.lifecycleStage.rawValue)\nartifacts:  \(e.artifactLocation)\ncreated:    \(Output.time(e.creationTime))\nruns:       \(runs)")
            for t in e.tags { print("tag:        \(t.key)=\(t.value)") }
        }
    }
}

/// `loom runs list|show`.
struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "runs", abstract: "List and show runs.", subcommands: [List.self, Show.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List runs of an experiment.")
        @Option(name: .shortAndLong, help: "Experiment id (default 0).") var experiment = "0"
        @Option(help: "MLflow filter, e.g. \"metrics.acc > 0.9\".") var filter: String?
        @Option(name: .customLong("order-by"), help: "Ordering, e.g. \"metrics.acc DESC\" (repeatable).") var orderBy: [String] = []
        @Option(help: "Maximum number to list.") var limit = 100
        @Flag(help: "Include deleted runs.") var all = false
        @OptionGroup var output: OutputOptions
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger())
            _ = try await tracking.experiment(id: experiment)
            let page = try await tracking.searchRuns(experimentIDs: [experiment], filter: filter, viewType: all ? .all : .activeOnly, maxResults: limit, orderBy: orderBy, pageToken: nil)
            await tracking.store.shutdown()
            if output.json { return try Output.json(page.items) }
            Output.table(["RUN ID", "NAME", "STATUS", "STARTED", "METRICS"], page.items.map { r in
                [r.info.runID, r.info.runName, r.info.status.rawValue, Output.time(r.info.startTime),
                 r.metrics.prefix(4).map { "\($0.key)=\(String(format: "%.4g", $0.value))" }.joined(separator: " ")]
            })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one run.")
        @Argument(help: "Run id.") var runID: String
        @OptionGroup var output: OutputOptions
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger())
            let run = try await tracking.run(id: runID)
            await tracking.store.shutdown()
            if output.json { return try Output.json(run) }
            let i = run.info
            print("run:        \(i.runID)\nname:       \(i.runName)\nexperiment: \(i.experimentID)\nstatus:     \(i.status.rawValue)\nstage:      \(i.lifecycleStage.rawValue)\nstarted:    \(Output.time(i.startTime))\nended:      \(Output.time(i.endTime))\nartifacts:  \(i.artifactURI)")
            for p in run.params { print("param:      \(p.key)=\(p.value)") }
            for m in run.metrics { print("metric:     \(m.key)=\(m.value) (step \(m.step))") }
            for t in run.tags where !t.key.hasPrefix("mlflow.") { print("tag:        \(t.key)=\(t.value)") }
        }
    }
}

/// `loom models list|show`.
struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "models", abstract: "List and show registered models.", subcommands: [List.self, Show.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List registered models.")
        @Option(help: "MLflow filter, e.g. \"name LIKE 'fraud%'\".") var filter: String?
        @Option(help: "Maximum number to list.") var limit = 100
        @Flag(help: "List prompts instead of models.") var prompts = false
        @OptionGroup var output: OutputOptions
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger())
            let page = try await tracking.searchRegisteredModels(filter: filter, maxResults: limit, orderBy: [], pageToken: nil, prompts: prompts)
            await tracking.store.shutdown()
            if output.json { return try Output.json(page.items) }
            Output.table(["NAME", "LATEST", "ALIASES", "UPDATED"], page.items.map { m in
                [m.name, m.latestVersions.map { Int($0.version) ?? 0 }.max().map(String.init) ?? "-",
                 m.aliases.map { "\($0.alias)→v\($0.version)" }.joined(separator: " "), Output.time(m.lastUpdatedTimestamp)]
            })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a registered model and its versions.")
        @Argument(help: "Model name.") var name: String
        @OptionGroup var output: OutputOptions
        @OptionGroup var storage: StoreOptions

        func run() async throws {
            let (tracking, _) = try await storage.open(logger: cliLogger())
            let model = try await tracking.registeredModel(name: name)
            let versions = try await tracking.store.searchModelVersions(EntitySearch(
                filter: [SearchClause(entity: .attribute, key: "name", comparator: .equal, value: .string(name))], maxResults: 10_000))
            await tracking.store.shutdown()
            struct Shown: Encodable { let model: RegisteredModel; let versions: [ModelVersion] }
            if output.json { return try Output.json(Shown(model: model, versions: versions.items)) }
            print("name:        \(model.name)\ndescription: \(model.description ?? "")\nupdated:     \(Output.time(model.lastUpdatedTimestamp))")
            for a in model.aliases { print("alias:       \(a.alias) → version \(a.version)") }
            for t in model.tags { print("tag:         \(t.key)=\(t.value)") }
            Output.table(["VERSION", "STAGE", "SOURCE", "RUN", "ALIASES"], versions.items.map {
                [$0.version, $0.currentStage.rawValue, $0.source, $0.runID ?? "-", $0.aliases.joined(separator: " ")]
            })
        }
    }
}

import Foundation
import LoomCore
import LoomGenAI
import LoomStore
import LoomTracking

/// The prompt registry (docs/prompts.md) on top of the model registry, stored the way MLflow
/// stores prompts, so that `mlflow.genai.register_prompt` / `load_prompt` and Loom's API see the
/// same prompts: versions with their templates, model settings and commit messages, aliases,
/// diffs, rendering. The gateway reads route prompts through it.
public struct PromptService: PromptSource {
    let tracking: TrackingService

    public init(tracking: TrackingService) {
        self.tracking = tracking
    }

    /// A prompt version with its content.
    public struct Version: Sendable {
        public var version: ModelVersion
        public var content: PromptContent
    }

    /// A new version of `name` (the prompt is created with its first one). A registered model of
    /// that name that is not a prompt is refused.
    public func create(name: String, content: PromptContent, commitMessage: String?, tags: [Tag], workspace: String, actor: String) async throws -> Version {
        if let existing = try? await tracking.registeredModel(name: name, workspace: workspace) {
            guard Self.isPrompt(existing) else { throw LoomError.invalidParameter("\(name) is a registered model, not a prompt") }
        } else {
            do {
                _ = try await tracking.createRegisteredModel(
                    name: name, description: nil, tags: [Tag(key: PromptContent.isPromptTag, value: "true")], workspace: workspace)
            } catch let e as LoomError where e.code == .alreadyExists {
                // Made meanwhile by another request: fine if it is a prompt.
                guard Self.isPrompt(try await tracking.registeredModel(name: name, workspace: workspace)) else { throw e }
            }
        }
        let version = try await tracking.createModelVersion(
            name: name, source: "prompt-template", runID: nil, runLink: nil, description: commitMessage, tags: content.tags + tags, modelID: nil,
            userID: actor, workspace: workspace)
        return Version(version: version, content: content)
    }

    static func isPrompt(_ model: RegisteredModel) -> Bool {
        model.tags.contains { $0.key == PromptContent.isPromptTag && $0.value == "true" }
    }

    /// The prompt (refusing plain models) with its versions, newest first.
    public func prompt(name: String, workspace: String) async throws -> (RegisteredModel, [Version]) {
        let model = try await tracking.registeredModel(name: name, workspace: workspace)
        guard Self.isPrompt(model) else { throw LoomError.notFound("No prompt named \(name) (\(name) is a registered model)") }
        let versions = try await tracking.searchModelVersions(
            filter: "name = '\(name.replacingOccurrences(of: "'", with: "\\'"))'", maxResults: 10_000, orderBy: ["version_number DESC"], pageToken: nil,
            workspace: workspace, prompts: true)
        return (model, versions.items.compactMap { v in PromptContent(tags: v.tags).map { Version(version: v, content: $0) } })
    }

    /// The version a reference means: an alias, a number, or the latest.
    public func version(_ reference: PromptReference, workspace: String) async throws -> Version {
        let mv: ModelVersion
        if let alias = reference.alias {
            mv = try await tracking.modelVersion(name: reference.name, alias: alias, workspace: workspace)
        } else if let number = reference.version {
            mv = try await tracking.modelVersion(name: reference.name, version: number, workspace: workspace)
        } else {
            guard let latest = try await prompt(name: reference.name, workspace: workspace).1.first else {
                throw LoomError.notFound("Prompt \(reference.name) has no versions")
            }
            return latest
        }
        guard let content = PromptContent(tags: mv.tags) else { throw LoomError.notFound("\(reference) is not a prompt version") }
        return Version(version: mv, content: content)
    }

    public func prompt(_ reference: PromptReference, workspace: String) async throws -> ResolvedPrompt {
        let v = try await version(reference, workspace: workspace)
        return ResolvedPrompt(name: v.version.name, version: v.version.version, content: v.content)
    }
}

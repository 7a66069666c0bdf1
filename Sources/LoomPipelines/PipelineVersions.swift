import Crypto
import Foundation
import LoomCore
import LoomStore

extension MetadataStore {
    /// Saves `text` (the YAML of `spec`) as a version of its pipeline; the same text is the same
    /// version (`created` false).
    public func recordPipelineVersion(
        _ spec: PipelineSpec, text: String, workspace: String, actor: String
    ) async throws -> (version: PipelineVersion, created: Bool) {
        let digest = "sha256:" + Identifiers.hex(bytes: SHA256.hash(data: Data(text.utf8)))
        return try await createPipelineVersion(
            PipelineVersion(workspace: workspace, name: spec.name, digest: digest, spec: text, createdBy: actor, creationTime: Clock.nowMillis()))
    }

    /// Records `text` as a version of its pipeline and makes it the applied one, whose schedules
    /// and triggers fire; command steps run in `directory`.
    public func applyPipeline(
        _ spec: PipelineSpec, text: String, directory: String?, workspace: String, actor: String
    ) async throws -> (applied: AppliedPipeline, created: Bool) {
        _ = try PipelinePlan(spec)
        let (version, created) = try await recordPipelineVersion(spec, text: text, workspace: workspace, actor: actor)
        let applied = AppliedPipeline(
            workspace: workspace, name: spec.name, version: version.version, directory: directory, appliedBy: actor, appliedTime: Clock.nowMillis())
        try await applyPipeline(applied)
        return (applied, created)
    }
}

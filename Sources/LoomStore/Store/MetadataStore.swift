import LoomCore

/// Everything Loom remembers about experiments, runs, models and who may touch them.
///
/// Methods are named for intents; each mutating method is one atomic change that also appends its
/// audit record (actor from ``AuditContext/current``). Every backend passes the conformance suite
/// in `LoomTesting`.
public protocol MetadataStore: Sendable {
    var engine: SQLEngine { get }

    // MARK: Lifecycle
    /// Applies pending migrations; returns the versions applied.
    func upgrade() async throws -> [Int]
    /// The applied migration versions.
    func appliedMigrations() async throws -> [Int]
    /// Creates the Default experiment (id 0) if missing.
    func bootstrap(defaultArtifactLocation: String) async throws
    func ping() async throws
    /// Finishes queued writes and closes connections.
    func shutdown() async

    // MARK: Workspaces
    func createWorkspace(_ workspace: Workspace) async throws -> Workspace
    func workspace(named name: String) async throws -> Workspace?
    func listWorkspaces() async throws -> [Workspace]

    // MARK: Experiments
    /// Creates an experiment; `artifactLocation(id)` computes the location when none is given.
    func createExperiment(name: String, workspace: String, artifactLocation: String?, defaultArtifactLocation: @escaping @Sendable (String) -> String, tags: [Tag], time: Millis) async throws -> Experiment
    func experiment(id: String) async throws -> Experiment?
    func experiment(named name: String, workspace: String) async throws -> Experiment?
    func searchExperiments(_ search: EntitySearch) async throws -> Page<Experiment>
    func renameExperiment(id: String, to name: String, time: Millis) async throws
    /// Deletes (soft) or restores an experiment and its runs.
    func setExperimentLifecycle(id: String, stage: LifecycleStage, time: Millis) async throws
    func setExperimentTag(id: String, tag: Tag) async throws
    func deleteExperimentTag(id: String, key: String) async throws

    // MARK: Runs
    func createRun(_ run: NewRun, artifactURI: String) async throws -> Run
    func run(id: String) async throws -> Run?
    func runInfo(id: String) async throws -> RunInfo?
    func updateRun(id: String, status: RunStatus?, endTime: Millis?, runName: String?) async throws -> RunInfo
    func setRunLifecycle(id: String, stage: LifecycleStage, time: Millis) async throws
    /// Logs metrics, params and tags atomically. A param that exists with another value is an error.
    func logBatch(runID: String, metrics: [Metric], params: [Param], tags: [Tag]) async throws
    func deleteRunTag(runID: String, key: String) async throws
    func logInputs(runID: String, experimentID: String, datasets: [DatasetInput], models: [ModelIO]) async throws
    func logOutputs(runID: String, models: [ModelIO]) async throws
    func metricHistory(runID: String, key: String, maxResults: Int, offset: Int) async throws -> Page<Metric>
    func metricHistoryBulkInterval(_ query: MetricIntervalQuery) async throws -> [Metric]
    func searchRuns(_ search: RunSearch) async throws -> Page<Run>
    /// The metric keys logged in any run of the experiments (for UI column pickers).
    func metricKeys(experimentIDs: [String]) async throws -> [String]
    func paramKeys(experimentIDs: [String]) async throws -> [String]
    func countRuns(experimentIDs: [String], viewType: ViewType) async throws -> Int
    /// Datasets logged to the experiments (`experiments/search-datasets`).
    func searchDatasets(experimentIDs: [String]) async throws -> [Dataset]

    // MARK: Datasets
    /// Records a new version of a dataset, numbered after the name's newest, unless the name
    /// already has a version with the same digest: then returns that one (`created` false).
    func createDatasetVersion(_ version: DatasetVersion) async throws -> (version: DatasetVersion, created: Bool)
    func datasetVersion(name: String, version: Int64, workspace: String) async throws -> DatasetVersion?
    func datasetVersion(name: String, digest: String, workspace: String) async throws -> DatasetVersion?
    /// Every version of a dataset, newest first.
    func datasetVersions(name: String, workspace: String) async throws -> [DatasetVersion]
    /// Every dataset of the workspace with its newest version, by name.
    func listDatasets(workspace: String) async throws -> [DatasetSummary]

    // MARK: Pipelines
    /// Records a new version of a pipeline's spec, unless the name has one with the same digest:
    /// then returns that one (`created` false).
    func createPipelineVersion(_ version: PipelineVersion) async throws -> (version: PipelineVersion, created: Bool)
    func pipelineVersion(name: String, version: Int64, workspace: String) async throws -> PipelineVersion?
    /// Newest first.
    func pipelineVersions(name: String, workspace: String) async throws -> [PipelineVersion]
    /// Records a run and a pending row for each of its steps, at once.
    func createPipelineRun(_ run: PipelineRun, steps: [String]) async throws
    func pipelineRun(id: String) async throws -> PipelineRun?
    /// Newest first.
    func pipelineRuns(pipeline: String, workspace: String, limit: Int) async throws -> [PipelineRun]
    /// Runs queued or running (to resume after a restart), oldest first.
    func unfinishedPipelineRuns() async throws -> [PipelineRun]
    /// Moves a run to `state` unless it has finished already; true when it moved.
    func setPipelineRunState(id: String, state: PipelineRun.State, message: String?, trackingRunID: String?, at: Millis) async throws -> Bool
    /// The run's steps, by name.
    func stepRuns(pipelineRunID: String) async throws -> [StepRun]
    /// Leases a step that is pending, or running under a lease that expired before `now`, to
    /// `owner` until `until` (one more attempt); nil when it is neither (another owner holds it,
    /// or it has finished).
    func leaseStep(pipelineRunID: String, step: String, owner: String, until: Millis, now: Millis) async throws -> StepRun?
    /// Extends `owner`'s lease; false when `owner` no longer holds it.
    func renewStepLease(pipelineRunID: String, step: String, owner: String, until: Millis) async throws -> Bool
    /// Gives a running step back (`pending`, no lease) while `owner` holds it, to be leased
    /// again after a failed attempt with retries left, or by a runner that stops; its attempts
    /// stay counted. True when given back.
    func releaseStep(pipelineRunID: String, step: String, owner: String, message: String?) async throws -> Bool
    /// Records a step's end: a running step only while `owner` holds its lease (so a runner
    /// whose lease was taken over cannot commit outputs too), a pending one (skipped, cached,
    /// cancelled) or ready one when `owner` is nil. True when recorded.
    func finishStep(
        pipelineRunID: String, step: String, owner: String?, state: StepRun.State, outputs: String?, cacheKey: String?,
        trackingRunID: String?, message: String?, at: Millis
    ) async throws -> Bool
    /// Puts a pending step up for a worker: `ready`, with what to run; not leased before
    /// `notBefore` when given. False when it was not pending.
    func readyStep(pipelineRunID: String, step: String, invocation: String, cacheKey: String?, notBefore: Millis?) async throws -> Bool
    /// Gives a running step back to the workers after a failed attempt with retries left
    /// (`ready`, not before `notBefore`); only its lease holder can. False otherwise.
    func requeueStep(pipelineRunID: String, step: String, owner: String, notBefore: Millis, message: String?) async throws -> Bool
    /// Leases the oldest step that waits for a worker (`ready` and due, or `running` for a
    /// worker whose lease expired before `now`) to `owner` until `until`: one more attempt. Nil
    /// when none waits. Racing workers get different steps.
    func leaseReadyStep(owner: String, until: Millis, now: Millis) async throws -> StepRun?
    /// The newest step run of the workspace that succeeded with this cache key.
    func cachedStepRun(cacheKey: String, workspace: String) async throws -> StepRun?

    /// Every pipeline of the workspace (any that has a version), by name, with its newest run.
    func pipelineSummaries(workspace: String) async throws -> [PipelineSummary]
    /// Records (or replaces) the applied version of a pipeline.
    func applyPipeline(_ applied: AppliedPipeline) async throws
    /// The applied pipelines of a workspace, or of every workspace (nil), by name.
    func appliedPipelines(workspace: String?) async throws -> [AppliedPipeline]
    /// Records that a trigger fired for an occasion (a schedule's minute, a dataset version);
    /// false when it had fired for it already (another replica did).
    func recordTriggerFiring(workspace: String, pipeline: String, trigger: String, occasion: String, pipelineRunID: String?, at: Millis) async throws -> Bool

    // MARK: Endpoints
    /// Records a new endpoint (`alreadyExists` when the name is taken).
    func createEndpoint(_ endpoint: Endpoint) async throws
    func endpoint(name: String, workspace: String) async throws -> Endpoint?
    /// The endpoints of a workspace, or of every workspace (nil), by name.
    func endpoints(workspace: String?) async throws -> [Endpoint]
    /// Saves `endpoint` if its stored generation is still `endpoint.generation`, bumping it;
    /// nil when it changed meanwhile (`notFound` when it is gone). Every deployment named in
    /// its traffic or mirror must exist (`invalidParameter` otherwise).
    func updateEndpoint(_ endpoint: Endpoint) async throws -> Endpoint?
    /// Deletes an endpoint with its deployments; false when there was none.
    func deleteEndpoint(name: String, workspace: String) async throws -> Bool
    /// Records a new deployment of an existing endpoint and bumps the endpoint's generation
    /// (`notFound`, `alreadyExists`).
    func createDeployment(_ deployment: Deployment) async throws
    /// Replaces a deployment's model, runtime and settings; bumps the endpoint's generation.
    func updateDeployment(_ deployment: Deployment) async throws
    func deployments(endpoint: String, workspace: String) async throws -> [Deployment]
    /// Deletes a deployment that gets no live or mirrored traffic (`invalidState` when it does,
    /// `notFound` when there is none) and bumps the endpoint's generation.
    func deleteDeployment(endpoint: String, name: String, workspace: String) async throws

    // MARK: Rollouts
    /// Records a new rollout with its first decision; `invalidState` when the endpoint has an
    /// active (running or paused) rollout already.
    func createRollout(_ rollout: Rollout, decision: RolloutDecision) async throws
    func rollout(id: String) async throws -> Rollout?
    /// An endpoint's rollouts, newest first.
    func rollouts(endpoint: String, workspace: String, limit: Int) async throws -> [Rollout]
    /// Running and paused rollouts of every workspace.
    func activeRollouts() async throws -> [Rollout]
    /// Takes (or renews) the right to drive an active rollout until `until`: when nobody holds
    /// it, its lease expired before `now`, or `owner` holds it. False otherwise.
    func leaseRollout(id: String, owner: String, until: Millis, now: Millis) async throws -> Bool
    /// Saves a rollout's progress (state, stage, stage start, message, end) with a decision,
    /// only while `owner` holds its lease; clears the requested action when it is `handled`.
    /// False when refused.
    func advanceRollout(_ rollout: Rollout, owner: String, handled: String?, decision: RolloutDecision) async throws -> Bool
    /// A rollout's decisions, oldest first.
    func rolloutDecisions(id: String) async throws -> [RolloutDecision]
    /// Asks for `promote`, `pause`, `resume` or `abort` of an active rollout (the replica
    /// driving it carries it out); false when it is not active.
    func requestRolloutAction(id: String, action: String, actor: String) async throws -> Bool

    // MARK: Monitors
    /// Makes `monitor` the workspace's monitor of that name: new (version 1), or its spec
    /// replaced (version bumped, schedule restarted at `monitor.nextRunTime`) when the text
    /// changed; unchanged text leaves it as it is. Returns it as stored and whether it changed.
    func applyMonitor(_ monitor: Monitor) async throws -> (Monitor, changed: Bool)
    func monitor(name: String, workspace: String) async throws -> Monitor?
    func monitors(workspace: String) async throws -> [Monitor]
    /// Deletes a monitor with its results and alerts; false when there is none.
    func deleteMonitor(name: String, workspace: String) async throws -> Bool
    /// Enabled monitors of every workspace whose next pass is due at `now`.
    func dueMonitors(now: Millis) async throws -> [Monitor]
    /// Takes (or renews) the right to run a monitor's pass until `until` (as `leaseRollout`).
    func leaseMonitor(name: String, workspace: String, owner: String, until: Millis, now: Millis) async throws -> Bool
    /// Records a pass in one transaction: its results, the monitor's last and next run (and
    /// the lease released when `owner` held it), and the alerts: one opened for each failing
    /// signal without an open one, open ones of passing signals resolved.
    /// `deliveries` makes the webhook calls for the alert changes, recorded in the same
    /// transaction (nothing is lost between an alert and its calls).
    func recordMonitorPass(
        _ results: [MonitorResult], monitor: String, workspace: String, nextRunTime: Millis?, owner: String?,
        deliveries: @escaping @Sendable (AlertChanges) -> [WebhookDelivery]
    ) async throws -> AlertChanges
    /// A monitor's results, newest first (one signal's, or all).
    func monitorResults(monitor: String, workspace: String, signal: String?, limit: Int) async throws -> [MonitorResult]
    /// Alerts, newest first: of one monitor or all of the workspace's, in one state or any.
    func monitorAlerts(workspace: String, monitor: String?, state: MonitorAlert.State?, limit: Int) async throws -> [MonitorAlert]
    func monitorAlert(id: String) async throws -> MonitorAlert?
    /// Notes the pipeline run an alert's action started.
    func setAlertAction(id: String, runID: String) async throws
    /// Alerts whose action started a pipeline run and is not over, oldest first.
    func alertsAwaitingAction(limit: Int) async throws -> [MonitorAlert]
    /// Ends an alert's action: the rollout it started (if any) and how it ended.
    func finishAlertAction(id: String, rolloutID: String?, message: String) async throws
    /// Pending webhook calls whose next attempt is due at `now`, oldest first.
    func dueWebhookDeliveries(now: Millis, limit: Int) async throws -> [WebhookDelivery]
    /// Takes a due pending call for one attempt (its next attempt moves to `until`, so that no
    /// other replica sends it meanwhile); false when another took it first.
    func claimWebhookDelivery(id: String, owner: String, until: Millis, now: Millis) async throws -> Bool
    /// Records an attempt's outcome: delivered, pending again at `nextAttemptTime`, or failed.
    func finishWebhookAttempt(_ delivery: WebhookDelivery) async throws
    /// Webhook calls of a monitor (or all of the workspace's), newest first.
    func webhookDeliveries(workspace: String, monitor: String?, limit: Int) async throws -> [WebhookDelivery]

    // MARK: Gateway
    /// Makes `resource` the workspace's provider or route of its name: new (version 1), or its
    /// text replaced (version bumped) when it differs; `changed` is false when it did not.
    func applyGatewayResource(_ resource: GatewayResource) async throws -> (GatewayResource, changed: Bool)
    /// Providers and routes of one workspace (nil: every workspace), of one kind or both, by name.
    func gatewayResources(workspace: String?, kind: GatewayResource.Kind?) async throws -> [GatewayResource]
    /// Deletes a provider or route; false when there is none.
    func deleteGatewayResource(kind: GatewayResource.Kind, name: String, workspace: String) async throws -> Bool
    /// Adds catalog entries or replaces those with the same provider and model.
    func upsertCatalogModels(_ models: [CatalogModel]) async throws
    /// The workspace's catalog (one provider's, or all), by provider and model.
    func catalogModels(workspace: String?, provider: String?) async throws -> [CatalogModel]
    func deleteCatalogModel(provider: String, model: String, workspace: String) async throws -> Bool
    func createGatewayKey(_ key: GatewayKey) async throws -> GatewayKey
    /// Keys of one workspace (nil: every workspace), revoked ones included, by name.
    func gatewayKeys(workspace: String?) async throws -> [GatewayKey]
    /// Revokes a key (from `time` on); false when there is no such key or it was revoked already.
    func revokeGatewayKey(id: String, workspace: String, time: Millis) async throws -> Bool
    /// Adds usage to the day's sums (rows with the same identity are summed, not replaced).
    func addGatewayUsage(_ rows: [GatewayUsage]) async throws
    /// Usage sums of a workspace for days in [fromDay, toDay] (`YYYY-MM-DD`), by day, key, route, provider, model.
    func gatewayUsage(workspace: String, fromDay: String, toDay: String) async throws -> [GatewayUsage]
    /// Records finished gateway calls (a trace id seen before is left as it is).
    func addGatewayTraces(_ traces: [GatewayTrace]) async throws
    /// A workspace's traces, newest first: of one route or all, before a time (paging), only
    /// failed ones (status ≥ 400) when asked.
    func gatewayTraces(workspace: String, route: String?, failedOnly: Bool, before: Millis?, limit: Int) async throws -> [GatewayTrace]
    func gatewayTrace(id: String, workspace: String) async throws -> GatewayTrace?
    /// Deletes traces that started before `time`; how many.
    func deleteGatewayTraces(before time: Millis) async throws -> Int

    // MARK: Grounding indexes
    /// Makes `index` the workspace's index of its name: new (version 1), or its text replaced
    /// (version bumped) when it differs; `changed` is false when it did not.
    func applyGroundingIndex(_ index: GroundingIndex) async throws -> (GroundingIndex, changed: Bool)
    /// The indexes of one workspace (nil: every workspace), by name.
    func groundingIndexes(workspace: String?) async throws -> [GroundingIndex]
    func groundingIndex(workspace: String, name: String) async throws -> GroundingIndex?
    /// Deletes an index with its versions' records; false when there is none.
    func deleteGroundingIndex(workspace: String, name: String) async throws -> Bool
    /// Records a finished build as the index's next version, with its documents, in one write;
    /// returns it with its number. The index must exist.
    func addIndexVersion(_ version: IndexVersion, documents: [IndexDocument]) async throws -> IndexVersion
    /// An index's versions, newest first.
    func indexVersions(workspace: String, index: String) async throws -> [IndexVersion]
    func indexVersion(workspace: String, index: String, version: Int64) async throws -> IndexVersion?
    /// Takes (or renews) the lease on an index's scheduled build until `until`: false while
    /// another owner's lease has not expired, or when there is no such index.
    func leaseIndexSchedule(workspace: String, name: String, owner: String, until: Millis, now: Millis) async throws -> Bool
    /// The documents a version holds, by source.
    func indexDocuments(workspace: String, index: String, version: Int64) async throws -> [IndexDocument]

    // MARK: Flows
    /// Records `flow.specText` as the flow's next version unless it equals the newest one;
    /// returns the version that holds the text and whether it is new.
    func applyFlow(_ flow: FlowVersion) async throws -> (FlowVersion, changed: Bool)
    /// The newest version of each flow of a workspace, by name.
    func flows(workspace: String) async throws -> [FlowVersion]
    /// A version by number, or the newest when `version` is nil.
    func flowVersion(workspace: String, name: String, version: Int64?) async throws -> FlowVersion?
    /// A flow's versions, newest first.
    func flowVersions(workspace: String, name: String) async throws -> [FlowVersion]
    /// Deletes a flow with all its versions; false when there is none.
    func deleteFlow(workspace: String, name: String) async throws -> Bool

    // MARK: Evaluation runs
    func createEvaluationRun(_ run: EvaluationRunRecord) async throws
    /// A run with its rows' text.
    func evaluationRun(id: String) async throws -> EvaluationRunRecord?
    /// A workspace's runs (of one spec name, or all), newest first, without their rows' text.
    func evaluationRuns(workspace: String, name: String?, limit: Int) async throws -> [EvaluationRunRecord]
    /// Makes the run `running` with a fresh heartbeat when it is not running, or its heartbeat
    /// is older than `staleBefore` (its runner stopped); false when another runner holds it.
    func claimEvaluationRun(id: String, staleBefore: Millis, now: Millis) async throws -> Bool
    func heartbeatEvaluationRun(id: String, now: Millis) async throws
    func finishEvaluationRun(id: String, status: EvaluationRunRecord.Status, passed: Bool?, error: String?, endTime: Millis) async throws
    /// Records row results; a row already recorded (same variant and number) is replaced.
    func addEvaluationRows(_ rows: [EvaluationRowRecord]) async throws
    /// A run's rows (of one variant, or all), by variant and number.
    func evaluationRows(runId: String, variant: String?) async throws -> [EvaluationRowRecord]
    /// Deletes a run with its rows; false when there is none.
    func deleteEvaluationRun(id: String) async throws -> Bool

    // MARK: Lineage
    /// Records edges; one already recorded (same workspace, ends and relation) is left as it is.
    func addLineageEdges(_ edges: [LineageEdge]) async throws
    /// The edges into `node` (upstream: what it was made from) or out of it (downstream), oldest first.
    func lineageEdges(of node: String, direction: LineageDirection, workspace: String) async throws -> [LineageEdge]

    // MARK: Logged models
    func createLoggedModel(_ model: LoggedModel) async throws -> LoggedModel
    func loggedModel(id: String) async throws -> LoggedModel?
    func finalizeLoggedModel(id: String, status: LoggedModelStatus, time: Millis) async throws -> LoggedModel
    func deleteLoggedModel(id: String, time: Millis) async throws
    func searchLoggedModels(_ search: EntitySearch) async throws -> Page<LoggedModel>
    func setLoggedModelTags(id: String, tags: [Tag]) async throws
    func deleteLoggedModelTag(id: String, key: String) async throws
    func logLoggedModelParams(id: String, params: [Param]) async throws

    // MARK: Registry
    func createRegisteredModel(name: String, workspace: String, description: String?, tags: [Tag], time: Millis) async throws -> RegisteredModel
    func registeredModel(named name: String, workspace: String) async throws -> RegisteredModel?
    func renameRegisteredModel(name: String, workspace: String, to newName: String, time: Millis) async throws -> RegisteredModel
    func updateRegisteredModel(name: String, workspace: String, description: String?, time: Millis) async throws -> RegisteredModel
    func deleteRegisteredModel(name: String, workspace: String) async throws
    func searchRegisteredModels(_ search: EntitySearch) async throws -> Page<RegisteredModel>
    func setRegisteredModelTag(name: String, workspace: String, tag: Tag) async throws
    func deleteRegisteredModelTag(name: String, workspace: String, key: String) async throws

    func createModelVersion(_ version: NewModelVersion, workspace: String) async throws -> ModelVersion
    func modelVersion(name: String, version: String, workspace: String) async throws -> ModelVersion?
    func updateModelVersion(name: String, version: String, workspace: String, description: String?, time: Millis) async throws -> ModelVersion
    func transitionModelVersionStage(name: String, version: String, workspace: String, stage: ModelStage, archiveExisting: Bool, time: Millis) async throws -> ModelVersion
    func deleteModelVersion(name: String, version: String, workspace: String) async throws
    func searchModelVersions(_ search: EntitySearch) async throws -> Page<ModelVersion>
    func latestVersions(name: String, workspace: String, stages: [ModelStage]) async throws -> [ModelVersion]
    func setModelVersionTag(name: String, version: String, workspace: String, tag: Tag) async throws
    func deleteModelVersionTag(name: String, version: String, workspace: String, key: String) async throws
    func setAlias(name: String, workspace: String, alias: String, version: String) async throws
    func deleteAlias(name: String, workspace: String, alias: String) async throws
    func modelVersion(name: String, alias: String, workspace: String) async throws -> ModelVersion?

    // MARK: Users and access
    func createUser(username: String, passwordHash: String, isAdmin: Bool, time: Millis) async throws -> User
    func user(named username: String) async throws -> User?
    func user(id: Int64) async throws -> User?
    func passwordHash(username: String) async throws -> (User, String)?
    func listUsers() async throws -> [User]
    func updateUser(username: String, passwordHash: String?, isAdmin: Bool?) async throws -> User
    func deleteUser(username: String) async throws
    func countUsers() async throws -> Int

    func createToken(userID: Int64, name: String, prefix: String, tokenHash: String, expiresAt: Millis?, time: Millis) async throws -> APIToken
    /// Finds a live token by its hash and returns its owner.
    func token(hash: String) async throws -> (APIToken, User)?
    func listTokens(userID: Int64?) async throws -> [APIToken]
    func deleteToken(id: Int64, userID: Int64?) async throws
    func touchToken(id: Int64, time: Millis) async throws

    func setRole(username: String, workspace: String, role: Role?) async throws
    func roles(username: String) async throws -> [RoleBinding]
    func listRoles(workspace: String?) async throws -> [RoleBinding]
    func setResourcePermission(_ permission: ResourcePermission) async throws
    func deleteResourcePermission(username: String, kind: ResourceKind, resource: String) async throws
    func resourcePermissions(username: String) async throws -> [ResourcePermission]
    func resourcePermission(username: String, kind: ResourceKind, resource: String) async throws -> Permission?

    // MARK: Audit
    /// Appends records outside any other change (e.g. refused calls).
    func appendAudit(_ events: [AuditEvent]) async throws
    func auditEvents(_ query: AuditQuery) async throws -> Page<AuditEvent>
}

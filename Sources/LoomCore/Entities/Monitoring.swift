/// A monitor (docs/monitoring.md): a `kind: monitor` spec applied to a workspace, with its
/// schedule state. The spec text is kept as applied; `LoomMonitoring.MonitorSpec` reads it.
public struct Monitor: Sendable, Codable, Hashable {
    public var workspace: String
    public var name: String
    public var endpoint: String
    public var specText: String
    /// Bumped each time a changed spec is applied.
    public var version: Int64
    public var enabled: Bool
    /// When the next scheduled pass is due (nil: only on demand).
    public var nextRunTime: Millis?
    public var lastRunTime: Millis?
    public var createdBy: String
    public var creationTime: Millis
    public var lastUpdatedTime: Millis

    public init(
        workspace: String = Workspace.defaultName, name: String, endpoint: String, specText: String, version: Int64 = 1, enabled: Bool = true,
        nextRunTime: Millis? = nil, lastRunTime: Millis? = nil, createdBy: String, creationTime: Millis, lastUpdatedTime: Millis? = nil
    ) {
        self.workspace = workspace
        self.name = name
        self.endpoint = endpoint
        self.specText = specText
        self.version = version
        self.enabled = enabled
        self.nextRunTime = nextRunTime
        self.lastRunTime = lastRunTime
        self.createdBy = createdBy
        self.creationTime = creationTime
        self.lastUpdatedTime = lastUpdatedTime ?? creationTime
    }
}

/// One signal's outcome in one pass of a monitor: a point of the monitor's time series.
public struct MonitorResult: Sendable, Codable, Hashable {
    /// The pass (shared by the signals computed together).
    public var passID: String
    public var workspace: String
    public var monitor: String
    public var signal: String
    /// `data_drift`, `prediction_drift`, `data_quality`, `model_performance`.
    public var kind: String
    public var time: Millis
    /// The production window read: [start, end).
    public var windowStart: Millis
    public var windowEnd: Millis
    /// Rows in the production window.
    public var rows: Int64
    /// The signal's headline figure: the share of drifted columns, the worst rate, the metric
    /// furthest past its rule (nil when there was nothing to measure).
    public var value: Double?
    public var passed: Bool
    /// Nothing to judge (an empty window, no labels yet): passed, but an open alert stays open.
    public var skipped: Bool
    /// One line for people: what failed or that nothing did.
    public var summary: String
    /// The signal's whole result (per column, per metric) as JSON.
    public var detailJSON: String

    public init(
        passID: String, workspace: String, monitor: String, signal: String, kind: String, time: Millis, windowStart: Millis, windowEnd: Millis,
        rows: Int64, value: Double?, passed: Bool, skipped: Bool = false, summary: String, detailJSON: String
    ) {
        self.passID = passID
        self.workspace = workspace
        self.monitor = monitor
        self.signal = signal
        self.kind = kind
        self.time = time
        self.windowStart = windowStart
        self.windowEnd = windowEnd
        self.rows = rows
        self.value = value
        self.passed = passed
        self.skipped = skipped
        self.summary = summary
        self.detailJSON = detailJSON
    }
}

/// An alert: a signal of a monitor that failed. One stays open per monitor and signal until a
/// pass finds the signal passing again.
public struct MonitorAlert: Sendable, Codable, Hashable {
    public enum State: String, Sendable, Codable, Hashable, CaseIterable {
        case open, resolved
    }

    public var id: String
    public var workspace: String
    public var monitor: String
    public var signal: String
    public var state: State
    public var openedTime: Millis
    public var resolvedTime: Millis?
    /// The pass that opened it and the latest pass that found the signal failing.
    public var firstPassID: String
    public var lastPassID: String
    /// Passes that found the signal failing while it was open.
    public var count: Int64
    public var summary: String
    /// What the monitor's action started for it (a pipeline run), when it did.
    public var actionRunID: String?
    /// The rollout started for the version that run registered.
    public var actionRolloutID: String?
    /// How the action ended (or why it did nothing more).
    public var actionMessage: String?
    /// The action is over: nothing more will be started for this alert.
    public var actionDone: Bool

    public init(
        id: String, workspace: String, monitor: String, signal: String, state: State = .open, openedTime: Millis, resolvedTime: Millis? = nil,
        firstPassID: String, lastPassID: String, count: Int64 = 1, summary: String, actionRunID: String? = nil, actionRolloutID: String? = nil,
        actionMessage: String? = nil, actionDone: Bool = false
    ) {
        self.id = id
        self.workspace = workspace
        self.monitor = monitor
        self.signal = signal
        self.state = state
        self.openedTime = openedTime
        self.resolvedTime = resolvedTime
        self.firstPassID = firstPassID
        self.lastPassID = lastPassID
        self.count = count
        self.summary = summary
        self.actionRunID = actionRunID
        self.actionRolloutID = actionRolloutID
        self.actionMessage = actionMessage
        self.actionDone = actionDone
    }
}

/// What recording a pass did to the monitor's alerts.
public struct AlertChanges: Sendable, Codable, Hashable {
    /// Alerts the pass opened (a signal failed with none open).
    public var opened: [MonitorAlert] = []
    /// Open alerts the pass found failing again.
    public var continued: [MonitorAlert] = []
    /// Open alerts the pass resolved (their signal passed; a skipped signal resolves nothing).
    public var resolved: [MonitorAlert] = []

    public init(opened: [MonitorAlert] = [], continued: [MonitorAlert] = [], resolved: [MonitorAlert] = []) {
        self.opened = opened
        self.continued = continued
        self.resolved = resolved
    }
}

/// A webhook call about an alert (opened or resolved), kept until it is delivered or given up:
/// sent with retries and backoff, signed with HMAC-SHA256 when the monitor names a secret.
public struct WebhookDelivery: Sendable, Codable, Hashable {
    public enum State: String, Sendable, Codable, Hashable, CaseIterable {
        case pending, delivered, failed
    }

    public var id: String
    public var workspace: String
    public var monitor: String
    public var alertID: String
    /// `alert.opened` or `alert.resolved`.
    public var event: String
    public var url: String
    /// The environment variable holding the signing secret (never the secret).
    public var secretEnv: String?
    public var payload: String
    public var state: State
    public var attempts: Int64
    public var nextAttemptTime: Millis
    public var lastStatus: Int64?
    public var lastError: String?
    public var creationTime: Millis
    public var deliveredTime: Millis?

    public init(
        id: String, workspace: String, monitor: String, alertID: String, event: String, url: String, secretEnv: String?, payload: String,
        state: State = .pending, attempts: Int64 = 0, nextAttemptTime: Millis, lastStatus: Int64? = nil, lastError: String? = nil,
        creationTime: Millis, deliveredTime: Millis? = nil
    ) {
        self.id = id
        self.workspace = workspace
        self.monitor = monitor
        self.alertID = alertID
        self.event = event
        self.url = url
        self.secretEnv = secretEnv
        self.payload = payload
        self.state = state
        self.attempts = attempts
        self.nextAttemptTime = nextAttemptTime
        self.lastStatus = lastStatus
        self.lastError = lastError
        self.creationTime = creationTime
        self.deliveredTime = deliveredTime
    }
}

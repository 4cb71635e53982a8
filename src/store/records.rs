//! The records stored in each tree: current shapes, each stored with a version tag (`"v"`).
//!
//! Every record is written as JSON `{"v":"1", ...fields}`. To change a record's shape, keep the
//! old struct as `...V1`, add the new one, hand-write its `Record` impl with a `V2` variant and
//! an upgrade from `V1`, bump nothing else, and add a literal of the new version to the decode
//! tests (`decode_tests.rs`): the old literals must keep decoding forever.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::codec::{body_bytes, record_v1};
use super::trees::TreeName;

/// Where an observation or event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventSource {
    /// A regular poll of the Codegen API.
    Poll,
    /// A verified GitHub webhook delivery.
    Webhook,
    /// A cron tick of a scheduled rule.
    Schedule,
    /// The first reconcile after the daemon started (catching up on what changed while down).
    Startup,
}

impl EventSource {
    /// The lowercase name used in records, rule contexts and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventSource::Poll => "poll",
            EventSource::Webhook => "webhook",
            EventSource::Schedule => "schedule",
            EventSource::Startup => "startup",
        }
    }
}

/// Lifecycle of a durable job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Created, not started yet (or due for a retry).
    Pending,
    /// A worker is executing one of its steps.
    Running,
    /// Waiting durably for something outside (a run to finish, a retry time).
    Waiting,
    /// Every step finished.
    Done,
    /// Gave up; kept as a dead letter until retried or dropped.
    Dead,
}

impl JobState {
    /// Whether the job still has work to do (and is listed in `jobs_open`).
    pub const fn is_open(self) -> bool {
        match self {
            JobState::Pending | JobState::Running | JobState::Waiting => true,
            JobState::Done | JobState::Dead => false,
        }
    }
}

/// Whether `status` (as stored) is terminal: the API's own classification, so the store's
/// `runs_active` index and the poller never disagree.
pub fn is_terminal_status(status: &str) -> bool {
    crate::api::RunStatus::parse(status).is_terminal()
}

/// `runs`: the latest stored snapshot of an agent run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub org_id: i64,
    pub run_id: i64,
    /// The run's status as the API spelled it (None when the API gave none).
    pub status: Option<String>,
    /// The run JSON exactly as the API returned it.
    pub raw: Value,
    /// Ids of the pull requests already seen on this run (to detect new ones).
    pub pr_ids: Vec<i64>,
    /// Sequence number of the run's last transition (0 before the first one).
    pub last_seq: u32,
    /// When the current status was first observed (for stall detection).
    pub status_since: DateTime<Utc>,
    /// Whether `run.stalled` was already emitted for the current status.
    pub stalled_reported: bool,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// `transitions`: one recorded status change of a run; append-only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransitionRecord {
    pub org_id: i64,
    pub run_id: i64,
    /// Per-run sequence, starting at 1.
    pub seq: u32,
    pub from: Option<String>,
    pub to: Option<String>,
    /// True when this records the first sighting of the run (`from` is then None).
    pub first_sight: bool,
    pub at: DateTime<Utc>,
    pub source: EventSource,
}

/// `events`: one event offered to the rules engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Global sequence: monotonic in allocation order, with gaps.
    pub seq: u64,
    /// Stable id such as `run/7/123/4/finished` or `github/<delivery>`; unique.
    pub id: String,
    /// Event type such as `run.finished`, `github.check_suite`, `schedule`.
    pub kind: String,
    pub at: DateTime<Utc>,
    pub source: EventSource,
    pub org_id: Option<i64>,
    pub run_id: Option<i64>,
    /// The evaluation context (from/to, pr, payload, ...), owned by the engine.
    pub data: Value,
}

/// `deliveries`: a GitHub webhook delivery as received.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// The `X-GitHub-Delivery` id.
    pub id: String,
    /// The `X-GitHub-Event` name.
    pub event: String,
    pub received_at: DateTime<Utc>,
    /// The raw body. Empty (and not written) when the payload is stored once, verbatim, as
    /// its event's `data.payload`, which is how the receiver stores deliveries; records that
    /// carry a body still decode.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "body_bytes")]
    pub body: Vec<u8>,
    /// Whether the engine has turned it into an event.
    pub processed: bool,
}

/// `jobs`: a durable job of a fired rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: u64,
    pub rule: String,
    /// Stable id of the event that fired the rule.
    pub event_id: String,
    /// The rule's rendered key (dedupe/throttle unit).
    pub key: String,
    pub created_at: DateTime<Utc>,
    pub state: JobState,
    /// Step progress, outputs, retry times: the executor owns this shape.
    pub data: Value,
}

/// `journal`: the decision of one rule on one event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalRecord {
    pub event_id: String,
    pub rule: String,
    /// e.g. `fired`, `skipped`, `throttled`, `silenced`, `shadow`, `error`.
    pub outcome: String,
    pub reason: Option<String>,
    /// Hash of the rule set that decided, to tell decisions of different rule versions apart.
    pub rules_hash: String,
    pub at: DateTime<Utc>,
}

/// `firings`: when a rule fired for a key; used for dedupe, cooldown and throttle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FiringRecord {
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    /// Firings counted since `window_start` (throttle).
    pub count_in_window: u32,
    pub window_start: DateTime<Utc>,
    /// Keyed by the event's id (the rule has no `key`): once that event is pruned, retention
    /// forgets this record too. Records written before this field say false and are kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_event: bool,
}

/// `schedule_marks`: the persisted cron position of a scheduled rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleMark {
    pub next_fire: DateTime<Utc>,
    pub last_fired: Option<DateTime<Utc>>,
}

/// `silences`: a rule (or one key of a rule) paused until a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SilenceRecord {
    pub id: u64,
    pub rule: String,
    /// None silences every key of the rule.
    pub key: Option<String>,
    pub until: DateTime<Utc>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
    /// Set when lifted early; an expired silence is kept for the record.
    pub expired: bool,
}

impl RunRecord {
    /// Whether the stored status is terminal (the run is then left out of `runs_active`).
    pub fn is_terminal(&self) -> bool {
        self.status.as_deref().is_some_and(is_terminal_status)
    }
}

impl SilenceRecord {
    /// Whether the silence mutes firings at `at`.
    pub fn is_active_at(&self, at: DateTime<Utc>) -> bool {
        !self.expired && at < self.until
    }

    /// Whether the silence applies to `key` of its rule.
    pub fn covers_key(&self, key: &str) -> bool {
        self.key.as_deref().is_none_or(|k| k == key)
    }
}

record_v1!(RunRecord, TreeName::Runs);
record_v1!(TransitionRecord, TreeName::Transitions);
record_v1!(EventRecord, TreeName::Events);
record_v1!(DeliveryRecord, TreeName::Deliveries);
record_v1!(JobRecord, TreeName::Jobs);
record_v1!(JournalRecord, TreeName::Journal);
record_v1!(FiringRecord, TreeName::Firings);
record_v1!(ScheduleMark, TreeName::ScheduleMarks);
record_v1!(SilenceRecord, TreeName::Silences);

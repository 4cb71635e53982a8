//! The named sled trees of the store and the handles to them.

use super::error::StoreError;

/// One named tree of the store. The name is what sled stores on disk: never rename one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TreeName {
    /// (org, run) → the latest snapshot of an agent run.
    Runs,
    /// (org, run) → (); the runs whose status is not terminal (kept by `Tx::put_run`).
    RunsActive,
    /// (org, run, seq) → one recorded status change of a run; append-only.
    Transitions,
    /// global seq → one event the rules engine evaluated.
    Events,
    /// stable event id → global seq; makes event insertion idempotent.
    EventIds,
    /// (org, run, seq) → (); the events of one run.
    RunEvents,
    /// GitHub delivery id → the delivery as received.
    Deliveries,
    /// job id → a durable job of a fired rule.
    Jobs,
    /// job id → (); the jobs that are not finished yet.
    JobsOpen,
    /// (event seq, rule) → the decision of one rule on one event.
    Journal,
    /// (rule, key) → when a rule last fired for a key (dedupe, cooldown, throttle).
    Firings,
    /// rule → the next and last fire time of a scheduled rule.
    ScheduleMarks,
    /// silence id → a pause of a rule (or of one key of a rule).
    Silences,
    /// small string keys: schema version and the like.
    Meta,
    /// PR or head-branch key → the (org, run) keys of the agent runs that opened that PR.
    PrRuns,
}

impl TreeName {
    /// Every tree, in the order the transaction view holds them.
    pub const ALL: [TreeName; 15] = [
        TreeName::Runs,
        TreeName::RunsActive,
        TreeName::Transitions,
        TreeName::Events,
        TreeName::EventIds,
        TreeName::RunEvents,
        TreeName::Deliveries,
        TreeName::Jobs,
        TreeName::JobsOpen,
        TreeName::Journal,
        TreeName::Firings,
        TreeName::ScheduleMarks,
        TreeName::Silences,
        TreeName::Meta,
        TreeName::PrRuns,
    ];

    /// The on-disk name of the tree.
    pub const fn as_str(self) -> &'static str {
        match self {
            TreeName::Runs => "runs",
            TreeName::RunsActive => "runs_active",
            TreeName::Transitions => "transitions",
            TreeName::Events => "events",
            TreeName::EventIds => "event_ids",
            TreeName::RunEvents => "run_events",
            TreeName::Deliveries => "deliveries",
            TreeName::Jobs => "jobs",
            TreeName::JobsOpen => "jobs_open",
            TreeName::Journal => "journal",
            TreeName::Firings => "firings",
            TreeName::ScheduleMarks => "schedule_marks",
            TreeName::Silences => "silences",
            TreeName::Meta => "meta",
            TreeName::PrRuns => "pr_runs",
        }
    }

    /// Position of the tree in [`TreeName::ALL`] and in the transaction view.
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for TreeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Open handles to every tree, indexed by [`TreeName`]; the array form is what sled's multi-tree
/// transaction takes.
pub(crate) struct Trees {
    all: Vec<sled::Tree>,
}

impl Trees {
    pub(crate) fn open(db: &sled::Db) -> Result<Trees, StoreError> {
        let all = TreeName::ALL
            .iter()
            .map(|name| db.open_tree(name.as_str()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::storage("open tree"))?;
        Ok(Trees { all })
    }

    pub(crate) fn get(&self, name: TreeName) -> &sled::Tree {
        &self.all[name.index()]
    }

    pub(crate) fn as_slice(&self) -> &[sled::Tree] {
        &self.all
    }
}

#[cfg(test)]
mod tests {
    use super::TreeName;

    #[test]
    fn tree_index_matches_its_position_in_all() {
        for (i, name) in TreeName::ALL.iter().enumerate() {
            assert_eq!(name.index(), i, "{name}");
        }
    }
}

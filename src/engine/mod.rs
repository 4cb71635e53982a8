//! The rules engine: every new event is evaluated against the current rule set inside the
//! transaction that recorded it; each candidate rule's decision goes to the journal (with the
//! rule-set hash), and each rule that fires writes its job there too. A crash can therefore
//! neither lose a firing nor repeat one: the event, its decisions and its jobs commit together,
//! and a rule fires at most once per (rule, key).

pub mod explain;
mod job;
pub mod replay;
pub mod summary;

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::events::EventSink;
use crate::rules::eval::{self, EventContext, Outcome, State};
use crate::rules::RuleSet;
use crate::store::{
    EventRecord, FiringRecord, JournalRecord, NewJob, SilenceRecord, Store, Tx, TxAbort,
};

pub use job::{job_data, JOB_DATA_VERSION};

/// Evaluates events against the live rule set and records what it decided.
pub struct Engine {
    store: Store,
    rules: Arc<ArcSwap<RuleSet>>,
    vars: Map<String, Value>,
    clock: Arc<dyn Clock>,
}

impl Engine {
    /// An engine over the shared rule set (swapped by reload), with the config's `vars`.
    pub fn new(
        store: Store,
        rules: Arc<ArcSwap<RuleSet>>,
        vars: Map<String, Value>,
        clock: Arc<dyn Clock>,
    ) -> Engine {
        Engine {
            store,
            rules,
            vars,
            clock,
        }
    }

    /// The store the engine's decisions go to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The rule set in force.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.load_full()
    }
}

/// Firing records and silences read inside the event's transaction.
struct TxState<'a, 't> {
    tx: &'a Tx<'t>,
}

impl State for TxState<'_, '_> {
    type Error = TxAbort;

    fn firing(&self, rule: &str, key: &str) -> Result<Option<FiringRecord>, TxAbort> {
        self.tx.get_firing(rule, key)
    }

    fn silences(&self, rule: &str) -> Result<Vec<SilenceRecord>, TxAbort> {
        self.tx.silences_of_rule(rule)
    }
}

impl EventSink for Engine {
    fn wants(&self, kind: &str) -> bool {
        // Schedule events name their rule; only webhook payloads are skipped today anyway.
        kind == "schedule" || !self.rules.load().candidates(kind, None).is_empty()
    }

    fn on_event(&self, tx: &Tx<'_>, event: &EventRecord) -> Result<(), TxAbort> {
        let set = self.rules.load();
        let schedule_rule = event.data.get("rule").and_then(Value::as_str);
        let candidates = set.candidates(&event.kind, schedule_rule);
        if candidates.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let ctx = EventContext::new(event, &self.vars, now);
        let state = TxState { tx };
        for rule in candidates {
            // Decided already (the event was offered twice): the first decision stands.
            if tx.get_journal(event.seq, &rule.name)?.is_some() {
                continue;
            }
            let decision = eval::decide(rule, &ctx, &state, now)?;
            let mut reason = decision.reason.clone();
            if let (Some(firing), Some(key)) = (&decision.firing, &decision.key) {
                tx.put_firing(&eval::firing_name(rule), key, firing)?;
            }
            if decision.outcome == Outcome::Fired {
                let job = tx.insert_job(NewJob {
                    rule: rule.name.clone(),
                    event_id: event.id.clone(),
                    key: decision.key.clone().unwrap_or_else(|| event.id.clone()),
                    created_at: now,
                    data: job_data(rule, &ctx, set.hash()),
                })?;
                reason = Some(format!("{}; job {}", reason.unwrap_or_default(), job.id));
            }
            let entry = JournalRecord {
                event_id: event.id.clone(),
                rule: rule.name.clone(),
                outcome: decision.outcome.as_str().to_owned(),
                reason,
                rules_hash: set.hash().to_owned(),
                at: now,
            };
            tx.put_journal(event.seq, &entry)?;
        }
        Ok(())
    }
}

//! `rules replay`: stored events re-evaluated with candidate rules, compared with what the
//! journal says fired. Evaluation is the engine's own ([`crate::rules::eval`]) at each event's
//! time, with stored silences and an in-memory firing state that starts empty at `since`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::rules::eval::{EventContext, MemoryState, Outcome};
use crate::rules::RuleSet;
use crate::store::{Store, StoreError};

/// One rule whose firing on one event differs between the journal and the candidate rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub event_id: String,
    pub event_type: String,
    pub at: DateTime<Utc>,
    pub rule: String,
    /// The journal's outcome and reason (`None`: the rule was not offered the event then).
    pub recorded: Option<(String, Option<String>)>,
    /// The candidate's outcome and reason (`None`: the candidate rules do not offer it the event).
    pub candidate: Option<(String, Option<String>)>,
}

impl Difference {
    /// Whether the candidate rules fire where the recorded ones did not.
    pub fn newly_fires(&self) -> bool {
        self.candidate.as_ref().is_some_and(|(o, _)| fired(o))
    }
}

/// What a replay found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Replayed {
    /// Events re-evaluated.
    pub events: usize,
    pub differences: Vec<Difference>,
}

fn fired(outcome: &str) -> bool {
    outcome == Outcome::Fired.as_str() || outcome == Outcome::Shadow.as_str()
}

/// Re-evaluates every event stored since `since` with `set`.
pub fn replay(
    store: &Store,
    set: &RuleSet,
    vars: &Map<String, Value>,
    since: DateTime<Utc>,
) -> Result<Replayed, StoreError> {
    let mut state = MemoryState {
        silences: store.silences().collect::<Result<_, _>>()?,
        ..MemoryState::default()
    };
    let mut replayed = Replayed::default();
    for event in store.events_since(since) {
        let event = event?;
        replayed.events += 1;
        let mut recorded: BTreeMap<String, (String, Option<String>)> = store
            .journal_of_event(event.seq)?
            .into_iter()
            .map(|j| (j.rule, (j.outcome, j.reason)))
            .collect();
        let ctx = EventContext::new(&event, vars, event.at);
        let schedule_rule = event.data.get("rule").and_then(Value::as_str);
        for rule in set.candidates(&event.kind, schedule_rule) {
            let decision = state.decide(rule, &ctx, event.at);
            let before = recorded.remove(&rule.name);
            let now_fires = decision.outcome.fired();
            let before_fired = before.as_ref().is_some_and(|(o, _)| fired(o));
            if now_fires != before_fired {
                replayed.differences.push(Difference {
                    event_id: event.id.clone(),
                    event_type: event.kind.clone(),
                    at: event.at,
                    rule: rule.name.clone(),
                    recorded: before,
                    candidate: Some((decision.outcome.as_str().to_owned(), decision.reason)),
                });
            }
        }
        // Rules that fired then but are not offered the event now (removed, or trigger changed).
        for (rule, before) in recorded {
            if fired(&before.0) {
                replayed.differences.push(Difference {
                    event_id: event.id.clone(),
                    event_type: event.kind.clone(),
                    at: event.at,
                    rule,
                    recorded: Some(before),
                    candidate: None,
                });
            }
        }
    }
    Ok(replayed)
}

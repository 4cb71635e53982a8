//! Pure evaluation of one event against one rule: context → `when` → key → dedupe, cooldown and
//! throttle per key → silences → mode. No I/O: firing records and silences come in through
//! [`State`], so the engine (inside a store transaction), `rules test` and `rules replay` (in
//! memory) decide alike.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::{Mode, Rule};
use crate::store::{EventRecord, FiringRecord, SilenceRecord};
use crate::template::TemplateError;

/// The context of one event (DESIGN §4), built once and shared by every rule it is offered to.
pub struct EventContext {
    /// `event`, `run`, `pr`, `payload`, `vars`, `now`, `summary`: everything but `rule`.
    json: Map<String, Value>,
    value: minijinja::Value,
    event_id: String,
}

/// RFC 3339 in UTC with seconds, as every time in a context is written.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The `event` object of the context.
pub fn event_json(event: &EventRecord) -> Value {
    let field = |name: &str| event.data.get(name).cloned().unwrap_or(Value::Null);
    json!({
        "id": event.id,
        "type": event.kind,
        "at": rfc3339(event.at),
        "source": event.source.as_str(),
        "from": field("from"),
        "to": field("to"),
        "action": field("action"),
    })
}

impl EventContext {
    /// The context of `event`, with the config's `vars`, at `now`.
    pub fn new(event: &EventRecord, vars: &Map<String, Value>, now: DateTime<Utc>) -> EventContext {
        let field = |name: &str| event.data.get(name).cloned().unwrap_or(Value::Null);
        let mut json = Map::new();
        json.insert("event".into(), event_json(event));
        json.insert("run".into(), field("run"));
        json.insert("pr".into(), field("pr"));
        json.insert("payload".into(), field("payload"));
        json.insert("vars".into(), Value::Object(vars.clone()));
        json.insert("now".into(), Value::String(rfc3339(now)));
        json.insert("summary".into(), field("summary"));
        let value = minijinja::Value::from_serialize(&json);
        EventContext {
            json,
            value,
            event_id: event.id.clone(),
        }
    }

    /// What a rule's conditions and templates see: this context plus `rule`.
    pub fn for_rule(&self, rule: &Rule) -> minijinja::Value {
        let own = minijinja::context! { rule => rule.context.clone() };
        minijinja::value::merge_maps([own, self.value.clone()])
    }

    /// The job contract's `context` for a rule: this context plus `rule`.
    pub fn job_context(&self, rule: &Rule) -> Value {
        let mut json = self.json.clone();
        json.insert("rule".into(), rule.context_value());
        Value::Object(json)
    }

    /// The event's stable id (the default key).
    pub fn event_id(&self) -> &str {
        &self.event_id
    }
}

/// What happened to a rule on an event (the journal's `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A job was written.
    Fired,
    /// `when` was false (or the trigger did not match, in replays and tests).
    NotMatched,
    /// The rule already fired for this key (no cooldown or throttle allows it again).
    Duplicate,
    /// Fired for this key too recently.
    Cooldown,
    /// The key's throttle window is full.
    Throttled,
    /// A silence covers the rule (or this key).
    Silenced,
    /// Shadow mode: it would have fired.
    Shadow,
    /// Mode off.
    Off,
    /// A condition or the key failed to evaluate.
    Error,
}

impl Outcome {
    /// The journal's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Fired => "fired",
            Outcome::NotMatched => "not_matched",
            Outcome::Duplicate => "duplicate",
            Outcome::Cooldown => "cooldown",
            Outcome::Throttled => "throttled",
            Outcome::Silenced => "silenced",
            Outcome::Shadow => "shadow",
            Outcome::Off => "off",
            Outcome::Error => "error",
        }
    }

    /// Whether the rule fired (or, in shadow mode, would have).
    pub const fn fired(self) -> bool {
        matches!(self, Outcome::Fired | Outcome::Shadow)
    }
}

/// The decision of one rule on one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub outcome: Outcome,
    /// Why, in words for `explain`.
    pub reason: Option<String>,
    /// The rendered key, once known.
    pub key: Option<String>,
    /// The firing record to store (under [`firing_name`]) when the rule fired or would have.
    pub firing: Option<FiringRecord>,
}

impl Decision {
    fn new(outcome: Outcome, reason: impl Into<String>, key: Option<String>) -> Decision {
        Decision {
            outcome,
            reason: Some(reason.into()),
            key,
            firing: None,
        }
    }
}

/// Firing records and silences, from the store or from memory.
pub trait State {
    type Error;
    /// The firing record of `rule` (as named by [`firing_name`]) for `key`.
    fn firing(&self, rule: &str, key: &str) -> Result<Option<FiringRecord>, Self::Error>;
    /// The silences of `rule` that may be active.
    fn silences(&self, rule: &str) -> Result<Vec<SilenceRecord>, Self::Error>;
}

/// Firing records and silences held in memory: what `rules test` and `rules replay` evaluate
/// against instead of the store.
#[derive(Debug, Default)]
pub struct MemoryState {
    pub firings: std::collections::HashMap<(String, String), FiringRecord>,
    pub silences: Vec<SilenceRecord>,
}

impl MemoryState {
    /// Decides what `rule` does with the event of `ctx` at `now`, and keeps the firing record
    /// the decision leaves, as the engine would store it.
    pub fn decide(&mut self, rule: &Rule, ctx: &EventContext, now: DateTime<Utc>) -> Decision {
        let Ok(decision) = decide(rule, ctx, &*self, now);
        if let (Some(firing), Some(key)) = (&decision.firing, &decision.key) {
            self.firings
                .insert((firing_name(rule), key.clone()), firing.clone());
        }
        decision
    }
}

impl State for MemoryState {
    type Error = std::convert::Infallible;

    fn firing(&self, rule: &str, key: &str) -> Result<Option<FiringRecord>, Self::Error> {
        Ok(self
            .firings
            .get(&(rule.to_owned(), key.to_owned()))
            .cloned())
    }

    fn silences(&self, rule: &str) -> Result<Vec<SilenceRecord>, Self::Error> {
        Ok(self
            .silences
            .iter()
            .filter(|s| s.rule == rule)
            .cloned()
            .collect())
    }
}

/// Shadow firings are kept apart, so a shadow rule throttles like its enforced self would
/// without its trial runs counting against the real thing.
pub fn firing_name(rule: &Rule) -> String {
    match rule.mode {
        Mode::Shadow => format!("{}#shadow", rule.name),
        Mode::Enforce | Mode::Off => rule.name.clone(),
    }
}

/// Decides what `rule` does with the event of `ctx` at `now`.
pub fn decide<S: State>(
    rule: &Rule,
    ctx: &EventContext,
    state: &S,
    now: DateTime<Utc>,
) -> Result<Decision, S::Error> {
    if rule.mode == Mode::Off {
        return Ok(Decision::new(Outcome::Off, "mode is off", None));
    }
    let value = ctx.for_rule(rule);
    if let Some(when) = &rule.when {
        match when.eval(&value) {
            Ok(true) => {}
            Ok(false) => {
                let reason = format!("`when` is false: {}{}", when.source, when.explain(&value));
                return Ok(Decision::new(Outcome::NotMatched, reason, None));
            }
            Err(err) => {
                let reason = format!("`when` failed: {}", TemplateError::from(err));
                return Ok(Decision::new(Outcome::Error, reason, None));
            }
        }
    }
    let key = match render_key(rule, ctx, &value) {
        Ok(key) => key,
        Err(reason) => return Ok(Decision::new(Outcome::Error, reason, None)),
    };
    let name = firing_name(rule);
    let previous = state.firing(&name, &key)?;
    if let Some(blocked) = limits(rule, previous.as_ref(), &key, now) {
        return Ok(blocked);
    }
    let silences = state.silences(&rule.name)?;
    if let Some(s) = silences
        .iter()
        .find(|s| s.is_active_at(now) && s.covers_key(&key))
    {
        let scope = if s.key.is_some() { " for this key" } else { "" };
        let reason = format!(
            "silence #{}{scope} until {}: {}",
            s.id,
            rfc3339(s.until),
            s.reason
        );
        return Ok(Decision::new(Outcome::Silenced, reason, Some(key)));
    }
    let (outcome, reason) = match rule.mode {
        Mode::Shadow => (
            Outcome::Shadow,
            format!("would fire (shadow mode), key {key:?}"),
        ),
        Mode::Enforce | Mode::Off => (Outcome::Fired, format!("key {key:?}")),
    };
    Ok(Decision {
        outcome,
        reason: Some(reason),
        firing: Some(next_firing(rule, previous.as_ref(), now)),
        key: Some(key),
    })
}

/// The rendered key: the rule's template, or the event id.
pub fn render_key(
    rule: &Rule,
    ctx: &EventContext,
    value: &minijinja::Value,
) -> Result<String, String> {
    let Some(template) = &rule.key else {
        return Ok(ctx.event_id().to_owned());
    };
    let Some(compiled) = &rule.key_template else {
        return Ok(template.clone());
    };
    let key = compiled
        .render(value)
        .map_err(|e| format!("`key` failed: {}", TemplateError::from(e)))?;
    if key.trim().is_empty() {
        return Err(format!("`key` rendered empty: {template}"));
    }
    Ok(key)
}

/// Dedupe, cooldown and throttle for one key: `Some` when they stop the rule.
fn limits(
    rule: &Rule,
    previous: Option<&FiringRecord>,
    key: &str,
    now: DateTime<Utc>,
) -> Option<Decision> {
    let previous = previous?;
    let last = rfc3339(previous.last_at);
    if rule.cooldown.is_none() && rule.throttle.is_none() {
        let reason = format!("already fired for key {key:?} at {last}");
        return Some(Decision::new(
            Outcome::Duplicate,
            reason,
            Some(key.to_owned()),
        ));
    }
    if let Some(cooldown) = rule.cooldown {
        let until = previous.last_at
            + chrono::Duration::from_std(cooldown).unwrap_or(chrono::Duration::MAX);
        if now < until {
            let reason = format!(
                "cooldown: fired for key {key:?} at {last}; again from {}",
                rfc3339(until)
            );
            return Some(Decision::new(
                Outcome::Cooldown,
                reason,
                Some(key.to_owned()),
            ));
        }
    }
    if let Some(throttle) = rule.throttle {
        let end = window_end(previous, throttle.per);
        if now < end && previous.count_in_window >= throttle.limit {
            let reason = format!(
                "throttle: {} of {} firings for key {key:?} in the window until {}",
                previous.count_in_window,
                throttle.limit,
                rfc3339(end)
            );
            return Some(Decision::new(
                Outcome::Throttled,
                reason,
                Some(key.to_owned()),
            ));
        }
    }
    None
}

fn window_end(firing: &FiringRecord, per: std::time::Duration) -> DateTime<Utc> {
    firing.window_start + chrono::Duration::from_std(per).unwrap_or(chrono::Duration::MAX)
}

/// The firing record after the rule fires at `now`.
pub fn next_firing(
    rule: &Rule,
    previous: Option<&FiringRecord>,
    now: DateTime<Utc>,
) -> FiringRecord {
    let Some(previous) = previous else {
        return FiringRecord {
            first_at: now,
            last_at: now,
            count_in_window: 1,
            window_start: now,
            by_event: rule.key.is_none(),
        };
    };
    let expired = rule
        .throttle
        .is_none_or(|t| now >= window_end(previous, t.per));
    let (window_start, count) = if expired {
        (now, 1)
    } else {
        (
            previous.window_start,
            previous.count_in_window.saturating_add(1),
        )
    };
    FiringRecord {
        first_at: previous.first_at,
        last_at: now,
        count_in_window: count,
        window_start,
        by_event: rule.key.is_none(),
    }
}

#[cfg(test)]
mod tests;

//! Rule-level checks: name, trigger or schedule, `when`, `key`, cooldown, throttle and mode,
//! and the warnings for rules that cannot do what their author meant.

use std::str::FromStr;
use std::time::Duration;

use super::Checker;
use crate::rules::model::{Mode, OneOrMany, RawRule};
use crate::rules::shape::{Family, Scope};
use crate::rules::trigger::Pattern;
use crate::rules::{KeyTemplate, Rule, Schedule, Throttle, Trigger};
use crate::template::is_template;
use crate::yaml::{Location, YamlPath};

/// Longest rule name: names appear in keys, metrics and log lines.
const MAX_NAME: usize = 100;

fn at(field: &str) -> YamlPath {
    YamlPath::root().key(field)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.len() <= MAX_NAME
}

impl Checker<'_> {
    /// Checks a rule that deserialized; `None` when anything is wrong.
    pub(crate) fn rule(&mut self, raw: &RawRule, location: Location) -> Option<Rule> {
        if !valid_name(&raw.name) {
            self.error(
                at("name"),
                format!("invalid rule name {:?}", raw.name),
                Some(format!("use letters, digits, `-`, `_` and `.` (at most {MAX_NAME}), starting with a letter or digit")),
            );
        }
        let trigger = self.trigger(raw);
        let families = match &trigger {
            Some(Trigger::Events(patterns)) => {
                let mut f: Vec<Family> = patterns.iter().flat_map(|p| p.families.clone()).collect();
                f.sort();
                f.dedup();
                f
            }
            Some(Trigger::Schedule(_)) => vec![Family::Schedule],
            None => Vec::new(),
        };
        let when = match (&raw.when, families.is_empty()) {
            (Some(source), false) => self.condition(at("when"), source, &families, Scope::Rule),
            _ => None,
        };
        if let (Some(key), false) = (&raw.key, families.is_empty()) {
            if key.trim().is_empty() {
                self.error(
                    at("key"),
                    "empty key",
                    Some("remove `key` to key firings by event".into()),
                );
            } else {
                self.template(at("key"), key, &families, Scope::Rule);
            }
        }
        let cooldown = raw.cooldown.map(|d| d.get());
        if cooldown == Some(Duration::ZERO) {
            self.error(at("cooldown"), "cooldown must be longer than 0s", None);
        }
        let throttle = raw.throttle.as_ref().map(|t| Throttle {
            limit: t.limit,
            per: t.per.get(),
        });
        self.throttle(throttle);
        let mode = raw.mode.unwrap_or_default();
        let steps = self.steps(&raw.steps, &families);
        self.warnings(raw, mode);
        let (trigger, steps) = match (trigger, steps) {
            (Some(t), Some(s)) if !self.has_errors() => (t, s),
            _ => return None,
        };
        let steps_json = crate::rules::compile::steps::steps_json(&steps);
        Some(Rule {
            name: raw.name.clone(),
            description: raw.description.clone(),
            file: self.doc.file().to_path_buf(),
            location,
            trigger,
            families,
            when,
            key: raw.key.clone(),
            key_template: raw
                .key
                .as_deref()
                .filter(|k| is_template(k))
                .and_then(|k| KeyTemplate::compile(k).ok()),
            context: minijinja::Value::from_serialize(serde_json::json!({
                "name": raw.name,
                "description": raw.description,
            })),
            cooldown,
            throttle,
            mode,
            steps,
            steps_json,
        })
    }

    fn trigger(&mut self, raw: &RawRule) -> Option<Trigger> {
        match (&raw.trigger, &raw.schedule) {
            (Some(_), Some(_)) => {
                self.key_error(
                    at("schedule"),
                    "a rule has `trigger` or `schedule`, not both",
                    Some("split it into two rules".into()),
                );
                None
            }
            (None, None) => {
                self.key_error(
                    YamlPath::root(),
                    "missing `trigger` or `schedule`",
                    Some("e.g. `trigger: run.finished` or `schedule: \"0 0 9 * * *\"`".into()),
                );
                None
            }
            (Some(trigger), None) => {
                if raw.timezone.is_some() {
                    self.error(
                        at("timezone"),
                        "`timezone` only applies to `schedule`",
                        None,
                    );
                }
                self.patterns(trigger).map(Trigger::Events)
            }
            (None, Some(cron)) => self
                .schedule(cron, raw.timezone.as_deref())
                .map(|s| Trigger::Schedule(Box::new(s))),
        }
    }

    fn patterns(&mut self, trigger: &OneOrMany) -> Option<Vec<Pattern>> {
        let items = trigger.items();
        if items.is_empty() {
            self.error(
                at("trigger"),
                "`trigger` is an empty list",
                Some("name at least one event type".into()),
            );
            return None;
        }
        let mut patterns = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let place = match trigger {
                OneOrMany::One(_) => at("trigger"),
                OneOrMany::Many(_) => at("trigger").index(i),
            };
            match Pattern::parse(item) {
                Ok(p) => patterns.push(p),
                Err(e) => self.error(place, e.message, e.hint),
            }
        }
        (patterns.len() == items.len()).then_some(patterns)
    }

    fn schedule(&mut self, text: &str, timezone: Option<&str>) -> Option<Schedule> {
        let fields = text.split_whitespace().count();
        let cron = if fields == 5 {
            self.error(
                at("schedule"),
                format!("invalid cron {text:?}: 5 fields, but cron here starts with seconds"),
                Some(format!("add the seconds first: \"0 {text}\"")),
            );
            None
        } else {
            match cron::Schedule::from_str(text) {
                Ok(c) => Some(c),
                Err(err) => {
                    // The crate's message ends with its own explanation after a caret line.
                    let why = err.to_string();
                    let why = why.lines().last().unwrap_or_default().trim().to_owned();
                    let why = if why.is_empty() || why.contains('^') {
                        "not a cron expression".to_owned()
                    } else {
                        why
                    };
                    self.error(
                        at("schedule"),
                        format!("invalid cron {text:?}: {why}"),
                        Some("6 or 7 fields: sec min hour day-of-month month day-of-week [year], e.g. \"0 0 9 * * Mon-Fri\"".into()),
                    );
                    None
                }
            }
        };
        let tz = match timezone {
            None => None,
            Some(name) => {
                match chrono_tz::Tz::from_str(name) {
                    Ok(tz) => Some(tz),
                    Err(_) => {
                        self.error(
                        at("timezone"),
                        format!("unknown time zone {name:?}"),
                        Some("use an IANA name such as `UTC`, `Europe/Paris` or `America/New_York`".into()),
                    );
                        return None;
                    }
                }
            }
        };
        let schedule = Schedule {
            text: text.to_owned(),
            cron: cron?,
            timezone: tz,
        };
        if schedule.next_after(chrono::Utc::now()).is_none() {
            self.warn(at("schedule"), format!("cron {text:?} never fires"), None);
        }
        Some(schedule)
    }

    fn throttle(&mut self, throttle: Option<Throttle>) {
        let Some(t) = throttle else { return };
        if t.limit == 0 {
            self.error(
                at("throttle").key("limit"),
                "throttle limit must be at least 1",
                Some("to stop a rule, use `mode: off`".into()),
            );
        }
        if t.per == Duration::ZERO {
            self.error(
                at("throttle").key("per"),
                "throttle window must be longer than 0s",
                None,
            );
        }
    }

    fn warnings(&mut self, raw: &RawRule, mode: Mode) {
        if mode == Mode::Off {
            self.warn(at("mode"), "rule is off: it never fires", None);
        }
        if let Some(when) = &raw.when {
            if matches!(when.trim(), "false" | "False" | "none" | "None") {
                self.warn(
                    at("when"),
                    "`when` is always false: the rule never fires",
                    None,
                );
            }
        }
        let limited = raw.cooldown.is_some() || raw.throttle.is_some();
        match &raw.key {
            None if limited => {
                let field = if raw.cooldown.is_some() {
                    "cooldown"
                } else {
                    "throttle"
                };
                self.warn(
                    at(field),
                    format!("`{field}` has no effect without `key`: each event is its own key"),
                    Some("set `key`, e.g. `key: \"{{ pr.url }}\"`".into()),
                );
            }
            Some(key) if !is_template(key) && !limited => {
                self.warn(
                    at("key"),
                    "constant key without cooldown or throttle: the rule fires once, ever",
                    Some("use a template such as `{{ run.id }}`, or add `cooldown`".into()),
                );
            }
            _ => {}
        }
    }
}

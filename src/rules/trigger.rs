//! Trigger patterns: an event type (`run.finished`), a glob (`run.*`, `github.pull_request*`),
//! checked against the known event types when the rule loads.

use crate::events::EventKind;

use super::shape::Family;

/// GitHub webhook events a rule may name (`github.<event>`): the ones a Codegen deployment
/// plausibly receives. A name outside this list is most likely a typo.
pub const GITHUB_EVENTS: &[&str] = &[
    "check_run",
    "check_suite",
    "commit_comment",
    "create",
    "delete",
    "deployment",
    "deployment_status",
    "installation",
    "installation_repositories",
    "issue_comment",
    "issues",
    "label",
    "merge_group",
    "ping",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request_review_thread",
    "push",
    "release",
    "repository",
    "status",
    "workflow_dispatch",
    "workflow_job",
    "workflow_run",
];

/// Every event type a rule can be triggered by, for globs and hints.
pub fn known_types() -> Vec<String> {
    let mut all: Vec<String> = EventKind::RUN_TYPES
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    all.extend(GITHUB_EVENTS.iter().map(|e| format!("github.{e}")));
    all
}

/// The family of an event type.
pub fn family_of(kind: &str) -> Option<Family> {
    if kind.starts_with("run.") {
        Some(Family::Run)
    } else if kind.starts_with("github.") {
        Some(Family::Github)
    } else if kind == "schedule" {
        Some(Family::Schedule)
    } else {
        None
    }
}

/// One compiled trigger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// As written.
    pub text: String,
    tokens: Vec<Token>,
    /// The families of the known types it matches (for context checks).
    pub families: Vec<Family>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`: one character.
    One,
    /// `*`: any run of characters, dots included.
    Any,
    /// `[...]`: one character of a set (`!` first negates).
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Why a trigger entry is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerError {
    pub message: String,
    pub hint: Option<String>,
}

fn error(message: String, hint: Option<String>) -> TriggerError {
    TriggerError { message, hint }
}

impl Pattern {
    /// Compiles one trigger entry: an exact known type, or a glob matching at least one.
    pub fn parse(text: &str) -> Result<Pattern, TriggerError> {
        if text == "schedule" {
            return Err(error(
                "`schedule` is not a trigger".into(),
                Some("scheduled rules use `schedule: \"<cron>\"` instead of `trigger`".into()),
            ));
        }
        let tokens = tokenize(text)?;
        let is_glob = tokens.iter().any(|t| !matches!(t, Token::Literal(_)));
        let known = known_types();
        if !is_glob {
            return exact(text, &known).map(|family| Pattern {
                text: text.to_owned(),
                tokens,
                families: vec![family],
            });
        }
        let mut families: Vec<Family> = known
            .iter()
            .filter(|k| matches_tokens(&tokens, &k.chars().collect::<Vec<_>>()))
            .filter_map(|k| family_of(k))
            .collect();
        // `github.*` also matches GitHub events outside the list; keep its family.
        if text.starts_with("github.") && !families.contains(&Family::Github) {
            families.push(Family::Github);
        }
        families.sort();
        families.dedup();
        if families.is_empty() {
            return Err(error(
                format!("`{text}` matches no event type"),
                Some("event types are run.created, run.status_changed, run.finished, run.resumed, run.pr_opened, run.stalled and github.<event>".into()),
            ));
        }
        Ok(Pattern {
            text: text.to_owned(),
            tokens,
            families,
        })
    }

    /// Whether the pattern matches an event type.
    pub fn matches(&self, kind: &str) -> bool {
        if let [rest @ .., last] = self.tokens.as_slice() {
            // Fast paths for the common shapes: exact names and `prefix*`.
            if self.tokens.iter().all(|t| matches!(t, Token::Literal(_))) {
                return self.text == kind;
            }
            if *last == Token::Any && rest.iter().all(|t| matches!(t, Token::Literal(_))) {
                return kind.starts_with(&self.text[..self.text.len() - 1]);
            }
        }
        let chars: Vec<char> = kind.chars().collect();
        matches_tokens(&self.tokens, &chars)
    }

    /// Whether the pattern names exactly one type (no wildcard).
    pub fn exact_type(&self) -> Option<&str> {
        self.tokens
            .iter()
            .all(|t| matches!(t, Token::Literal(_)))
            .then_some(self.text.as_str())
    }
}

fn exact(text: &str, known: &[String]) -> Result<Family, TriggerError> {
    if known.iter().any(|k| k == text) {
        return family_of(text).ok_or_else(|| error(format!("unknown event type `{text}`"), None));
    }
    let hint = super::did_you_mean(text, known.iter().map(String::as_str));
    if let Some(event) = text.strip_prefix("github.") {
        if hint.is_none() && is_identifier(event) {
            return Err(error(
                format!("unknown GitHub event `{event}`"),
                Some(format!("known GitHub events: {}", GITHUB_EVENTS.join(", "))),
            ));
        }
    }
    Err(error(
        format!("unknown event type `{text}`"),
        hint.or_else(|| Some("event types are run.created, run.status_changed, run.finished, run.resumed, run.pr_opened, run.stalled and github.<event>".into())),
    ))
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

fn tokenize(text: &str) -> Result<Vec<Token>, TriggerError> {
    if text.is_empty() {
        return Err(error("empty event type".into(), None));
    }
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '*' => Token::Any,
            '?' => Token::One,
            '[' => class(text, &mut chars)?,
            ']' => return Err(bad_glob(text, "`]` without `[`")),
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '_') => Token::Literal(c),
            c => {
                return Err(error(
                    format!("invalid character {c:?} in event type `{text}`"),
                    Some("event types use lowercase letters, digits, `.` and `_`; globs add `*`, `?` and `[...]`".into()),
                ))
            }
        });
    }
    Ok(tokens)
}

fn class(
    text: &str,
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Result<Token, TriggerError> {
    let negated = chars.next_if_eq(&'!').is_some();
    let mut ranges = Vec::new();
    loop {
        match chars.next() {
            None => return Err(bad_glob(text, "`[` is not closed")),
            Some(']') if ranges.is_empty() => return Err(bad_glob(text, "empty `[]`")),
            Some(']') => break,
            Some(start) => {
                if chars.next_if_eq(&'-').is_some() {
                    match chars.next() {
                        Some(end) if end != ']' && end >= start => ranges.push((start, end)),
                        _ => return Err(bad_glob(text, "bad range in `[...]`")),
                    }
                } else {
                    ranges.push((start, start));
                }
            }
        }
    }
    Ok(Token::Class { negated, ranges })
}

fn bad_glob(text: &str, why: &str) -> TriggerError {
    error(
        format!("bad glob `{text}`: {why}"),
        Some("globs use `*` (any characters), `?` (one) and `[abc]`".into()),
    )
}

/// Glob matching by backtracking over the last `*` (linear for the patterns rules use).
fn matches_tokens(tokens: &[Token], text: &[char]) -> bool {
    let (mut t, mut s) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while s < text.len() {
        match tokens.get(t) {
            Some(Token::Any) => {
                star = Some((t, s));
                t += 1;
            }
            Some(token) if one_matches(token, text[s]) => {
                t += 1;
                s += 1;
            }
            _ => match star {
                Some((star_t, star_s)) => {
                    t = star_t + 1;
                    s = star_s + 1;
                    star = Some((star_t, star_s + 1));
                }
                None => return false,
            },
        }
    }
    tokens[t.min(tokens.len())..]
        .iter()
        .all(|token| *token == Token::Any)
}

fn one_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(l) => *l == c,
        Token::One => true,
        Token::Any => false,
        Token::Class { negated, ranges } => {
            ranges.iter().any(|(a, b)| (*a..=*b).contains(&c)) != *negated
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_types_and_globs_match() {
        let p = Pattern::parse("run.finished").unwrap();
        assert!(p.matches("run.finished") && !p.matches("run.finished2"));
        let p = Pattern::parse("run.*").unwrap();
        assert!(p.matches("run.pr_opened") && !p.matches("github.push"));
        assert_eq!(p.families, vec![Family::Run]);
        let p = Pattern::parse("*").unwrap();
        assert_eq!(p.families, vec![Family::Run, Family::Github]);
        let p = Pattern::parse("github.pull_request*").unwrap();
        assert!(p.matches("github.pull_request_review"));
        let p = Pattern::parse("run.[rs]*").unwrap();
        assert!(p.matches("run.resumed") && p.matches("run.stalled") && !p.matches("run.created"));
        let p = Pattern::parse("run.?tall*").unwrap();
        assert!(p.matches("run.stalled"));
    }

    #[test]
    fn mistakes_are_explained() {
        let e = Pattern::parse("run.finshed").unwrap_err();
        assert_eq!(e.message, "unknown event type `run.finshed`");
        assert_eq!(e.hint.as_deref(), Some("did you mean `run.finished`?"));
        let e = Pattern::parse("run.[ab").unwrap_err();
        assert_eq!(e.message, "bad glob `run.[ab`: `[` is not closed");
        let e = Pattern::parse("deploy.*").unwrap_err();
        assert_eq!(e.message, "`deploy.*` matches no event type");
        let e = Pattern::parse("github.deploy_key_thing").unwrap_err();
        assert_eq!(e.message, "unknown GitHub event `deploy_key_thing`");
        assert!(Pattern::parse("schedule").is_err());
        assert!(Pattern::parse("Run.Finished").is_err());
    }
}

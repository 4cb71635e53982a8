//! Typed big-endian keys: byte order equals numeric order, so sled's ordered scans are id order.
//!
//! Layouts (all integers big-endian):
//! - i64 ids have the sign bit flipped, so -1 sorts before 0 and 0 before 1;
//! - `runs` and `runs_active` (org, run) = 16 bytes; `transitions` (org, run, seq u32) = 20 bytes;
//! - `events`, `jobs`, `jobs_open`, `silences`: u64 = 8 bytes;
//! - `run_events` (org, run, event seq u64) = 24 bytes;
//! - `journal` (event seq u64, rule): the rule name is the last component, unprefixed;
//! - `firings` (rule, key): the rule is prefixed by its u32 length, the key is the rest;
//! - `event_ids`, `deliveries`, `schedule_marks`, `meta`, `pr_runs`: the UTF-8 string itself.

use super::error::StoreError;
use super::trees::TreeName;

const SIGN_BIT: u64 = 1 << 63;

/// Encodes an i64 so that unsigned byte order is numeric order.
pub(crate) fn i64_bytes(v: i64) -> [u8; 8] {
    ((v as u64) ^ SIGN_BIT).to_be_bytes()
}

pub(crate) fn i64_from(b: &[u8]) -> i64 {
    (u64::from_be_bytes(arr(b)) ^ SIGN_BIT) as i64
}

fn u64_from(b: &[u8]) -> u64 {
    u64::from_be_bytes(arr(b))
}

/// Callers only pass slices of exactly eight bytes (lengths are checked before).
fn arr(b: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&b[..8]);
    out
}

/// `runs` key, also the prefix of a run's `transitions` and `run_events` keys.
pub(crate) fn run(org: i64, run: i64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&i64_bytes(org));
    k[8..].copy_from_slice(&i64_bytes(run));
    k
}

/// Prefix of every `runs`, `transitions` and `run_events` key of one organization.
pub(crate) fn org(org: i64) -> [u8; 8] {
    i64_bytes(org)
}

pub(crate) fn transition(org: i64, run_id: i64, seq: u32) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(&run(org, run_id));
    k[16..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn run_event(org: i64, run_id: i64, seq: u64) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..16].copy_from_slice(&run(org, run_id));
    k[16..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Key of the u64-keyed trees: `events`, `jobs`, `jobs_open`, `silences`.
pub(crate) fn id(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

pub(crate) fn journal(event_seq: u64, rule: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + rule.len());
    k.extend_from_slice(&event_seq.to_be_bytes());
    k.extend_from_slice(rule.as_bytes());
    k
}

/// The rule name and the rendered key of a `firings` key, if it is well formed.
pub(crate) fn firing_parts(k: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = k.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len) as usize;
    (len <= rest.len()).then(|| rest.split_at(len))
}

pub(crate) fn firing(rule: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + rule.len() + key.len());
    // Rule names fit in u32 by construction (they come from YAML files).
    k.extend_from_slice(&(rule.len() as u32).to_be_bytes());
    k.extend_from_slice(rule.as_bytes());
    k.extend_from_slice(key.as_bytes());
    k
}

/// Decodes a u64 key (`events`, `jobs`, `jobs_open`, `silences`, or the `event_ids` value).
pub(crate) fn decode_id(tree: TreeName, k: &[u8]) -> Result<u64, StoreError> {
    if k.len() != 8 {
        return Err(bad_key(tree, k));
    }
    Ok(u64_from(k))
}

/// Decodes a `runs` / `runs_active` key into (org, run).
pub(crate) fn decode_run(tree: TreeName, k: &[u8]) -> Result<(i64, i64), StoreError> {
    if k.len() != 16 {
        return Err(bad_key(tree, k));
    }
    Ok((i64_from(&k[..8]), i64_from(&k[8..])))
}

/// Decodes a `run_events` key into (org, run, event seq).
pub(crate) fn decode_run_event(k: &[u8]) -> Result<(i64, i64, u64), StoreError> {
    if k.len() != 24 {
        return Err(bad_key(TreeName::RunEvents, k));
    }
    Ok((i64_from(&k[..8]), i64_from(&k[8..16]), u64_from(&k[16..])))
}

/// Decodes the event seq of a `journal` key.
pub(crate) fn decode_journal_seq(k: &[u8]) -> Result<u64, StoreError> {
    if k.len() < 8 {
        return Err(bad_key(TreeName::Journal, k));
    }
    Ok(u64_from(&k[..8]))
}

pub(crate) fn bad_key(tree: TreeName, k: &[u8]) -> StoreError {
    StoreError::BadKey {
        tree: tree.as_str(),
        key: describe(tree, k),
    }
}

/// Renders a key of `tree` for error messages: its components when the layout fits, hex otherwise.
pub fn describe(tree: TreeName, k: &[u8]) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match (tree, k.len()) {
        (TreeName::Runs | TreeName::RunsActive, 16) => {
            format!("{}/{}", i64_from(k), i64_from(&k[8..]))
        }
        (TreeName::Transitions, 20) => format!(
            "{}/{}/{}",
            i64_from(k),
            i64_from(&k[8..]),
            u32::from_be_bytes([k[16], k[17], k[18], k[19]])
        ),
        (TreeName::RunEvents, 24) => format!(
            "{}/{}/{}",
            i64_from(k),
            i64_from(&k[8..]),
            u64_from(&k[16..])
        ),
        (TreeName::Events | TreeName::Jobs | TreeName::JobsOpen | TreeName::Silences, 8) => {
            u64_from(k).to_string()
        }
        (TreeName::Journal, n) if n >= 8 => format!("{}/{}", u64_from(k), text(&k[8..])),
        (TreeName::Firings, _) => match firing_parts(k) {
            Some((rule, key)) => format!("{}/{}", text(rule), text(key)),
            None => format!("0x{}", hex::encode(k)),
        },
        (
            TreeName::EventIds
            | TreeName::Deliveries
            | TreeName::ScheduleMarks
            | TreeName::Meta
            | TreeName::PrRuns,
            _,
        ) if std::str::from_utf8(k).is_ok() => format!("{:?}", text(k)),
        _ => format!("0x{}", hex::encode(k)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i64_keys_sort_numerically() {
        let ids = [i64::MIN, -5, -1, 0, 1, 7, 300, i64::MAX];
        for pair in ids.windows(2) {
            assert!(i64_bytes(pair[0]) < i64_bytes(pair[1]), "{pair:?}");
            assert!(run(pair[0], 9) < run(pair[1], 0));
        }
        assert_eq!(i64_from(&i64_bytes(-42)), -42);
    }

    #[test]
    fn transition_keys_sort_by_run_then_seq() {
        assert!(transition(7, 1, 300) < transition(7, 2, 1));
        assert!(transition(7, 2, 9) < transition(7, 2, 10));
        assert!(transition(7, 2, 1).starts_with(&run(7, 2)));
    }

    #[test]
    fn firing_keys_do_not_mix_rules_sharing_a_prefix() {
        // "ab" + key "c" must differ from rule "abc" + key "".
        assert_ne!(firing("ab", "c"), firing("abc", ""));
        assert_eq!(describe(TreeName::Firings, &firing("ab", "c")), "ab/c");
        assert_eq!(
            firing_parts(&firing("ab", "c/d")),
            Some((&b"ab"[..], &b"c/d"[..]))
        );
        assert_eq!(
            firing_parts(&firing("ab", "")),
            Some((&b"ab"[..], &b""[..]))
        );
        assert_eq!(firing_parts(&[0, 0, 0, 9, b'a']), None);
        assert_eq!(firing_parts(&[0, 0]), None);
    }

    #[test]
    fn keys_describe_their_components() {
        assert_eq!(describe(TreeName::Runs, &run(-7, 123)), "-7/123");
        assert_eq!(
            describe(TreeName::Transitions, &transition(7, 123, 4)),
            "7/123/4"
        );
        assert_eq!(
            describe(TreeName::Journal, &journal(12, "rule-a")),
            "12/rule-a"
        );
        assert_eq!(describe(TreeName::Events, &id(99)), "99");
        assert_eq!(describe(TreeName::Deliveries, b"abc-1"), "\"abc-1\"");
        assert_eq!(describe(TreeName::Runs, &[1, 2]), "0x0102");
        assert_eq!(
            decode_run_event(&run_event(-1, 2, 3)).ok(),
            Some((-1, 2, 3))
        );
    }
}

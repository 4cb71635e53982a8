//! Reading a payload without building it: one pass that checks the whole text exactly as a full
//! parse into a `serde_json::Value` would (string escapes, surrogates, number ranges), and builds
//! only the few fields the receiver itself reads (the event's `action` and what
//! [`pr_subject`](super::subject::pr_subject) looks at). A 28 KB delivery that no rule listens to
//! then costs a validation, not a tree of a thousand allocations.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// What to build of one value: all of it, or only the listed fields of an object (applied to
/// each element of an array).
#[derive(Clone, Copy, Debug)]
enum Keep {
    All,
    Fields(&'static [(&'static str, Keep)]),
}

const HEAD: Keep = Keep::Fields(&[("ref", Keep::All)]);
const PULL_REQUEST: Keep = Keep::Fields(&[
    ("number", Keep::All),
    ("html_url", Keep::All),
    ("title", Keep::All),
    ("head", HEAD),
]);
const CHECKS: Keep = Keep::Fields(&[
    (
        "pull_requests",
        Keep::Fields(&[("number", Keep::All), ("head", HEAD)]),
    ),
    ("head_branch", Keep::All),
    ("check_suite", Keep::Fields(&[("head_branch", Keep::All)])),
]);
/// Everything the receiver reads of a payload.
const PAYLOAD: Keep = Keep::Fields(&[
    ("action", Keep::All),
    ("ref", Keep::All),
    (
        "repository",
        Keep::Fields(&[("full_name", Keep::All), ("html_url", Keep::All)]),
    ),
    ("pull_request", PULL_REQUEST),
    (
        "issue",
        Keep::Fields(&[
            ("number", Keep::All),
            ("title", Keep::All),
            ("pull_request", Keep::Fields(&[("html_url", Keep::All)])),
        ]),
    ),
    ("check_suite", CHECKS),
    ("check_run", CHECKS),
    ("workflow_run", CHECKS),
    ("workflow_job", CHECKS),
]);

/// Checks `text` as a full parse would and returns the fields the receiver reads, in the same
/// places as in the payload.
pub fn skeleton(text: &str) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Pick(PAYLOAD).deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

struct Pick(Keep);

impl<'de> DeserializeSeed<'de> for Pick {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.0 {
            Keep::All => Value::deserialize(d),
            Keep::Fields(fields) => d.deserialize_any(PickVisitor(fields)),
        }
    }
}

struct PickVisitor(&'static [(&'static str, Keep)]);

impl<'de> Visitor<'de> for PickVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Pick(Keep::Fields(self.0)))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(found) = map.next_key_seed(FieldName(self.0))? {
            match found {
                Some((name, keep)) => {
                    kept.insert(name.to_owned(), map.next_value_seed(Pick(keep))?);
                }
                None => {
                    map.next_value::<Checked>()?;
                }
            }
        }
        Ok(Value::Object(kept))
    }
}

/// A key, matched against the fields to keep without allocating.
struct FieldName(&'static [(&'static str, Keep)]);

impl<'de> DeserializeSeed<'de> for FieldName {
    type Value = Option<(&'static str, Keep)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldName {
    type Value = Option<(&'static str, Keep)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().find(|(name, _)| *name == key).copied())
    }
}

/// A value read and dropped, decoded exactly as `Value` would decode it (unlike serde's `IgnoredAny`,
/// which skips string escapes and number ranges unchecked), so that anything accepted here
/// reads back later as a `Value`.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_key::<Checked>()?.is_some() {
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
    }
}

#[cfg(test)]
mod tests {
    use super::super::subject::pr_subject;
    use super::*;

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/github")
            .join(name);
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn the_skeleton_says_what_the_full_payload_says() {
        for name in [
            "pull_request.opened.json",
            "check_suite.completed.json",
            "issue_comment.created.json",
        ] {
            let text = fixture(name);
            let full: Value = serde_json::from_str(&text).unwrap();
            let bones = skeleton(&text).unwrap();
            assert_eq!(pr_subject(&bones), pr_subject(&full), "{name}");
            assert_eq!(bones.get("action"), full.get("action"), "{name}");
            assert!(
                serde_json::to_vec(&bones).unwrap().len() < text.len() / 10,
                "{name}: the skeleton is small"
            );
        }
    }

    #[test]
    fn whatever_a_full_parse_refuses_is_refused() {
        for bad in [
            r#"{"a": "\ud800"}"#,
            r#"{"a": 1e400}"#,
            r#"{"a": "\x"}"#,
            r#"{"a": [1, 2}"#,
            r#"{"a": 1} trailing"#,
            "{\"a\": \"\u{1}\"}",
            r#"{"pull_request": {"title": "\udc00"}}"#,
        ] {
            assert!(serde_json::from_str::<Value>(bad).is_err(), "{bad}");
            assert!(skeleton(bad).is_err(), "{bad} was accepted");
        }
        let odd =
            r#"{"pull_request": null, "issue": [1], "ref": 7, "x": {"y": [1e300, "\u00e9"]}}"#;
        assert_eq!(
            skeleton(odd).unwrap(),
            serde_json::json!({"pull_request": null, "issue": [1], "ref": 7})
        );
    }
}

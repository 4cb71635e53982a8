//! Reading a payload without building it: one pass that checks the whole text exactly as a full
//! parse into a `serde_json::Value` would (string escapes, surrogates, number ranges), and builds
//! only the few fields the receiver itself reads (the event's `action` and what
//! [`pr_subject`](super::subject::pr_subject) looks at). A 28 KB delivery that no rule listens to
//! then costs a validation, not a tree of a thousand allocations. Both readings count the
//! nesting as they go and refuse a payload deeper than [`MAX_PAYLOAD_DEPTH`].

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::MAX_PAYLOAD_DEPTH;

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
    read(text, PAYLOAD)
}

/// `text` parsed in full, as `serde_json::from_str::<Value>` would, refusing it likewise when it
/// nests deeper than [`MAX_PAYLOAD_DEPTH`].
pub fn full(text: &str) -> serde_json::Result<Value> {
    read(text, Keep::All)
}

fn read(text: &str, keep: Keep) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Pick { keep, depth: 0 }.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// The depth inside an object or array entered at `depth`, or an error past
/// [`MAX_PAYLOAD_DEPTH`]. The nesting is counted while reading: a separate pass over the text
/// would cost as much as the reading itself.
fn enter<E: de::Error>(depth: usize) -> Result<usize, E> {
    let inside = depth + 1;
    if inside > MAX_PAYLOAD_DEPTH {
        return Err(E::custom(format_args!(
            "nested deeper than {MAX_PAYLOAD_DEPTH} objects and arrays"
        )));
    }
    Ok(inside)
}

/// Builds what `keep` says of the value it reads, at nesting `depth`.
#[derive(Clone, Copy)]
struct Pick {
    keep: Keep,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Pick {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pick {
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
        let inner = Pick {
            depth: enter(self.depth)?,
            ..self
        };
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let depth = enter(self.depth)?;
        let mut kept = Map::new();
        match self.keep {
            Keep::All => {
                while let Some(name) = map.next_key::<String>()? {
                    let value = map.next_value_seed(Pick {
                        keep: Keep::All,
                        depth,
                    })?;
                    kept.insert(name, value);
                }
            }
            Keep::Fields(fields) => {
                while let Some(found) = map.next_key_seed(FieldName(fields))? {
                    match found {
                        Some((name, keep)) => {
                            let value = map.next_value_seed(Pick { keep, depth })?;
                            kept.insert(name.to_owned(), value);
                        }
                        None => map.next_value_seed(Checked(depth))?,
                    }
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

/// A value at nesting `depth`, read and dropped, decoded exactly as `Value` would decode it
/// (unlike serde's `IgnoredAny`, which skips string escapes and number ranges unchecked), so
/// that anything accepted here reads back later as a `Value`.
#[derive(Clone, Copy)]
struct Checked(usize);

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = Checked(enter(self.0)?);
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = Checked(enter(self.0)?);
        while map.next_key_seed(inner)?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
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
            assert_eq!(super::full(&text).unwrap(), full, "{name}: read in full");
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
        // Deeper than allowed, whether the deep part is kept, checked or read in full.
        let deep = "[".repeat(MAX_PAYLOAD_DEPTH) + &"]".repeat(MAX_PAYLOAD_DEPTH);
        for (text, within) in [
            (format!(r#"{{"pull_request": {{"title": {deep}}}}}"#), false),
            (format!(r#"{{"x": {deep}}}"#), false),
            (
                format!(r#"{{"pull_request": {{"head": [{deep}]}}}}"#),
                false,
            ),
            (
                format!(r#"{{"x": 1, "ok": {}}}"#, &deep[1..deep.len() - 1]),
                true,
            ),
        ] {
            assert_eq!(skeleton(&text).is_ok(), within, "{text}");
            assert_eq!(super::full(&text).is_ok(), within, "{text}");
        }
        let odd =
            r#"{"pull_request": null, "issue": [1], "ref": 7, "x": {"y": [1e300, "\u00e9"]}}"#;
        assert_eq!(
            skeleton(odd).unwrap(),
            serde_json::json!({"pull_request": null, "issue": [1], "ref": 7})
        );
    }
}

//! An event record whose `data.payload` is written verbatim from JSON text (a webhook body)
//! instead of being re-serialized from a parsed value: the webhook path stores a 28 KB payload
//! with one copy of its bytes. The bytes decode as an ordinary [`EventRecord`] (version `"1"`).
//!
//! A large payload is compressed when its [`Payload`] is made, before the transaction: the webhook
//! receiver makes it in the request's task, so that its one delivery writer, which every
//! delivery waits for, only puts the compressed bytes around the record.
//!
//! [`EventRecord`]: super::records::EventRecord

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::compress::{self, Packed};
use super::records::EventSource;

/// A payload's JSON text, and its compressed form when it is large.
#[derive(Debug)]
pub struct Payload {
    json: String,
    packed: Option<Packed>,
}

impl Payload {
    /// The payload of JSON text `json`, which the caller has checked: the store writes it as it
    /// is. Compresses it when it is large (the costly part of storing it).
    pub fn new(json: String) -> Payload {
        let packed = Packed::new(json.as_bytes());
        Payload { json, packed }
    }

    pub fn json(&self) -> &str {
        &self.json
    }
}

/// The key of the payload inside an event's data.
pub(crate) const PAYLOAD: &str = "payload";

/// The fields of [`EventRecord`](super::records::EventRecord), borrowed; `data` is written
/// without its `payload` entry, which comes from `payload`.
pub(crate) struct RawEvent<'a> {
    pub seq: u64,
    pub id: &'a str,
    pub kind: &'a str,
    pub at: DateTime<Utc>,
    pub source: EventSource,
    pub org_id: Option<i64>,
    pub run_id: Option<i64>,
    pub data: &'a Map<String, Value>,
    pub payload: &'a Payload,
}

/// The record without its payload, in `record_v1!`'s shape (`"v"` first, `data` last).
#[derive(Serialize)]
#[serde(tag = "v")]
enum Tagged<'a> {
    #[serde(rename = "1")]
    V1 {
        seq: u64,
        id: &'a str,
        kind: &'a str,
        at: DateTime<Utc>,
        source: EventSource,
        org_id: Option<i64>,
        run_id: Option<i64>,
        data: DataWithout<'a>,
    },
}

/// Every entry of `data` but `payload`.
struct DataWithout<'a>(&'a Map<String, Value>);

impl Serialize for DataWithout<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().filter(|(k, _)| *k != PAYLOAD))
    }
}

/// The bytes to store for `event`: its JSON text, compressed like any record, or around its
/// compressed payload.
///
/// The record is serialized without its payload, which ends it with `}}` (the close of `data`,
/// the last field, and of the record); the payload goes in front of those two braces.
pub(crate) fn encode(event: RawEvent<'_>) -> serde_json::Result<Vec<u8>> {
    const TAIL: &[u8] = b"}}";
    let payload = event.payload;
    let inline = if payload.packed.is_some() {
        0
    } else {
        payload.json.len()
    };
    let mut out = Vec::with_capacity(inline + 512);
    let tagged = Tagged::V1 {
        seq: event.seq,
        id: event.id,
        kind: event.kind,
        at: event.at,
        source: event.source,
        org_id: event.org_id,
        run_id: event.run_id,
        data: DataWithout(event.data),
    };
    serde_json::to_writer(&mut out, &tagged)?;
    if !out.ends_with(TAIL) {
        return Err(serde::ser::Error::custom(
            "event record not closed by its data",
        ));
    }
    out.truncate(out.len() - TAIL.len());
    if !out.ends_with(b"{") {
        out.push(b',');
    }
    out.extend_from_slice(b"\"payload\":");
    if let Some(stored) =
        (payload.packed.as_ref()).and_then(|p| compress::pack_around(&out, p, TAIL))
    {
        return Ok(stored);
    }
    out.extend_from_slice(payload.json.as_bytes());
    out.extend_from_slice(TAIL);
    Ok(compress::pack(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec;
    use crate::store::records::EventRecord;
    use serde_json::json;

    #[test]
    fn a_raw_payload_decodes_as_the_event_it_stands_for() {
        let small = "{\"action\": \"opened\",\n \"number\": 2, \"s\": \"\\u00e9\\n\"}";
        let large = format!(
            "{{\"action\": \"opened\", \"commits\": [{}]}}",
            vec!["{\"sha\": \"6dcb09b5b57875f334f61aebed695e2e4193db5e\"}"; 100].join(", ")
        );
        let at = "2025-03-01T10:00:00Z".parse().unwrap();
        let full =
            json!({"action": "opened", "delivery": "d-1", "run": null, "payload": "ignored"});
        for (body, tag) in [(small, &b"{"[..]), (large.as_str(), b"\0lzs")] {
            let payload = Payload::new(body.to_owned());
            for data in [full.clone(), json!({}), json!({"payload": 1})] {
                let bytes = encode(RawEvent {
                    seq: 5,
                    id: "github/d-1",
                    kind: "github.pull_request",
                    at,
                    source: EventSource::Webhook,
                    org_id: Some(7),
                    run_id: None,
                    data: data.as_object().unwrap(),
                    payload: &payload,
                })
                .unwrap();
                assert!(bytes.starts_with(tag), "stored as {:?}", &bytes[..4]);
                let text = crate::store::compress::unpack(&bytes).unwrap();
                let text = std::str::from_utf8(&text).unwrap();
                assert!(text.starts_with(r#"{"v":"1","#), "{text}");
                assert!(
                    text.contains(body),
                    "the payload is stored verbatim: {text}"
                );
                let decoded: EventRecord = codec::decode(b"k", &bytes).unwrap();
                let mut expected_data = data.clone();
                expected_data["payload"] = serde_json::from_str(body).unwrap();
                assert_eq!(
                    decoded,
                    EventRecord {
                        seq: 5,
                        id: "github/d-1".into(),
                        kind: "github.pull_request".into(),
                        at,
                        source: EventSource::Webhook,
                        org_id: Some(7),
                        run_id: None,
                        data: expected_data,
                    }
                );
            }
        }
    }
}

//! An event record whose `data.payload` is written verbatim from JSON text (a webhook body)
//! instead of being re-serialized from a parsed value: the webhook path stores a 28 KB payload
//! with one copy of its bytes. The bytes decode as an ordinary [`EventRecord`] (version `"1"`).
//!
//! [`EventRecord`]: super::records::EventRecord

use chrono::{DateTime, Utc};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::records::EventSource;

/// The key of the payload inside an event's data.
pub(crate) const PAYLOAD: &str = "payload";

/// The fields of [`EventRecord`](super::records::EventRecord), borrowed, with the payload raw.
#[derive(Serialize)]
pub(crate) struct RawEvent<'a> {
    pub seq: u64,
    pub id: &'a str,
    pub kind: &'a str,
    pub at: DateTime<Utc>,
    pub source: EventSource,
    pub org_id: Option<i64>,
    pub run_id: Option<i64>,
    pub data: DataWithPayload<'a>,
}

/// Every entry of `data` except `payload`, then `payload` as the raw JSON text.
pub(crate) struct DataWithPayload<'a> {
    pub data: &'a Map<String, Value>,
    pub payload: &'a RawValue,
}

impl Serialize for DataWithPayload<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (key, value) in self.data.iter().filter(|(k, _)| *k != PAYLOAD) {
            map.serialize_entry(key, value)?;
        }
        map.serialize_entry(PAYLOAD, self.payload)?;
        map.end()
    }
}

/// The version tag, as `record_v1!` writes it.
#[derive(Serialize)]
#[serde(tag = "v")]
enum Tagged<'a> {
    #[serde(rename = "1")]
    V1(RawEvent<'a>),
}

/// The JSON text of `event` (the store compresses it like any record).
pub(crate) fn encode(event: RawEvent<'_>) -> serde_json::Result<Vec<u8>> {
    // The payload's length is the bulk of the record: size the buffer once.
    let mut out = Vec::with_capacity(event.data.payload.get().len() + 512);
    serde_json::to_writer(&mut out, &Tagged::V1(event))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec;
    use crate::store::records::EventRecord;
    use serde_json::json;

    #[test]
    fn a_raw_payload_decodes_as_the_event_it_stands_for() {
        let body = "{\"action\": \"opened\",\n \"number\": 2, \"s\": \"\\u00e9\\n\"}";
        let payload: &RawValue = serde_json::from_str(body).unwrap();
        let data =
            json!({"action": "opened", "delivery": "d-1", "run": null, "payload": "ignored"});
        let at = "2025-03-01T10:00:00Z".parse().unwrap();
        let bytes = encode(RawEvent {
            seq: 5,
            id: "github/d-1",
            kind: "github.pull_request",
            at,
            source: EventSource::Webhook,
            org_id: Some(7),
            run_id: None,
            data: DataWithPayload {
                data: data.as_object().unwrap(),
                payload,
            },
        })
        .unwrap();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.starts_with(r#"{"v":"1","#), "{text}");
        assert!(
            text.contains(body),
            "the payload bytes are stored verbatim: {text}"
        );
        let decoded: EventRecord =
            codec::decode(b"k", &crate::store::compress::pack(bytes)).unwrap();
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

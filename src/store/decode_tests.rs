//! Stored literals of every record version: each must keep decoding into the current shape.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::codec::{self, Record};
use super::keys;
use super::records::*;
use super::StoreError;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("valid test timestamp")
        .with_timezone(&Utc)
}

/// Decodes a literal and checks that re-encoding and decoding gives the same record.
fn decode_v<R: Record + PartialEq + std::fmt::Debug>(literal: &str) -> R {
    let record: R = codec::decode(b"k", literal.as_bytes()).expect("literal decodes");
    let again: R = codec::decode(b"k", &codec::encode(&record).expect("encodes")).expect("again");
    assert_eq!(record, again);
    record
}

#[test]
fn run_record_v1_decodes() {
    let r: RunRecord = decode_v(
        r#"{"v":"1","org_id":7,"run_id":123,"status":"ACTIVE","raw":{"id":123,"status":"ACTIVE"},
        "pr_ids":[55],"last_seq":2,"status_since":"2025-03-01T10:00:00Z","stalled_reported":false,
        "first_seen":"2025-03-01T09:00:00Z","last_seen":"2025-03-01T10:05:00.250Z"}"#,
    );
    assert_eq!((r.org_id, r.run_id, r.last_seq), (7, 123, 2));
    assert_eq!(r.status.as_deref(), Some("ACTIVE"));
    assert_eq!(r.raw["id"], json!(123));
    assert_eq!(r.pr_ids, vec![55]);
    assert_eq!(r.last_seen, t("2025-03-01T10:05:00.250Z"));
}

#[test]
fn transition_record_v1_decodes() {
    let r: TransitionRecord = decode_v(
        r#"{"v":"1","org_id":7,"run_id":123,"seq":1,"from":null,"to":"ACTIVE","first_sight":true,
        "at":"2025-03-01T09:00:00Z","source":"startup"}"#,
    );
    assert_eq!((r.seq, r.from, r.to.as_deref()), (1, None, Some("ACTIVE")));
    assert!(r.first_sight);
    assert_eq!(r.source, EventSource::Startup);
}

#[test]
fn event_record_v1_decodes() {
    let r: EventRecord = decode_v(
        r#"{"v":"1","seq":42,"id":"run/7/123/2/finished","kind":"run.finished",
        "at":"2025-03-01T10:00:00Z","source":"poll","org_id":7,"run_id":123,
        "data":{"from":"ACTIVE","to":"FAILED"}}"#,
    );
    assert_eq!(
        (r.seq, r.id.as_str(), r.kind.as_str()),
        (42, "run/7/123/2/finished", "run.finished")
    );
    assert_eq!(
        (r.org_id, r.run_id, r.source),
        (Some(7), Some(123), EventSource::Poll)
    );
    assert_eq!(r.data["to"], json!("FAILED"));
}

#[test]
fn delivery_record_v1_decodes_text_and_byte_bodies() {
    let text: DeliveryRecord = decode_v(
        r#"{"v":"1","id":"d-1","event":"check_suite","received_at":"2025-03-01T10:00:00Z",
        "body":"{\"action\":\"completed\"}","processed":true}"#,
    );
    assert_eq!(text.body, br#"{"action":"completed"}"#);
    assert!(text.processed);
    let bytes: DeliveryRecord = decode_v(
        r#"{"v":"1","id":"d-2","event":"ping","received_at":"2025-03-01T10:00:00Z",
        "body":[255,0,1],"processed":false}"#,
    );
    assert_eq!(bytes.body, vec![255, 0, 1]);
    let bodiless: DeliveryRecord = decode_v(
        r#"{"v":"1","id":"d-3","event":"pull_request","received_at":"2025-03-01T10:00:00Z",
        "processed":true}"#,
    );
    assert!(bodiless.body.is_empty());
}

#[test]
fn job_record_v1_decodes() {
    let r: JobRecord = decode_v(
        r#"{"v":"1","id":9,"rule":"diagnose-failed-runs","event_id":"run/7/123/2/finished",
        "key":"7/123","created_at":"2025-03-01T10:00:01Z","state":"waiting","data":{"step":1}}"#,
    );
    assert_eq!((r.id, r.state), (9, JobState::Waiting));
    assert_eq!(r.data["step"], json!(1));
    for (text, state) in [
        ("pending", JobState::Pending),
        ("running", JobState::Running),
        ("done", JobState::Done),
        ("dead", JobState::Dead),
    ] {
        let parsed: JobState = serde_json::from_str(&format!("{text:?}")).expect("state");
        assert_eq!(parsed, state);
    }
}

#[test]
fn journal_record_v1_decodes() {
    let r: JournalRecord = decode_v(
        r#"{"v":"1","event_id":"github/abc","rule":"ban-checks-on-agent-prs","outcome":"throttled",
        "reason":"cooldown 1h","rules_hash":"sha256:00ff","at":"2025-03-01T10:00:02Z"}"#,
    );
    assert_eq!(r.outcome, "throttled");
    assert_eq!(r.reason.as_deref(), Some("cooldown 1h"));
}

#[test]
fn firing_record_v1_decodes() {
    let r: FiringRecord = decode_v(
        r#"{"v":"1","first_at":"2025-03-01T08:00:00Z","last_at":"2025-03-01T10:00:00Z",
        "count_in_window":3,"window_start":"2025-03-01T09:00:00Z"}"#,
    );
    assert_eq!(r.count_in_window, 3);
    assert_eq!(r.window_start, t("2025-03-01T09:00:00Z"));
    assert!(!r.by_event, "written before by_event: kept by retention");
    let keyed_by_event: FiringRecord = decode_v(
        r#"{"v":"1","first_at":"2025-03-01T08:00:00Z","last_at":"2025-03-01T10:00:00Z",
        "count_in_window":1,"window_start":"2025-03-01T08:00:00Z","by_event":true}"#,
    );
    assert!(keyed_by_event.by_event);
    // false is not written, so a record keyed by the rule reads the same in older builds.
    let text = codec::encode(&r).expect("encodes");
    assert!(!String::from_utf8_lossy(&text).contains("by_event"));
}

#[test]
fn schedule_mark_v1_decodes() {
    let r: ScheduleMark = decode_v(
        r#"{"v":"1","next_fire":"2025-03-03T09:00:00Z","last_fired":"2025-02-28T09:00:00Z"}"#,
    );
    assert_eq!(r.last_fired, Some(t("2025-02-28T09:00:00Z")));
}

#[test]
fn silence_record_v1_decodes() {
    let r: SilenceRecord = decode_v(
        r#"{"v":"1","id":3,"rule":"weekday-digest","key":null,"until":"2025-03-02T00:00:00Z",
        "reason":"maintenance","created_at":"2025-03-01T00:00:00Z","created_by":"ops","expired":false}"#,
    );
    assert!(r.is_active_at(t("2025-03-01T12:00:00Z")));
    assert!(!r.is_active_at(t("2025-03-02T00:00:00Z")));
    assert!(r.covers_key("anything"));
}

#[test]
fn unknown_version_is_an_error_naming_tree_and_key() {
    let err = codec::decode::<RunRecord>(&keys::run(7, 123), br#"{"v":"99","org_id":7}"#)
        .expect_err("unknown version");
    match &err {
        StoreError::Decode { tree, key, .. } => {
            assert_eq!((*tree, key.as_str()), ("runs", "7/123"))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string().contains("tree `runs` at key 7/123"),
        "{err}"
    );
}

#[test]
fn records_are_written_with_their_version_tag() {
    let mark = ScheduleMark {
        next_fire: t("2025-03-03T09:00:00Z"),
        last_fired: None,
    };
    let text = String::from_utf8(codec::encode(&mark).expect("encodes")).expect("utf8");
    assert!(text.starts_with(r#"{"v":"1","#), "{text}");
}

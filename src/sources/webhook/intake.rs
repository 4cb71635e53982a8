//! The one writer of webhook deliveries: verified deliveries queue here, and every delivery
//! waiting when the writer comes round is recorded in one store transaction and made durable by
//! one flush before any of them is answered.
//!
//! Why one writer: sled runs transactions one at a time, so deliveries written each in their
//! own transaction queue behind each other's commits; a batch pays that cost once. Copies of one
//! delivery id arriving together meet in the same writer, so they are recorded once.

use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use super::record::{record_delivery, take_payload, Delivery, Recorded};
use crate::events::EventSink;
use crate::metrics as names;
use crate::store::{Store, StoreError};

/// Deliveries waiting for the writer at most; senders wait beyond it.
const QUEUE: usize = 1024;
/// Most deliveries recorded by one transaction.
const MAX_BATCH: usize = 256;
/// Most payload bytes recorded by one transaction (a transaction holds its writes in memory).
const MAX_BATCH_BYTES: usize = 8 << 20;

/// Why a delivery was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Store(Arc<StoreError>),
    /// The writer is gone (the runtime is shutting down) or panicked.
    #[error("the delivery writer stopped")]
    Stopped,
}

type Reply = oneshot::Sender<Result<Recorded, IntakeError>>;

struct Submission {
    delivery: Delivery,
    reply: Reply,
    /// Where to record it. Carried by each submission rather than held by the writer, so that
    /// the store is released as soon as the receiver is dropped and nothing is in flight (a
    /// closed store can then be reopened right away, as after a restart).
    target: Arc<Target>,
}

struct Target {
    store: Store,
    sink: Arc<dyn EventSink>,
}

/// Handle to the writer, started on first use (from inside the runtime that serves requests).
pub struct Intake {
    target: Arc<Target>,
    queue: OnceLock<mpsc::Sender<Submission>>,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("started", &self.queue.get().is_some())
            .finish_non_exhaustive()
    }
}

impl Intake {
    pub fn new(store: Store, sink: Arc<dyn EventSink>) -> Intake {
        Intake {
            target: Arc::new(Target { store, sink }),
            queue: OnceLock::new(),
        }
    }

    /// Records `delivery` and waits until it is durable (a duplicate: until the copy that was
    /// first is durable).
    pub async fn record(&self, delivery: Delivery) -> Result<Recorded, IntakeError> {
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            tokio::spawn(write_batches(receiver));
            sender
        });
        let (reply, answer) = oneshot::channel();
        queue
            .send(Submission {
                delivery,
                reply,
                target: self.target.clone(),
            })
            .await
            .map_err(|_| IntakeError::Stopped)?;
        answer.await.map_err(|_| IntakeError::Stopped)?
    }
}

/// The writer: takes what is queued, records it in one transaction, flushes, answers, and goes
/// round again. It does not write the next batch while a flush is in flight: what arrives
/// meanwhile makes the next batch larger, and fewer, larger transactions and flushes cost less
/// than many small ones (on the loopback bench, 9,300 deliveries/s against 7,700 when the flush
/// ran beside the next batch).
///
/// Every delivery waits for this round, so it is kept short: payloads arrive compressed
/// ([`Payload`](crate::store::Payload)), and the commit and the flush run in one trip to the
/// blocking pool (a trip each cost about 5 % of the receiver's throughput). The writer stays a
/// task: from a thread of its own it woke for every delivery and its batches shrank (10,300
/// deliveries/s against 11,500).
async fn write_batches(mut queue: mpsc::Receiver<Submission>) {
    while let Some(first) = queue.recv().await {
        let target = first.target.clone();
        let mut bytes = first.delivery.size();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match queue.try_recv() {
                Ok(next) => {
                    bytes += next.delivery.size();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        metrics::histogram!(names::WEBHOOK_BATCH).record(batch.len() as f64);
        let written = tokio::task::spawn_blocking(move || {
            let written = commit(&target.store, target.sink.as_ref(), batch);
            let flushed = target.store.flush_blocking().map_err(Arc::new);
            (written, flushed)
        })
        .await;
        // A panic in the sink drops the batch's reply senders: those requests see `Stopped`.
        let Ok((written, flushed)) = written else {
            continue;
        };
        for (reply, result) in written {
            let answer = match (&flushed, result) {
                (Ok(_), result) => result,
                (Err(e), _) => Err(IntakeError::Store(e.clone())),
            };
            // The requester may have gone (client hung up): the delivery is stored anyway.
            let _ = reply.send(answer);
        }
    }
}

/// Records the batch in one transaction; when that fails for a reason other than a conflict
/// (which the store retries), each delivery gets a transaction of its own so that one bad
/// delivery fails alone.
fn commit(
    store: &Store,
    sink: &dyn EventSink,
    batch: Vec<Submission>,
) -> Vec<(Reply, Result<Recorded, IntakeError>)> {
    let together = store.transaction(|tx| {
        batch
            .iter()
            .map(|s| record_delivery(tx, &s.delivery, sink))
            .collect::<Result<Vec<_>, _>>()
    });
    match together {
        Ok(recorded) => batch
            .into_iter()
            .zip(recorded)
            .map(|(s, r)| (s.reply, Ok(take_payload(&s.delivery, r))))
            .collect(),
        Err(_) if batch.len() > 1 => batch
            .into_iter()
            .map(|s| {
                let alone = store
                    .transaction(|tx| record_delivery(tx, &s.delivery, sink))
                    .map(|r| take_payload(&s.delivery, r))
                    .map_err(|e| IntakeError::Store(Arc::new(e)));
                (s.reply, alone)
            })
            .collect(),
        Err(e) => {
            let e = Arc::new(e);
            batch
                .into_iter()
                .map(|s| (s.reply, Err(IntakeError::Store(e.clone()))))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::webhook::skeleton::skeleton;
    use crate::sources::webhook::Parsed;
    use crate::store::{EventRecord, StoreOptions, Tx, TxAbort};
    use serde_json::{json, Value};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Refuses the events of deliveries whose id starts with `bad`, and checks it sees payloads.
    struct Picky;

    impl EventSink for Picky {
        fn on_event(&self, _tx: &Tx<'_>, event: &EventRecord) -> Result<(), TxAbort> {
            assert_eq!(
                event.data["payload"]["n"],
                json!(1),
                "the sink sees the payload"
            );
            if event.data["delivery"]
                .as_str()
                .unwrap_or("")
                .starts_with("bad")
            {
                return Err(TxAbort::abort("refused"));
            }
            Ok(())
        }
    }

    fn delivery(id: &str) -> Delivery {
        let text = r#"{"n": 1, "action": "opened"}"#.to_owned();
        let payload = Parsed::Full(serde_json::from_str(&text).unwrap());
        Delivery::new(
            id.into(),
            "issues".into(),
            chrono::Utc::now(),
            text,
            payload,
        )
    }

    /// On one thread every request is queued before the writer first runs, so all 200 share
    /// one batch: the refused ones make that transaction fail, and only the one-by-one retry
    /// lets the others through.
    #[tokio::test]
    async fn concurrent_deliveries_share_a_batch_and_one_bad_delivery_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreOptions::new(dir.path())).unwrap();
        let intake = Arc::new(Intake::new(store.clone(), Arc::new(Picky)));
        let ids: Vec<String> = (0..200)
            .map(|i| match i {
                7 | 150 => format!("bad-{i}"),
                i if i % 10 == 3 => "same".to_owned(),
                i => format!("d-{i}"),
            })
            .collect();
        let tasks: Vec<_> = ids
            .iter()
            .map(|id| {
                let (intake, id) = (intake.clone(), id.clone());
                tokio::spawn(async move { intake.record(delivery(&id)).await })
            })
            .collect();
        let mut new = 0;
        let mut duplicates = 0;
        for (id, task) in ids.iter().zip(tasks) {
            match task.await.unwrap() {
                Ok(Recorded::New(event)) => {
                    new += 1;
                    assert_eq!(event.data["payload"]["n"], json!(1), "{id}");
                    assert_eq!(event.data["delivery"], json!(id));
                }
                Ok(Recorded::Duplicate) => duplicates += 1,
                Err(e) => assert!(id.starts_with("bad"), "{id} failed: {e}"),
            }
        }
        // 200 requests: 2 refused, 20 copies of "same" recorded once.
        assert_eq!((new, duplicates), (179, 19));
        assert_eq!(store.deliveries().count(), 179);
        assert_eq!(store.events_after(0).count(), 179);
        assert!(store.delivery("bad-7").unwrap().is_none());
        let same = store.event_by_id("github/same").unwrap().unwrap();
        assert_eq!(same.data["payload"], json!({"n": 1, "action": "opened"}));
        assert_eq!(same.data["action"], json!("opened"));
    }

    /// Wants payloads only once switched on, and records what it saw.
    #[derive(Default)]
    struct Switch {
        on: AtomicBool,
        saw: std::sync::Mutex<Vec<Value>>,
    }

    impl EventSink for Switch {
        fn on_event(&self, _tx: &Tx<'_>, event: &EventRecord) -> Result<(), TxAbort> {
            self.saw.lock().unwrap().push(event.data["payload"].clone());
            Ok(())
        }

        fn wants(&self, _kind: &str) -> bool {
            self.on.load(Ordering::SeqCst)
        }
    }

    fn skeletal(id: &str, text: &str) -> Delivery {
        Delivery::new(
            id.into(),
            "pull_request".into(),
            chrono::Utc::now(),
            text.to_owned(),
            Parsed::Skeleton(skeleton(text).unwrap()),
        )
    }

    #[tokio::test]
    async fn a_payload_read_as_a_skeleton_is_stored_whole_and_parsed_if_a_rule_appears() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreOptions::new(dir.path())).unwrap();
        let sink = Arc::new(Switch::default());
        let intake = Intake::new(store.clone(), sink.clone());
        let text = r#"{"action": "opened", "big": {"list": [1, 2, 3]}, "number": 2}"#;
        let Recorded::New(event) = intake.record(skeletal("d-1", text)).await.unwrap() else {
            panic!("not new")
        };
        // Nobody wanted it: the sink and the feed see no payload, the store holds all of it.
        assert_eq!(event.data["payload"], Value::Null);
        assert_eq!(event.data["action"], json!("opened"));
        let stored = store.event_by_id("github/d-1").unwrap().unwrap();
        assert_eq!(
            stored.data["payload"],
            serde_json::from_str::<Value>(text).unwrap()
        );

        // A rule listening now (a reload after the skeleton was read): parsed in the writer.
        sink.on.store(true, Ordering::SeqCst);
        let Recorded::New(event) = intake.record(skeletal("d-2", text)).await.unwrap() else {
            panic!("not new")
        };
        assert_eq!(event.data["payload"]["big"]["list"], json!([1, 2, 3]));
        let saw = sink.saw.lock().unwrap().clone();
        assert_eq!(saw[0], Value::Null);
        assert_eq!(saw[1]["number"], json!(2));
    }
}

//! The middleware around every route: records each request with its final status, classifies it,
//! and applies injected faults (status, delay, dropped connection, broken or mistyped JSON).

use std::collections::VecDeque;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::{header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{bearer_token, classify, MAX_BODY};
use crate::sim::config::{Fault, RecordedRequest};
use crate::sim::conn::ConnHandle;
use crate::sim::error::{json_status, ApiError, ErrorSwitches};
use crate::sim::render::error_body;
use crate::sim::validate::Query;
use crate::sim::Simulator;

/// Status recorded for a request whose connection was dropped instead of answered.
const DROPPED: u16 = 0;

pub(crate) async fn observe(State(sim): State<Simulator>, req: Request, next: Next) -> Response {
    let at = tokio::time::Instant::now();
    let (mut parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let class = parts
        .extensions
        .get::<MatchedPath>()
        .and_then(|m| classify(&parts.method, m.as_str()));
    if let Some(class) = class {
        parts.extensions.insert(class);
    }
    let json_body = serde_json::from_slice::<Value>(&bytes).ok();
    let org = request_org(&mut parts, json_body.as_ref()).await;
    let (fault, authorized, switches) = {
        let mut state = sim.lock();
        let user = bearer_token(&parts.headers).and_then(|t| state.user_for_token(&t));
        let authorized = user.is_some_and(|u| org.is_none_or(|o| state.is_member(o, u)));
        (
            state.take_fault(class),
            authorized,
            ErrorSwitches::of(&state),
        )
    };
    let record = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        body: json_body,
        status: DROPPED,
        authorized,
        at,
    };
    let conn = parts.extensions.get::<ConnectInfo<ConnHandle>>().cloned();
    let req = Request::from_parts(parts, Body::from(bytes));
    let response = match fault {
        None => next.run(req).await,
        Some(Fault::Delay(d)) => {
            // Logged on arrival: a client that gives up first drops this future, and the test
            // still needs to see that the request came in (status 0 until it is answered).
            let slot = {
                let mut state = sim.lock();
                state.requests.push(record.clone());
                state.requests.len() - 1
            };
            tokio::time::sleep(d).await;
            let response = next.run(req).await;
            if let Some(logged) = sim.lock().requests.get_mut(slot) {
                logged.status = response.status().as_u16();
            }
            return response;
        }
        Some(Fault::Status(code)) => {
            let reason = axum::http::StatusCode::from_u16(code)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Injected fault");
            json_status(code, error_body(switches.detail_style, code, reason))
        }
        Some(Fault::RateLimited) => ApiError::RateLimited.render(switches),
        Some(Fault::DropConnection) => {
            if let Some(ConnectInfo(conn)) = conn {
                tracing::debug!(peer = %conn.peer, "Simulator dropping a connection");
                conn.kill();
            }
            sim.lock().requests.push(record);
            return broken_body_response();
        }
        Some(Fault::MalformedJson) => truncate(next.run(req).await).await,
        Some(Fault::WrongType) => mistype(next.run(req).await).await,
    };
    let mut record = record;
    record.status = response.status().as_u16();
    sim.lock().requests.push(record);
    response
}

/// The organisation a request names: path `org_id`, else query `org_id`, else body `org_id`.
async fn request_org(parts: &mut Parts, body: Option<&Value>) -> Option<i64> {
    let from_path = RawPathParams::from_request_parts(parts, &())
        .await
        .ok()
        .and_then(|p| {
            p.iter()
                .find(|(k, _)| *k == "org_id")
                .and_then(|(_, v)| v.parse().ok())
        });
    from_path
        .or_else(|| {
            Query::parse(parts.uri.query())
                .get("org_id")
                .and_then(|v| v.parse().ok())
        })
        .or_else(|| body.and_then(|b| b.get("org_id")).and_then(Value::as_i64))
}

/// A 200 whose body fails at once: without a served connection to kill (the router driven
/// directly), the client still sees the response break off.
fn broken_body_response() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection dropped by fault injection",
        ))
    });
    Body::from_stream(failing).into_response()
}

async fn split(response: Response) -> (axum::http::response::Parts, Bytes) {
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    (parts, bytes)
}

/// Sends only the first half of the body (at least one byte short), so it is not valid JSON.
async fn truncate(response: Response) -> Response {
    let (parts, bytes) = split(response).await;
    let cut = if bytes.len() < 2 {
        Bytes::from_static(b"{")
    } else {
        bytes.slice(..bytes.len() / 2)
    };
    Response::from_parts(parts, Body::from(cut))
}

/// Re-encodes the body with one integer turned into a string.
async fn mistype(response: Response) -> Response {
    let (parts, bytes) = split(response).await;
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut value) => {
            mistype_value(&mut value);
            Bytes::from(value.to_string())
        }
        Err(_) => bytes,
    };
    Response::from_parts(parts, Body::from(body))
}

/// Turns the shallowest id-like integer (key `id` or `*_id`) into a string; failing that, the
/// shallowest integer; failing that, replaces a value-less body with a string.
pub(crate) fn mistype_value(value: &mut Value) {
    let is_id = |k: &str| k == "id" || k.ends_with("_id");
    if !mistype_first(value, &is_id) && !mistype_first(value, &|_| true) {
        *value = Value::String("unexpected".to_owned());
    }
}

fn mistype_first(root: &mut Value, key_ok: &dyn Fn(&str) -> bool) -> bool {
    // Breadth first over paths, so `id` beats `github_pull_requests[0].id`.
    let mut queue: VecDeque<Vec<PathStep>> = VecDeque::from([Vec::new()]);
    while let Some(path) = queue.pop_front() {
        let Some(node) = walk(root, &path) else {
            continue;
        };
        let children: Vec<PathStep> = match node {
            Value::Object(map) => map.keys().map(|k| PathStep::Key(k.clone())).collect(),
            Value::Array(items) => (0..items.len()).map(PathStep::Index).collect(),
            _ => Vec::new(),
        };
        for child in &children {
            let PathStep::Key(k) = child else { continue };
            let slot = match walk(root, &path).and_then(|n| n.get_mut(k.as_str())) {
                Some(slot) => slot,
                None => continue,
            };
            if slot.is_i64() && key_ok(k) {
                *slot = Value::String(slot.to_string());
                return true;
            }
        }
        for child in children {
            let mut next = path.clone();
            next.push(child);
            queue.push_back(next);
        }
    }
    false
}

#[derive(Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn walk<'a>(root: &'a mut Value, path: &[PathStep]) -> Option<&'a mut Value> {
    path.iter().try_fold(root, |node, step| match step {
        PathStep::Key(k) => node.get_mut(k.as_str()),
        PathStep::Index(i) => node.get_mut(*i),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::mistype_value;

    #[test]
    fn mistypes_the_shallowest_id() {
        let mut run = json!({"github_pull_requests": [{"id": 5}], "id": 12, "organization_id": 7});
        mistype_value(&mut run);
        assert_eq!(run["id"], json!("12"));
        assert_eq!(run["github_pull_requests"][0]["id"], json!(5));

        let mut page = json!({"items": [{"id": 3}], "page": 1, "pages": 1, "size": 1, "total": 1});
        mistype_value(&mut page);
        assert_eq!(page["items"][0]["id"], json!("3"));

        let mut empty = json!({"items": [], "page": 1, "pages": 0, "size": 10, "total": 0});
        mistype_value(&mut empty);
        assert_eq!(empty["page"], json!("1"));

        let mut nothing = json!({});
        mistype_value(&mut nothing);
        assert_eq!(nothing, json!("unexpected"));
    }
}

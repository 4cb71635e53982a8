//! Fault switches and a request log in front of any test server (the fake GitHub, the Codegen
//! simulator, a webhook receiver): scripted or random 5xx (before or after the handler acted),
//! 429 with or without `Retry-After`, 403 with an exhausted rate limit, delays and dropped
//! connections. It also checks that no request arrives while a `Retry-After` (or a rate-limit
//! reset) it announced is still running, per scope.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::net::Conn;

/// A fault applied to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status without running the handler.
    Status(u16),
    /// Run the handler, then answer this status instead of its answer (the effect happened).
    StatusAfter(u16),
    /// 429, with `Retry-After: N` when given.
    RateLimited(Option<u64>),
    /// 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` N seconds ahead.
    LimitExhausted(u64),
    /// Hold the request this long before running the handler.
    Delay(Duration),
    /// Run the handler, then hold the answer this long (a client timing out never sees it).
    DelayAfter(Duration),
    /// Close the connection without running the handler.
    Drop,
    /// Run the handler, then close the connection without answering.
    DropAfter,
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub body: Bytes,
    pub headers: HeaderMap,
    /// 0 when the connection was dropped.
    pub status: u16,
    pub at: Instant,
    pub fault: Option<Fault>,
    /// Whether the real handler ran.
    pub handled: bool,
}

impl Logged {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or_default()
    }
}

struct Armed {
    fault: Fault,
    remaining: usize,
    /// Only requests whose "METHOD path" contains this.
    matching: Option<String>,
}

struct Random {
    rate: f64,
    faults: Vec<Fault>,
    rng: StdRng,
    /// Only requests whose "METHOD path" contains this.
    matching: Option<String>,
}

/// A wait the server announced.
struct Block {
    scope: String,
    issued: Instant,
    until: Instant,
}

type ScopeFn = fn(&Method, &str) -> String;

struct Inner {
    log: Vec<Logged>,
    armed: VecDeque<Armed>,
    random: Option<Random>,
    blocks: Vec<Block>,
    violations: Vec<String>,
    scope: ScopeFn,
    clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

/// The switches and the log; clones share them.
#[derive(Clone)]
pub struct Chaos {
    inner: Arc<Mutex<Inner>>,
}

/// Every request shares one scope (GitHub, a webhook): a `Retry-After` holds them all.
pub fn one_scope(_: &Method, _: &str) -> String {
    String::new()
}

/// Each path is its own scope (several webhook targets on one receiver).
pub fn by_path(_: &Method, path: &str) -> String {
    path.to_owned()
}

impl Chaos {
    /// `scope` names the group a `Retry-After` applies to; `clock` gives the wall time that
    /// `x-ratelimit-reset` is counted in.
    pub fn new(scope: ScopeFn, clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>) -> Chaos {
        Chaos {
            inner: Arc::new(Mutex::new(Inner {
                log: Vec::new(),
                armed: VecDeque::new(),
                random: None,
                blocks: Vec::new(),
                violations: Vec::new(),
                scope,
                clock,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `fault` to the next `times` requests whose "METHOD path" contains `matching`.
    pub fn inject(&self, fault: Fault, times: usize, matching: Option<&str>) {
        self.lock().armed.push_back(Armed {
            fault,
            remaining: times,
            matching: matching.map(str::to_owned),
        });
    }

    /// From now on, each matching request gets one of `faults` with probability `rate`.
    pub fn random(&self, rate: f64, faults: Vec<Fault>, seed: u64, matching: Option<&str>) {
        self.lock().random = Some(Random {
            rate,
            faults,
            rng: StdRng::seed_from_u64(seed),
            matching: matching.map(str::to_owned),
        });
    }

    /// Stops random and scripted faults.
    pub fn calm(&self) {
        let mut inner = self.lock();
        inner.random = None;
        inner.armed.clear();
    }

    pub fn log(&self) -> Vec<Logged> {
        self.lock().log.clone()
    }

    pub fn clear_log(&self) {
        self.lock().log.clear();
    }

    /// Requests that arrived while an announced wait of their scope was running.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// How many announced waits (Retry-After or reset) there were.
    pub fn blocks_announced(&self) -> usize {
        self.lock().blocks.len()
    }

    /// Puts the switches in front of `router` (serve it with [`super::net::serve`]).
    pub fn wrap(&self, router: axum::Router) -> axum::Router {
        router.layer(axum::middleware::from_fn_with_state(
            self.clone(),
            middleware,
        ))
    }

    fn choose(&self, method: &Method, path: &str) -> Option<Fault> {
        let mut inner = self.lock();
        let line = format!("{method} {path}");
        let wanted = |m: &Option<String>| m.as_deref().is_none_or(|m| line.contains(m));
        if let Some(pos) = inner.armed.iter().position(|a| wanted(&a.matching)) {
            let armed = &mut inner.armed[pos];
            armed.remaining -= 1;
            let fault = armed.fault.clone();
            if armed.remaining == 0 {
                inner.armed.remove(pos);
            }
            return Some(fault);
        }
        let random = inner.random.as_mut()?;
        if !wanted(&random.matching) || !random.rng.random_bool(random.rate) {
            return None;
        }
        let pick = random.rng.random_range(0..random.faults.len());
        Some(random.faults[pick].clone())
    }

    /// Records a violation if an announced wait of this scope is running.
    fn check_arrival(&self, method: &Method, path: &str, at: Instant) {
        let mut inner = self.lock();
        let scope = (inner.scope)(method, path);
        let early = inner
            .blocks
            .iter()
            .find(|b| b.scope == scope && b.issued < at && at < b.until)
            .map(|b| (b.until - at, b.issued));
        if let Some((left, issued)) = early {
            let message = format!(
                "{method} {path} arrived {:?} after a wait was announced, {left:?} too early",
                at - issued
            );
            inner.violations.push(message);
        }
    }

    /// Notes a wait announced by a response of `scope`.
    fn note_wait(&self, method: &Method, path: &str, headers: &HeaderMap, status: u16) {
        let mut inner = self.lock();
        let now = Instant::now();
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        let wait = match number("retry-after") {
            Some(secs) if status == 429 || status == 403 || status == 503 => {
                Some(Duration::from_secs(secs.max(0) as u64))
            }
            _ if number("x-ratelimit-remaining") == Some(0) => number("x-ratelimit-reset")
                .and_then(|reset| DateTime::from_timestamp(reset, 0))
                .map(|reset| (reset - (inner.clock)()).to_std().unwrap_or_default()),
            _ => None,
        };
        if let Some(wait) = wait {
            let scope = (inner.scope)(method, path);
            inner.blocks.push(Block {
                scope,
                issued: now,
                until: now + wait,
            });
        }
    }

    fn record(&self, entry: Logged) {
        self.lock().log.push(entry);
    }

    fn record_slot(&self, entry: Logged) -> usize {
        let mut inner = self.lock();
        inner.log.push(entry);
        inner.log.len() - 1
    }

    fn update(&self, slot: usize, entry: &Logged) {
        if let Some(logged) = self.lock().log.get_mut(slot) {
            logged.status = entry.status;
            logged.handled = entry.handled;
        }
    }
}

async fn middleware(State(chaos): State<Chaos>, req: Request, next: Next) -> Response {
    handle(chaos, req, next).await
}

async fn handle(chaos: Chaos, req: Request, next: Next) -> Response {
    let at = Instant::now();
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    chaos.check_arrival(&method, &path, at);
    let fault = chaos.choose(&method, &path);
    let conn = parts
        .extensions
        .get::<ConnectInfo<Conn>>()
        .map(|c| c.0.clone());
    let mut entry = Logged {
        method: method.to_string(),
        uri: parts.uri.to_string(),
        body: body.clone(),
        headers: parts.headers.clone(),
        status: 0,
        at,
        fault: fault.clone(),
        handled: false,
    };
    let req = Request::from_parts(parts, Body::from(body));
    let kill = |entry: Logged| {
        if let Some(conn) = &conn {
            conn.kill();
        }
        chaos.record(entry);
        broken()
    };
    let response = match fault {
        None => run(next, req, &mut entry).await,
        Some(Fault::Status(code)) => status(code),
        Some(Fault::StatusAfter(code)) => {
            run(next, req, &mut entry).await;
            status(code)
        }
        Some(Fault::RateLimited(after)) => {
            let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(json!({"message": "Rate limit exceeded. Please try again later.", "status_code": 429}))).into_response();
            if let Some(secs) = after {
                response.headers_mut().insert("retry-after", secs.into());
            }
            response
        }
        Some(Fault::LimitExhausted(secs)) => {
            let now = (chaos.lock().clock)();
            let reset = now.timestamp() + secs as i64 + i64::from(now.timestamp_subsec_nanos() > 0);
            let mut response = (StatusCode::FORBIDDEN, axum::Json(json!({"message": "API rate limit exceeded for user ID 1.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}))).into_response();
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", 5000.into());
            headers.insert("x-ratelimit-remaining", 0.into());
            headers.insert("x-ratelimit-reset", reset.into());
            response
        }
        Some(Fault::Delay(d)) => {
            // Logged on arrival (status 0 until answered): a client that gives up drops this
            // future, and tests still need to see that the request came in.
            let slot = chaos.record_slot(entry.clone());
            tokio::time::sleep(d).await;
            let response = run(next, req, &mut entry).await;
            chaos.update(slot, &entry);
            chaos.note_wait(
                &method,
                &path,
                response.headers(),
                response.status().as_u16(),
            );
            return response;
        }
        Some(Fault::DelayAfter(d)) => {
            let response = run(next, req, &mut entry).await;
            let handled = entry.clone();
            chaos.record(handled);
            tokio::time::sleep(d).await;
            return response;
        }
        Some(Fault::Drop) => return kill(entry),
        Some(Fault::DropAfter) => {
            run(next, req, &mut entry).await;
            return kill(entry);
        }
    };
    chaos.note_wait(
        &method,
        &path,
        response.headers(),
        response.status().as_u16(),
    );
    entry.status = response.status().as_u16();
    chaos.record(entry);
    response
}

async fn run(next: Next, req: Request, entry: &mut Logged) -> Response {
    let response = next.run(req).await;
    entry.handled = true;
    entry.status = response.status().as_u16();
    response
}

fn status(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(json!({"message": "injected fault"}))).into_response()
}

/// A response whose body breaks off, for when no connection can be killed.
fn broken() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "dropped by a fault",
        ))
    });
    Body::from_stream(failing).into_response()
}

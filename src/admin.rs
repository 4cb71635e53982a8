//! The admin socket: a Unix socket in the store's directory ([`SOCKET_NAME`], mode 0600) where
//! the running daemon answers the commands that need its store while it holds it: `explain`,
//! `state runs|transitions`, `jobs list|show|retry|drop`, `silence list|add|expire` and
//! `rules replay`. Writes are flushed before they are answered, and a retried job wakes the
//! executor at once.
//!
//! The socket file's permissions are the access control: only the daemon's user and root can
//! connect, so the answers (which include stored payloads) need no token and are never
//! reachable from the network or from other local users, as they would be on a TCP port.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::engine::explain::explain_run;
use crate::engine::replay::replay;
use crate::executor::admin::{self as jobs, AdminError};
use crate::executor::ExecutorHandle;
use crate::rules::{compile_sources, CompileEnv};
use crate::store::{NewSilence, RunRecord, SilenceRecord, Store, StoreError, TransitionRecord};

/// The socket's file name, inside the store's directory.
pub const SOCKET_NAME: &str = "admin.sock";

/// Largest answer a command reads from the socket.
const MAX_ANSWER: usize = 256 << 20;

/// Largest request the socket reads: a `rules replay` carries every candidate rule file (each
/// up to 1 MiB), more than axum's default 2 MB.
const MAX_REQUEST: usize = 64 << 20;

/// The admin socket of the store at `store_path`.
pub fn socket_path(store_path: &Path) -> PathBuf {
    store_path.join(SOCKET_NAME)
}

/// A path a Unix socket can be bound or reached by, for the socket file `path`: `path` itself,
/// or, when it is longer than a socket address holds (107 bytes: a store deep in a directory
/// tree), the same file through a handle on its directory (`/proc/self/fd/N/admin.sock`). Keep
/// the handle until the bind or connect is done.
fn reachable(path: &Path) -> std::io::Result<(PathBuf, Option<std::fs::File>)> {
    #[cfg(target_os = "linux")]
    if path.as_os_str().len() > 107 {
        use std::os::fd::AsRawFd;
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
            let handle = std::fs::File::open(dir)?;
            let short = Path::new("/proc/self/fd")
                .join(handle.as_raw_fd().to_string())
                .join(name);
            return Ok((short, Some(handle)));
        }
    }
    Ok((path.to_owned(), None))
}

#[derive(Clone)]
struct Admin {
    store: Store,
    orgs: Vec<i64>,
    executor: Option<ExecutorHandle>,
    /// The config's notifiers and vars, which candidate rules of a replay are compiled with.
    rules_env: CompileEnv,
}

/// `POST /replay`: candidate rule files, as text, re-evaluated against the events stored since
/// `since` ([`replay`]).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ReplayRequest {
    pub since: chrono::DateTime<chrono::Utc>,
    pub sources: Vec<(PathBuf, String)>,
}

/// The routes of the socket: `GET /explain/{run_id}[?org=N]`, `GET /state/runs[?org=N]`,
/// `GET /state/transitions[?run=N&org=N]`, `GET /jobs[?dead=true]`,
/// `GET /jobs/{id}`, `POST /jobs/{id}/retry`, `POST /jobs/{id}/drop`, `GET /silences`,
/// `POST /silences` (a [`NewSilence`]), `POST /silences/{id}/expire` and `POST /replay` (a
/// [`ReplayRequest`], compiled with `rules_env`). `executor` is woken when a job is queued again.
pub fn router(
    store: Store,
    orgs: Vec<i64>,
    executor: Option<ExecutorHandle>,
    rules_env: CompileEnv,
) -> Router {
    Router::new()
        .route("/explain/{run_id}", get(explain))
        .route("/state/runs", get(state_runs))
        .route("/state/transitions", get(state_transitions))
        .route("/jobs", get(list_jobs))
        .route("/jobs/{id}", get(show_job))
        .route("/jobs/{id}/retry", post(retry_job))
        .route("/jobs/{id}/drop", post(drop_job))
        .route("/silences", get(list_silences).post(add_silence))
        .route("/silences/{id}/expire", post(expire_silence))
        .route("/replay", post(replay_rules))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST))
        .with_state(Admin {
            store,
            orgs,
            executor,
            rules_env,
        })
}

/// The stored runs, of one organization or all.
pub fn runs(store: &Store, org: Option<i64>) -> Result<Vec<RunRecord>, StoreError> {
    store
        .runs()
        .filter(|r| !matches!((r, org), (Ok(r), Some(o)) if r.org_id != o))
        .collect()
}

/// The stored transitions, of one run and/or organization or all.
pub fn transitions(
    store: &Store,
    run: Option<i64>,
    org: Option<i64>,
) -> Result<Vec<TransitionRecord>, StoreError> {
    let wanted = |t: &TransitionRecord| {
        run.is_none_or(|r| t.run_id == r) && org.is_none_or(|o| t.org_id == o)
    };
    store
        .transitions(None)
        .filter(|t| t.as_ref().map_or(true, wanted))
        .collect()
}

/// Records a silence and makes it durable.
pub async fn add_silence_to(
    store: &Store,
    silence: NewSilence,
) -> Result<SilenceRecord, StoreError> {
    let record = store.transaction(|tx| tx.insert_silence(silence.clone()))?;
    store.flush().await?;
    Ok(record)
}

/// Marks silence `id` expired and makes it durable; None when there is no such silence.
pub async fn expire_silence_in(
    store: &Store,
    id: u64,
) -> Result<Option<SilenceRecord>, StoreError> {
    let found = store.transaction(|tx| {
        let Some(mut silence) = tx.get_silence(id)? else {
            return Ok(None);
        };
        silence.expired = true;
        tx.put_silence(&silence)?;
        Ok(Some(silence))
    })?;
    store.flush().await?;
    Ok(found)
}

/// Serves `router` on a new socket at `path` (a stale one from an earlier run is replaced)
/// until `cancel` fires; the file is removed on the way out.
///
/// The socket is bound inside a fresh directory only this user can enter, made 0600, and only
/// then renamed into place: between `bind` and `chmod` nobody else can reach it, whatever the
/// umask and the store directory's mode.
pub async fn serve(path: &Path, router: Router, cancel: CancellationToken) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;

    let parent = path.parent().unwrap_or(Path::new("."));
    // Leftovers of a daemon killed between these steps.
    for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(".admin-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let private = parent.join(format!(".admin-{}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .with_context(|| format!("creating {}", private.display()))?;
    let staged = private.join(SOCKET_NAME);
    let bound = reachable(&staged)
        .and_then(|(at, _dir)| tokio::net::UnixListener::bind(at))
        .with_context(|| format!("could not listen on {}", staged.display()))
        .and_then(|listener| {
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {}", staged.display()))?;
            std::fs::rename(&staged, path)
                .with_context(|| format!("moving the socket to {}", path.display()))?;
            Ok(listener)
        });
    let _ = std::fs::remove_dir_all(&private);
    let listener = bound?;
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await;
    let _ = std::fs::remove_file(path);
    served.with_context(|| format!("admin socket {}", path.display()))
}

/// Why a call on the admin socket did not return its value.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The daemon answered, with a 4xx: what was asked does not apply (no such job, ...).
    #[error("{message}")]
    Refused { status: u16, message: String },
    /// No usable answer: not connected, a 5xx, a timeout, an undecodable body.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// `GET uri` on the socket at `path`, decoded from JSON.
pub async fn get_json<T: DeserializeOwned>(
    path: &Path,
    uri: &str,
    timeout: Duration,
) -> Result<T, CallError> {
    call(path, Request::get(uri), Body::empty(), timeout).await
}

/// `POST uri` with `body` as JSON on the socket at `path`, the answer decoded from JSON.
pub async fn post_json<T: DeserializeOwned>(
    path: &Path,
    uri: &str,
    body: &impl serde::Serialize,
    timeout: Duration,
) -> Result<T, CallError> {
    let bytes = serde_json::to_vec(body).context("encoding the request")?;
    let request = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    call(path, request, Body::from(bytes), timeout).await
}

async fn call<T: DeserializeOwned>(
    path: &Path,
    request: axum::http::request::Builder,
    body: Body,
    timeout: Duration,
) -> Result<T, CallError> {
    let exchange = async {
        let (at, _dir) =
            reachable(path).with_context(|| format!("connecting to {}", path.display()))?;
        let stream = tokio::net::UnixStream::connect(at)
            .await
            .with_context(|| format!("connecting to {}", path.display()))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(connection);
        let request = request
            .header(header::HOST, "localhost")
            .body(body)
            .context("building the request")?;
        let response = sender.send_request(request).await.context("sending")?;
        let status = response.status();
        let bytes = axum::body::to_bytes(Body::new(response.into_body()), MAX_ANSWER)
            .await
            .context("reading the answer")?;
        // The daemon's own refusals are JSON with a `status`; any other 4xx (an unknown route
        // of a daemon older than this command, a request it could not read) is a failure.
        let refused = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["status"].as_str().map(str::to_owned));
        if let (true, Some(message)) = (status.is_client_error(), refused) {
            return Err(CallError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        if !status.is_success() {
            return Err(
                anyhow::anyhow!("{status}: {}", String::from_utf8_lossy(&bytes).trim()).into(),
            );
        }
        Ok(serde_json::from_slice(&bytes).context("decoding the answer")?)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {}s", timeout.as_secs()))?
}

/// A JSON answer `{"status": message}` with `status`.
fn refusal(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({"status": message.to_string()}))).into_response()
}

/// A store failure: logged here, a 503 without details there.
fn store_failure(what: &str, error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "Admin socket: {what} failed");
    refusal(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{what} failed: see the daemon's log"),
    )
}

/// Runs store work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The result of store reading `read`, run off the async workers, as JSON; a failure is a
/// [`store_failure`] of `what`.
async fn read_json<T, E>(
    what: &str,
    read: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Response
where
    T: serde::Serialize + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    match blocking(read).await {
        Ok(Ok(value)) => Json(value).into_response(),
        Ok(Err(error)) => store_failure(what, error),
        Err(response) => response,
    }
}

/// `?run=&org=` of the `/state` routes.
#[derive(Debug, serde::Deserialize)]
struct StateQuery {
    run: Option<i64>,
    org: Option<i64>,
}

async fn state_runs(State(admin): State<Admin>, Query(query): Query<StateQuery>) -> Response {
    let store = admin.store;
    read_json("reading runs", move || runs(&store, query.org)).await
}

async fn state_transitions(
    State(admin): State<Admin>,
    Query(query): Query<StateQuery>,
) -> Response {
    let store = admin.store;
    read_json("reading transitions", move || {
        transitions(&store, query.run, query.org)
    })
    .await
}

/// `?dead=true` of `/jobs`: the dead letters instead of the open jobs.
#[derive(Debug, serde::Deserialize)]
struct JobsQuery {
    #[serde(default)]
    dead: bool,
}

async fn list_jobs(State(admin): State<Admin>, Query(query): Query<JobsQuery>) -> Response {
    let store = admin.store;
    read_json("listing jobs", move || jobs::list(&store, query.dead)).await
}

async fn show_job(State(admin): State<Admin>, UrlPath(id): UrlPath<u64>) -> Response {
    let store = admin.store;
    match blocking(move || store.job(id)).await {
        Ok(Ok(Some(job))) => Json(job).into_response(),
        Ok(Ok(None)) => refusal(StatusCode::NOT_FOUND, format!("no job {id}")),
        Ok(Err(error)) => store_failure("reading a job", error),
        Err(response) => response,
    }
}

async fn retry_job(State(admin): State<Admin>, UrlPath(id): UrlPath<u64>) -> Response {
    let store = admin.store.clone();
    let retried = blocking(move || jobs::retry(&store, id)).await;
    let answer = job_change(&admin, retried, "retrying a job").await;
    if let Some(executor) = &admin.executor {
        executor.wake();
    }
    answer
}

async fn drop_job(State(admin): State<Admin>, UrlPath(id): UrlPath<u64>) -> Response {
    let store = admin.store.clone();
    let dropped = blocking(move || jobs::drop_job(&store, id)).await;
    job_change(&admin, dropped, "dropping a job").await
}

/// The answer to a job change: flushed first when it happened.
async fn job_change(
    admin: &Admin,
    changed: Result<Result<crate::store::JobRecord, AdminError>, Response>,
    what: &str,
) -> Response {
    match changed {
        Ok(Ok(job)) => match admin.store.flush().await {
            Ok(_) => Json(job).into_response(),
            Err(error) => store_failure(what, error),
        },
        Ok(Err(error @ AdminError::NotFound(_))) => refusal(StatusCode::NOT_FOUND, error),
        Ok(Err(error @ AdminError::NotDead { .. })) => refusal(StatusCode::CONFLICT, error),
        Ok(Err(AdminError::Store(error))) => store_failure(what, error),
        Err(response) => response,
    }
}

async fn list_silences(State(admin): State<Admin>) -> Response {
    let store = admin.store;
    read_json("listing silences", move || {
        store.silences().collect::<Result<Vec<_>, _>>()
    })
    .await
}

async fn add_silence(State(admin): State<Admin>, Json(silence): Json<NewSilence>) -> Response {
    match add_silence_to(&admin.store, silence).await {
        Ok(record) => Json(record).into_response(),
        Err(error) => store_failure("adding a silence", error),
    }
}

async fn expire_silence(State(admin): State<Admin>, UrlPath(id): UrlPath<u64>) -> Response {
    match expire_silence_in(&admin.store, id).await {
        Ok(Some(record)) => Json(record).into_response(),
        Ok(None) => refusal(StatusCode::NOT_FOUND, format!("no silence with id {id}")),
        Err(error) => store_failure("expiring a silence", error),
    }
}

/// Compiles the candidate rules with the daemon's config and replays the stored events: what
/// `rules replay` does with the store, done by the daemon that holds it. Rules that do not
/// compile are refused with their diagnostics.
async fn replay_rules(State(admin): State<Admin>, Json(request): Json<ReplayRequest>) -> Response {
    let compiled = compile_sources(&request.sources, &admin.rules_env);
    if compiled.has_errors() {
        return refusal(StatusCode::UNPROCESSABLE_ENTITY, compiled.errors_text());
    }
    let Some(set) = compiled.set else {
        return refusal(StatusCode::UNPROCESSABLE_ENTITY, "no rule set");
    };
    let (store, vars) = (admin.store, admin.rules_env.vars.unwrap_or_default());
    read_json("replaying stored events", move || {
        replay(&store, &set, &vars, request.since)
    })
    .await
}

/// `?org=` of `/explain/{run_id}`: one organization instead of every configured one.
#[derive(Debug, serde::Deserialize)]
struct ExplainQuery {
    org: Option<i64>,
}

/// The events of a run with their decisions and jobs ([`explain_run`]).
async fn explain(
    State(admin): State<Admin>,
    UrlPath(run_id): UrlPath<i64>,
    Query(query): Query<ExplainQuery>,
) -> Response {
    let orgs = query.org.map_or(admin.orgs, |org| vec![org]);
    let store = admin.store;
    read_json("explaining a run", move || {
        explain_run(&store, &orgs, run_id)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    /// `explain` of run 5, asked as soon as the socket answers (within 5 s).
    async fn explain_once_up(path: &Path) -> Vec<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match get_json(path, "/explain/5", Duration::from_secs(5)).await {
                Ok(events) => return events,
                Err(e) => {
                    assert!(tokio::time::Instant::now() < deadline, "{e:#}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// Over 107 bytes, the path of the socket cannot be a socket address itself.
    #[tokio::test]
    async fn a_store_deep_in_a_directory_tree_still_gets_its_socket() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
        let store = Store::open(StoreOptions::new(deep.join("db"))).unwrap();
        let path = socket_path(&deep);
        assert!(path.as_os_str().len() > 120, "{}", path.display());
        let cancel = CancellationToken::new();
        let server = tokio::spawn({
            let (path, cancel) = (path.clone(), cancel.clone());
            let router = router(store, vec![7], None, CompileEnv::default());
            async move { serve(&path, router, cancel).await }
        });
        let events = explain_once_up(&path).await;
        assert!(events.is_empty());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        cancel.cancel();
        server.await.unwrap().unwrap();
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn the_socket_answers_its_owner_and_is_gone_after_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreOptions::new(dir.path().join("db"))).unwrap();
        let path = socket_path(dir.path());
        std::fs::write(&path, b"stale").unwrap();
        std::fs::create_dir(dir.path().join(".admin-1")).unwrap();
        let cancel = CancellationToken::new();
        let server = tokio::spawn({
            let (path, cancel) = (path.clone(), cancel.clone());
            async move {
                serve(
                    &path,
                    router(store, vec![7], None, CompileEnv::default()),
                    cancel,
                )
                .await
            }
        });
        let events = explain_once_up(&path).await;
        assert!(events.is_empty(), "nothing recorded of run 5");
        let unknown = get_json::<serde_json::Value>(&path, "/nope", Duration::from_secs(5)).await;
        assert!(matches!(unknown, Err(CallError::Failed(_))), "{unknown:?}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only the daemon's user may connect");
        let missing =
            get_json::<serde_json::Value>(&path, "/jobs/99", Duration::from_secs(5)).await;
        assert!(
            matches!(&missing, Err(CallError::Refused { status: 404, message }) if message == "no job 99"),
            "{missing:?}"
        );
        // A candidate rule set larger than axum's default request limit is read whole.
        let file = format!("{}rules: []\n", "# padding\n".repeat(100_000));
        let request = ReplayRequest {
            since: chrono::Utc::now(),
            sources: (0..3)
                .map(|i| (PathBuf::from(format!("big-{i}.yaml")), file.clone()))
                .collect(),
        };
        let replayed: crate::engine::replay::Replayed =
            post_json(&path, "/replay", &request, Duration::from_secs(5))
                .await
                .unwrap();
        assert_eq!(replayed.events, 0);

        // Candidate rules that do not compile are refused with their diagnostics.
        let request = ReplayRequest {
            since: chrono::Utc::now(),
            sources: vec![(
                PathBuf::from("bad.yaml"),
                "rules:\n  - name: x\n    trigger: run.failed\n    stepz: []\n".to_owned(),
            )],
        };
        let refused =
            post_json::<serde_json::Value>(&path, "/replay", &request, Duration::from_secs(5))
                .await;
        assert!(
            matches!(&refused, Err(CallError::Refused { status: 422, message }) if message.contains("bad.yaml") && message.contains("stepz")),
            "{refused:?}"
        );

        assert!(
            !dir.path().join(".admin-1").exists(),
            "leftovers are removed"
        );
        cancel.cancel();
        server.await.unwrap().unwrap();
        assert!(!path.exists(), "the socket file is removed on shutdown");
    }
}

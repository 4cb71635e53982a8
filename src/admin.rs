//! The admin socket: a Unix socket in the store's directory ([`SOCKET_NAME`], mode 0600) where
//! the running daemon answers the commands that need its store while it holds it (`explain`).
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
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::engine::explain::explain_run;
use crate::store::Store;

/// The socket's file name, inside the store's directory.
pub const SOCKET_NAME: &str = "admin.sock";

/// Largest answer a command reads from the socket.
const MAX_ANSWER: usize = 256 << 20;

/// The admin socket of the store at `store_path`.
pub fn socket_path(store_path: &Path) -> PathBuf {
    store_path.join(SOCKET_NAME)
}

#[derive(Clone)]
struct Admin {
    store: Store,
    orgs: Vec<i64>,
}

/// The routes of the socket: `GET /explain/{run_id}[?org=N]`.
pub fn router(store: Store, orgs: Vec<i64>) -> Router {
    Router::new()
        .route("/explain/{run_id}", get(explain))
        .with_state(Admin { store, orgs })
}

/// Serves `router` on a new socket at `path` (a stale one from an earlier run is replaced)
/// until `cancel` fires; the file is removed on the way out.
pub async fn serve(path: &Path, router: Router, cancel: CancellationToken) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("could not listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {}", path.display()))?;
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await;
    let _ = std::fs::remove_file(path);
    served.with_context(|| format!("admin socket {}", path.display()))
}

/// `GET uri` on the socket at `path`, the answer decoded from JSON; a non-2xx answer is an
/// error carrying its status and body.
pub async fn get_json<T: DeserializeOwned>(
    path: &Path,
    uri: &str,
    timeout: Duration,
) -> anyhow::Result<T> {
    let exchange = async {
        let stream = tokio::net::UnixStream::connect(path)
            .await
            .with_context(|| format!("connecting to {}", path.display()))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let request = Request::get(uri)
            .header(header::HOST, "localhost")
            .body(Body::empty())?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let bytes = axum::body::to_bytes(Body::new(response.into_body()), MAX_ANSWER).await?;
        if !status.is_success() {
            anyhow::bail!("{status}: {}", String::from_utf8_lossy(&bytes).trim());
        }
        serde_json::from_slice(&bytes).context("decoding the answer")
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {}s", timeout.as_secs()))?
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
    match tokio::task::spawn_blocking(move || explain_run(&store, &orgs, run_id)).await {
        Ok(Ok(events)) => Json(events).into_response(),
        Ok(Err(error)) => {
            tracing::error!(%error, run_id, "explain could not read the store");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "could not read the store"})),
            )
                .into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    #[tokio::test]
    async fn the_socket_answers_its_owner_and_is_gone_after_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreOptions::new(dir.path().join("db"))).unwrap();
        let path = socket_path(dir.path());
        std::fs::write(&path, b"stale").unwrap();
        let cancel = CancellationToken::new();
        let server = tokio::spawn({
            let (path, cancel) = (path.clone(), cancel.clone());
            async move { serve(&path, router(store, vec![7]), cancel).await }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let events: Vec<serde_json::Value> = loop {
            match get_json(&path, "/explain/5", Duration::from_secs(5)).await {
                Ok(events) => break events,
                Err(e) => {
                    assert!(tokio::time::Instant::now() < deadline, "{e:#}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };
        assert!(events.is_empty(), "nothing recorded of run 5");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only the daemon's user may connect");
        let missing = get_json::<serde_json::Value>(&path, "/nope", Duration::from_secs(5)).await;
        assert!(missing.unwrap_err().to_string().starts_with("404"));

        cancel.cancel();
        server.await.unwrap().unwrap();
        assert!(!path.exists(), "the socket file is removed on shutdown");
    }
}

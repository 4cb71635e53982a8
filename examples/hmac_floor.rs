//! The least a webhook receiver can do, as the bench's reference for what the machine allows:
//! read the body, check its `X-Hub-Signature-256` with the receiver's own [`Verifier`], and
//! answer 202 or 401. No routing, limits, timeouts, metrics, logs, parsing or storage.
//!
//! `SENTINEL_BENCH_SECRETS=s1[,s2] hmac_floor ADDR` (used by bench/webhook.sh).

use std::convert::Infallible;
use std::sync::Arc;

use anyhow::Context;
use axum::body::{Body, Bytes};
use codegen_sentinel::sources::webhook::Verifier;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use secrecy::SecretString;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secrets: Vec<SecretString> = std::env::var("SENTINEL_BENCH_SECRETS")
        .context("SENTINEL_BENCH_SECRETS is not set")?
        .split(',')
        .map(SecretString::from)
        .collect();
    let verifier = Arc::new(Verifier::new(&secrets));
    let addr = std::env::args().nth(1).context("usage: hmac_floor ADDR")?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let verifier = verifier.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let verifier = verifier.clone();
                async move { Ok::<_, Infallible>(answer(&verifier, request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(verifier: &Verifier, request: Request<hyper::body::Incoming>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let digest = verifier.precheck(
        parts
            .headers
            .get("x-hub-signature-256")
            .map(|v| v.as_bytes()),
    );
    let body = axum::body::to_bytes(Body::new(body), usize::MAX).await;
    let verified = match (digest, body) {
        (Ok(digest), Ok(body)) => verifier.verify(&[body], &digest).is_ok(),
        _ => false,
    };
    let (status, text) = if verified {
        (StatusCode::ACCEPTED, r#"{"status":"accepted"}"#)
    } else {
        (
            StatusCode::UNAUTHORIZED,
            r#"{"status":"signature required"}"#,
        )
    };
    let mut response = Response::new(Body::from(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

//! `codegen-sentinel demo`: the whole daemon against the built-in Codegen simulator, with a
//! throwaway store and a live feed, then a summary. Needs no token and no network.

mod feed;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::Failure;
use crate::config::parse_settings;
use crate::daemon::Daemon;
use crate::sim::{Fault, RouteClass, SimConfig, Simulator};

/// How often the simulator's clock is moved.
const SIM_TICK: Duration = Duration::from_millis(250);
/// How often the simulator starts a new run.
const NEW_RUN_EVERY: Duration = Duration::from_secs(3);
/// The org the simulator's demo data lives in.
const DEMO_ORG: i64 = 7;

/// The shipped rules, built in so the demo runs from any directory.
const SHIPPED_RULES: &[(&str, &str)] = &[
    (
        "ban-checks-on-agent-prs.yaml",
        include_str!("../../rules/ban-checks-on-agent-prs.yaml"),
    ),
    (
        "diagnose-failed-runs.yaml",
        include_str!("../../rules/diagnose-failed-runs.yaml"),
    ),
    (
        "fix-failed-checks.yaml",
        include_str!("../../rules/fix-failed-checks.yaml"),
    ),
    (
        "stalled-runs.yaml",
        include_str!("../../rules/stalled-runs.yaml"),
    ),
    (
        "weekday-digest.yaml",
        include_str!("../../rules/weekday-digest.yaml"),
    ),
];

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Rule files to run [default: ./rules when present, else the built-in copies of them].
    #[arg(long)]
    pub rules: Option<std::path::PathBuf>,
    /// Stop after this long (e.g. 60s); without it, run until Ctrl-C.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// How much faster than the wall clock the simulated runs progress.
    #[arg(long, default_value_t = 10)]
    pub speed: u32,
    /// The first N log fetches answer 503, so the feed shows a step failing and retried
    /// (the client retries 4 times within one attempt; 0 for none).
    #[arg(long, default_value_t = 4)]
    pub faults: usize,
}

pub async fn run(args: DemoArgs) -> Result<(), Failure> {
    demo(args).await.map_err(Failure::Runtime)
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let workdir = tempfile::Builder::new()
        .prefix("codegen-sentinel-demo-")
        .tempdir()
        .context("could not create a temporary directory")?;
    let cancel = CancellationToken::new();

    let sim = Simulator::new(SimConfig::default());
    let token = sim.seed_demo();
    let server = sim
        .clone()
        .serve("127.0.0.1:0".parse()?)
        .await
        .context("could not start the simulator")?;
    sim.inject(Fault::Status(503), args.faults, Some(RouteClass::Logs));
    spawn_fast_clock(sim.clone(), args.speed.max(1), cancel.child_token());
    sim.spawn_run_stream(NEW_RUN_EVERY, cancel.child_token());

    let rules = rules_dir(args.rules.clone(), workdir.path())?;
    let notifier = spawn_printing_notifier(cancel.child_token()).await?;
    let github = spawn_printing_github(cancel.child_token()).await?;
    std::fs::write(workdir.path().join("github-token"), "demo-github-token")
        .context("could not write the demo GitHub token")?;
    // The token goes through a file, as a deployment's would.
    let token_file = workdir.path().join("codegen-token");
    std::fs::write(&token_file, &token).context("could not write the demo token")?;
    let config = demo_config(&server.base_url, workdir.path(), &rules, &notifier, &github);
    let config_path = workdir.path().join("sentinel.yaml");
    let settings = parse_settings(&config_path, &config).map_err(|d| {
        let lines: Vec<String> = d.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the demo config is invalid:\n{}", lines.join("\n"))
    })?;
    let daemon = Daemon::start(settings)?;
    let store = daemon.store.clone();
    // Subscribed before the daemon runs: the executor reports steps only while someone listens.
    let events = daemon.feed.subscribe();
    let steps = daemon.step_feed.subscribe();

    println!("codegen-sentinel demo");
    println!(
        "  Codegen simulator  {} (org {DEMO_ORG}, runs progress {}x faster)",
        server.base_url, args.speed
    );
    println!("  store              {}", workdir.path().display());
    println!(
        "  rules              {} ({} rules)",
        rules.display(),
        daemon.rules.status().rules
    );
    if args.faults > 0 {
        println!(
            "  faults             the first {} log fetches answer 503 (--faults 0 for none)",
            args.faults
        );
    }
    match args.duration {
        Some(d) => println!("  stopping after     {}", humantime::format_duration(d)),
        None => println!("  stop with          Ctrl-C"),
    }
    println!();

    let printed = CancellationToken::new();
    let printer = tokio::spawn(feed::print_feed(
        events,
        steps,
        store.clone(),
        printed.clone(),
    ));
    tokio::spawn(super::signals::stop_on_signals(cancel.clone()));
    if let Some(duration) = args.duration {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            cancel.cancel();
        });
    }
    let started = std::time::Instant::now();
    let result = daemon.run(cancel.clone()).await;
    cancel.cancel();
    // The daemon has stopped: what the executor saved is all reported; print the rest.
    printed.cancel();
    let _ = printer.await;
    server.shutdown().await;
    result?;
    feed::print_summary(&store, started.elapsed())?;
    Ok(())
}

fn demo_config(base_url: &str, dir: &Path, rules: &Path, notifier: &str, github: &str) -> String {
    format!(
        "codegen:\n  base_url: {base_url}\n  token_file: {}\n  org_ids: [{DEMO_ORG}]\n  \
         poll_interval: 1s\n  stall_after: 10m\n  deep_resync: 10m\n\
         store:\n  path: {}\n\
         server:\n  listen: 127.0.0.1:0\n\
         rules:\n  paths: [{}]\n\
         github:\n  base_url: {github}\n  token_file: {}\n\
         notifiers:\n  ops:\n    type: webhook\n    url: {notifier}\n\
         vars:\n  default_sandbox_id: 42\n",
        dir.join("codegen-token").display(),
        dir.join("store").display(),
        rules.display(),
        dir.join("github-token").display(),
    )
}

/// `--rules`, else `./rules`, else the built-in copies written under `workdir`.
fn rules_dir(explicit: Option<PathBuf>, workdir: &Path) -> anyhow::Result<PathBuf> {
    if let Some(dir) = explicit {
        return Ok(std::path::absolute(dir)?);
    }
    let local = Path::new("rules");
    if local.join("diagnose-failed-runs.yaml").is_file() {
        return Ok(std::path::absolute(local)?);
    }
    let dir = workdir.join("rules");
    std::fs::create_dir_all(&dir)?;
    for (name, text) in SHIPPED_RULES {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(dir)
}

/// A stand-in for the GitHub REST API that prints the comments, labels and statuses it is sent
/// (and lists the comments back, so the executor's duplicate check works as against GitHub).
async fn spawn_printing_github(cancel: CancellationToken) -> anyhow::Result<String> {
    use axum::extract::{Path as UrlPath, State};
    use axum::routing::{get, post};
    use axum::{Json, Router};
    type Comments = Arc<std::sync::Mutex<BTreeMap<String, Vec<serde_json::Value>>>>;

    async fn list(
        State(comments): State<Comments>,
        UrlPath((owner, repo, number)): UrlPath<(String, String, u64)>,
    ) -> Json<serde_json::Value> {
        let key = format!("{owner}/{repo}#{number}");
        let all = comments.lock().map(|c| c.get(&key).cloned()).ok().flatten();
        Json(serde_json::Value::Array(all.unwrap_or_default()))
    }

    async fn create(
        State(comments): State<Comments>,
        UrlPath((owner, repo, number)): UrlPath<(String, String, u64)>,
        Json(body): Json<serde_json::Value>,
    ) -> (axum::http::StatusCode, Json<serde_json::Value>) {
        let key = format!("{owner}/{repo}#{number}");
        let text = body["body"].as_str().unwrap_or_default();
        let shown = text.lines().next().unwrap_or_default();
        println!("          💬 GitHub comment on {key}: {shown}");
        let mut all = comments.lock().unwrap_or_else(|p| p.into_inner());
        let list = all.entry(key.clone()).or_default();
        let id = list.len() as u64 + 1;
        let comment = serde_json::json!({
            "id": id,
            "body": text,
            "html_url": format!("https://github.com/{owner}/{repo}/pull/{number}#issuecomment-{id}"),
        });
        list.push(comment.clone());
        (axum::http::StatusCode::CREATED, Json(comment))
    }

    async fn other(uri: axum::http::Uri, body: String) -> Json<serde_json::Value> {
        println!("          🐙 GitHub {uri}: {body}");
        Json(serde_json::json!({}))
    }

    let comments: Comments = Arc::default();
    let app = Router::new()
        .route(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            get(list).post(create),
        )
        .fallback(post(other))
        .with_state(comments);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
    });
    Ok(url)
}

/// A local endpoint for the `ops` notifier that prints what it is sent.
async fn spawn_printing_notifier(cancel: CancellationToken) -> anyhow::Result<String> {
    use axum::{routing::post, Json, Router};
    let app = Router::new().route(
        "/notify",
        post(|Json(body): Json<serde_json::Value>| async move {
            let text = body["text"].as_str().unwrap_or("(no text)");
            println!("          📣 ops: {text}");
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/notify", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
    });
    Ok(url)
}

/// Moves the simulator's clock `speed` times faster than the wall clock.
fn spawn_fast_clock(sim: Simulator, speed: u32, cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(SIM_TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = ticks.tick() => sim.advance(SIM_TICK * speed),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_rules_are_exactly_the_shipped_files() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/rules");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
            .collect();
        on_disk.sort();
        let built_in: Vec<&str> = SHIPPED_RULES.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, built_in);
        for (name, text) in SHIPPED_RULES {
            let path = Path::new(dir).join(name);
            assert_eq!(std::fs::read_to_string(path).unwrap(), *text, "{name}");
        }
    }
}

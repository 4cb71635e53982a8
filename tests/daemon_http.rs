//! The daemon's HTTP surface as a real process: `healthcheck`, readiness, webhooks into the
//! rules, and canary secrets that must never show in logs, metrics, `/status` or error output.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use codegen_sentinel::sources::webhook::sign;
use common::*;

const WEBHOOK_CANARY: &str = "whsec-canary-77a1c3";
const NOTIFIER_CANARY: &str = "notify-canary-5b9e20";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(dir: &Path, base_url: &str, port: u16) -> std::path::PathBuf {
    let path = dir.join("sentinel.yaml");
    let text = format!(
        "codegen:\n  base_url: {base_url}\n  token_env: SENTINEL_TEST_TOKEN\n  org_ids: [{ORG}]\n  \
         poll_interval: 200ms\n\
         store:\n  path: {}\n\
         server:\n  listen: 127.0.0.1:{port}\n\
         rules:\n  paths: [{}]\n\
         github:\n  webhook_secrets_env: SENTINEL_TEST_WEBHOOK_SECRETS\n\
         notifiers:\n  audit:\n    type: webhook\n    url: http://127.0.0.1:9/hook\n    secret_env: SENTINEL_TEST_NOTIFY_SECRET\n",
        dir.join("store").display(),
        dir.join("rules").display(),
    );
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(
        dir.join("rules/log.yaml"),
        "rules:\n  - name: log-prs\n    trigger: github.pull_request\n    steps:\n      - action: log\n        with: { message: \"PR {{ payload.number }}\" }\n",
    )
    .unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn daemon(config: &Path) -> Child {
    daemon_command(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn daemon_command(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_codegen-sentinel"));
    command
        .args(["run", "--config"])
        .arg(config)
        .env("SENTINEL_TEST_TOKEN", TOKEN)
        .env(
            "SENTINEL_TEST_WEBHOOK_SECRETS",
            format!("old-secret,{WEBHOOK_CANARY}"),
        )
        .env("SENTINEL_TEST_NOTIFY_SECRET", NOTIFIER_CANARY)
        .env("RUST_LOG", "debug")
        .env_remove("SENTINEL_CONFIG");
    command
}

/// The daemon with its logs in the file at `log` (a pipe nobody reads would fill under load and
/// stall the daemon, not test it).
fn daemon_logging_to(config: &Path, log: &Path) -> Child {
    let file = std::fs::File::create(log).unwrap();
    daemon_command(config)
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap()
}

/// The store of the daemon configured in `dir`, opened once the daemon has stopped.
fn open_store(dir: &Path) -> codegen_sentinel::store::Store {
    let options = codegen_sentinel::store::StoreOptions::new(dir.join("store"));
    codegen_sentinel::store::Store::open(options).unwrap()
}

/// Waits until `healthcheck` says the daemon of `config` is ready.
async fn wait_ready(config: &Path) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !healthcheck(config).await.status.success() {
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn healthcheck(config: &Path) -> std::process::Output {
    run_cli(config, &["healthcheck"]).await.unwrap()
}

/// Deliveries the daemon answered 202, by id.
type Acknowledged = std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>;

/// The deliveries answered 202, checked to be `n` at least (else the load was not applied).
fn at_least(acknowledged: &Acknowledged, n: usize) -> std::collections::BTreeSet<String> {
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= n,
        "load was applied: {} deliveries acknowledged, {n} expected at least",
        acknowledged.len()
    );
    acknowledged
}

/// `codegen-sentinel ARGS --config CONFIG`, run off the async workers.
fn run_cli(config: &Path, args: &[&str]) -> tokio::task::JoinHandle<std::process::Output> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_codegen-sentinel"));
    command.args(args).arg("--config").arg(config);
    tokio::task::spawn_blocking(move || command.output().unwrap())
}

/// `senders` tasks posting signed `pull_request` deliveries (ids `PREFIX-SENDER-N`) to the daemon
/// at `base` as fast as it answers, until it stops listening; the ones answered 202 go into
/// `acknowledged`.
fn spawn_senders(
    base: &str,
    prefix: &str,
    senders: usize,
    acknowledged: &Acknowledged,
) -> Vec<tokio::task::JoinHandle<()>> {
    let body = std::sync::Arc::new(
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/github/pull_request.opened.json"
        ))
        .unwrap(),
    );
    let signature = sign(WEBHOOK_CANARY.as_bytes(), &body);
    (0..senders)
        .map(|sender| {
            let (base, prefix, body, signature, acknowledged) = (
                base.to_owned(),
                prefix.to_owned(),
                body.clone(),
                signature.clone(),
                acknowledged.clone(),
            );
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for i in 0.. {
                    let delivery = format!("{prefix}-{sender}-{i}");
                    let sent = http
                        .post(format!("{base}/webhooks/github"))
                        .header("X-GitHub-Event", "pull_request")
                        .header("X-GitHub-Delivery", &delivery)
                        .header("X-Hub-Signature-256", &signature)
                        .header("Content-Type", "application/json")
                        .body(body.as_ref().clone())
                        .send()
                        .await;
                    match sent {
                        Ok(answer) if answer.status() == 202 => {
                            acknowledged.lock().unwrap().insert(delivery);
                        }
                        Ok(_) => {}
                        Err(_) => return, // the daemon stopped listening
                    }
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_daemon_is_healthy_serves_webhooks_and_never_shows_a_secret() {
    let server = serve(seeded_sim()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &server.base_url, port);
    let child = daemon(&config);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    // Ready once the first reconcile is done; `healthcheck` says so.
    wait_ready(&config).await;

    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/github/pull_request.opened.json"
    ))
    .unwrap();
    let post = |signature: Option<String>, delivery: &str| {
        let mut request = http
            .post(format!("{base}/webhooks/github"))
            .header("X-GitHub-Event", "pull_request")
            .header("X-GitHub-Delivery", delivery)
            .header("Content-Type", "application/json")
            .body(body.clone());
        if let Some(signature) = signature {
            request = request.header("X-Hub-Signature-256", signature);
        }
        request.send()
    };
    let good = sign(WEBHOOK_CANARY.as_bytes(), &body);
    let mut answers = Vec::new();
    let accepted = post(Some(good.clone()), "d-1").await.unwrap();
    assert_eq!(accepted.status(), 202);
    answers.push(accepted.text().await.unwrap());
    let again = post(Some(good), "d-1").await.unwrap();
    assert!(again.status().is_success());
    answers.push(again.text().await.unwrap());
    let forged = post(Some(sign(b"wrong", &body)), "d-2").await.unwrap();
    assert_eq!(forged.status(), 401);
    answers.push(forged.text().await.unwrap());
    let unsigned = post(None, "d-3").await.unwrap();
    assert_eq!(unsigned.status(), 401);
    answers.push(unsigned.text().await.unwrap());

    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("sentinel_"), "{metrics}");
    let status: serde_json::Value = http
        .get(format!("{base}/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(status["version"].is_string(), "{status}");
    assert_eq!(status["rules"]["rules"], 1, "{status}");
    assert!(status["rules"]["last_error"].is_null(), "{status}");

    // A broken rule file is refused: the old set keeps running and /status says why.
    std::fs::write(
        dir.path().join("rules/broken.yaml"),
        "rules:\n  - name: x\n    trigger: run.nope\n    steps: []\n",
    )
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status: serde_json::Value = http
            .get(format!("{base}/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !status["rules"]["last_error"].is_null() {
            break status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "reload error never shown: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["rules"]["rules"], 1, "the old set is kept: {status}");
    assert!(
        status["rules"]["last_error"]
            .as_str()
            .unwrap()
            .contains("broken.yaml"),
        "{status}"
    );

    let out = terminate(child).await;
    assert_eq!(out.status.code(), Some(0));
    let logs = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        logs.contains("webhook") || logs.contains("Webhook"),
        "logs are debug level"
    );

    let everything = [
        logs,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        metrics,
        status.to_string(),
        answers.join("\n"),
    ];
    for canary in [TOKEN, WEBHOOK_CANARY, NOTIFIER_CANARY] {
        for (i, text) in everything.iter().enumerate() {
            assert!(!text.contains(canary), "secret {canary} in output {i}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_stops_the_start_with_its_location_and_no_value() {
    let server = serve(seeded_sim()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &server.base_url, free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_codegen-sentinel"));
    cmd.args(["run", "--config"])
        .arg(&config)
        .env("SENTINEL_TEST_TOKEN", TOKEN)
        .env("SENTINEL_TEST_WEBHOOK_SECRETS", WEBHOOK_CANARY)
        .env_remove("SENTINEL_TEST_NOTIFY_SECRET")
        .env_remove("SENTINEL_CONFIG");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("sentinel.yaml:"), "{stderr}");
    assert!(stderr.contains("SENTINEL_TEST_NOTIFY_SECRET"), "{stderr}");
    for canary in [TOKEN, WEBHOOK_CANARY] {
        assert!(!stderr.contains(canary), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_fails_when_nothing_answers() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9", free_port());
    let out = healthcheck(&config).await;
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_webhook_load_exits_0_in_time_and_loses_no_acknowledged_delivery() {
    use std::collections::BTreeSet;

    let server = serve(seeded_sim()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &server.base_url, port);
    let child = daemon(&config);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&config).await;

    let acknowledged = Acknowledged::default();
    let senders = spawn_senders(&base, "load", 6, &acknowledged);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopping = tokio::time::Instant::now();
    let out = terminate(child).await;
    let took = stopping.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The default shutdown grace is 10 s; stopping must not take longer than that and a margin.
    assert!(took < Duration::from_secs(12), "took {took:?}");
    for sender in senders {
        sender.await.unwrap();
    }

    // One delivery per sender at least.
    let acknowledged = at_least(&acknowledged, 6);
    let store = open_store(dir.path());
    let stored: BTreeSet<String> = store.deliveries().map(|d| d.unwrap().id).collect();
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    let open_before = store.open_jobs().unwrap().len();
    println!(
        "stopped in {took:?}: {} deliveries acknowledged, {} stored, {open_before} jobs open",
        acknowledged.len(),
        stored.len()
    );
    drop(store);

    // After a restart the jobs left by the stop run to the end.
    let child = daemon(&config);
    wait_ready(&config).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let out = terminate(child).await;
    assert_eq!(out.status.code(), Some(0));
    let store = open_store(dir.path());
    let jobs = store.jobs().count();
    assert_eq!(
        jobs,
        acknowledged.len().max(stored.len()),
        "one job per stored delivery"
    );
    assert!(
        store.open_jobs().unwrap().is_empty(),
        "{open_before} jobs were open at the stop; all finish after the restart"
    );
}

/// kill -9 while deliveries are being answered, five times over one store: every delivery
/// answered 202 is there after the restart, with its event and the decision of the rule that
/// listens to it (all written in the one transaction the 202 waited for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_webhook_load_loses_no_acknowledged_delivery_nor_its_decision() {
    let server = serve(seeded_sim()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &server.base_url, port);
    let base = format!("http://127.0.0.1:{port}");
    let acknowledged = Acknowledged::default();
    // A different moment each round, the same moments each run.
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0x5e17);
    for round in 0..5 {
        let log = dir.path().join(format!("daemon-{round}.log"));
        let mut child = daemon_logging_to(&config, &log);
        wait_ready(&config).await;
        let senders = spawn_senders(&base, &format!("kill-{round}"), 8, &acknowledged);
        let moment = rand::Rng::random_range(&mut rng, 200..1000);
        tokio::time::sleep(Duration::from_millis(moment)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for sender in senders {
            sender.await.unwrap();
        }
    }

    let acknowledged = at_least(&acknowledged, 40);
    let store = open_store(dir.path());
    for delivery in &acknowledged {
        assert_stored_with_decision(&store, delivery);
    }
    println!(
        "{} deliveries acknowledged over 5 kill -9, all stored with event and decision",
        acknowledged.len()
    );
}

/// `delivery` is in the store with its event, its payload and the decision of `log-prs` on it.
fn assert_stored_with_decision(store: &codegen_sentinel::store::Store, delivery: &str) {
    assert!(
        store.delivery(delivery).unwrap().is_some(),
        "{delivery} acknowledged but not stored"
    );
    let event = store
        .event_by_id(&format!("github/{delivery}"))
        .unwrap()
        .unwrap_or_else(|| panic!("{delivery} has no event"));
    assert_eq!(event.data["payload"]["number"], 2, "{delivery}: payload");
    let decisions = store.journal_of_event(event.seq).unwrap();
    assert!(
        decisions.iter().any(|d| d.rule == "log-prs"),
        "{delivery}: no decision of log-prs"
    );
}

/// A loop that dies ends the daemon with a non-zero exit, naming the loop, after stopping the
/// others in order. Here the store's disk fills up under webhook load (a file size limit on the
/// process, as `ulimit -f` sets, stands in for a full disk): deliveries are then refused with
/// 503, the next loop to flush fails, and the daemon exits 1. Every delivery answered 202 before
/// is in the store when it is opened again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_that_dies_of_a_full_disk_ends_the_daemon_non_zero_and_loses_nothing_acknowledged() {
    use std::os::unix::process::CommandExt as _;

    let server = serve(seeded_sim()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &server.base_url, port);
    let mut command = daemon_command(&config);
    command
        .env("RUST_LOG", "info")
        // Pipes, not files: the size limit applies to every file the daemon writes.
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec the closure only makes two async-signal-safe calls.
    unsafe {
        command.pre_exec(|| {
            // Writing past the limit then fails with EFBIG instead of killing the process.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 2 << 20,
                rlim_max: 2 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().unwrap();
    wait_ready(&config).await;
    let acknowledged = Acknowledged::default();
    let senders = spawn_senders(
        &format!("http://127.0.0.1:{port}"),
        "full",
        4,
        &acknowledged,
    );
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()),
    )
    .await
    .expect("the daemon exits once its disk is full")
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("A daemon loop stopped; shutting down"),
        "{stderr}"
    );
    let reported = stderr.lines().last().unwrap_or_default().to_owned();
    assert!(
        reported.starts_with("error: ")
            && reported.contains(" stopped: ")
            && reported.contains("File too large"),
        "the exit names the loop and the cause: {reported}"
    );
    assert_eq!(
        reported.matches("File too large").count(),
        1,
        "each cause is said once: {reported}"
    );
    assert!(
        stderr.contains("Webhook delivery not stored"),
        "deliveries were refused once the disk was full: {stderr}"
    );
    for sender in senders {
        sender.await.unwrap();
    }

    // Load was applied before the disk filled.
    let acknowledged = at_least(&acknowledged, 10);
    let store = open_store(dir.path());
    for delivery in &acknowledged {
        assert_stored_with_decision(&store, delivery);
    }
    println!(
        "{} deliveries acknowledged before the disk filled, all stored; the daemon said: {reported}",
        acknowledged.len()
    );
}

/// `explain` and `state` while the daemon holds the store: the commands ask the daemon on its
/// admin socket and print the same report as from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_asks_the_running_daemon_when_it_holds_the_store() {
    let sim = seeded_sim();
    let server = serve(sim.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &server.base_url, port);
    let child = daemon(&config);
    wait_ready(&config).await;
    // A run that appears and fails after the daemon's first reconcile: recorded as events.
    let run = sim.create_run(ORG, codegen_sentinel::sim::RunPlan::ends("FAILED"));
    sim.set_status(ORG, run, Some("FAILED"));
    let explain = |run: i64| run_cli(&config, &["explain", &run.to_string()]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let out = loop {
        let out = explain(run).await.unwrap();
        if out.status.success() {
            break out;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "explain never found run {run}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use by the running daemon"), "{stderr}");
    assert!(stdout.contains(&format!("run/{ORG}/{run}/")), "{stdout}");
    assert!(
        stdout.contains("log-prs"),
        "every current rule is accounted for: {stdout}"
    );

    // `state` goes through the daemon as well.
    let out = run_cli(
        &config,
        &["state", "transitions", "--json", "--run", &run.to_string()],
    )
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let transitions: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        transitions
            .iter()
            .any(|t| t["to"] == "FAILED" && t["run_id"] == run),
        "{transitions:?}"
    );

    // A run the daemon never saw is an error, as with a stopped daemon.
    let out = explain(424_242).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no events recorded for run 424242"));
    terminate(child).await;
}

/// `jobs` and `silence` while the daemon holds the store: they go through its admin socket and
/// act at once (a dead letter retried, dropped; a silence added, listed, expired).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_and_silences_are_managed_through_the_running_daemon() {
    let server = serve(seeded_sim()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &server.base_url, port);
    // A rule whose only step cannot succeed (nothing listens on port 9) and is not retried.
    std::fs::write(
        dir.path().join("rules/audit.yaml"),
        "rules:\n  - name: audit-prs\n    trigger: github.pull_request\n    steps:\n      - action: notify\n        with: { to: audit, text: \"PR {{ payload.number }}\" }\n        retry: { max_attempts: 1 }\n",
    )
    .unwrap();
    let log_path = dir.path().join("daemon.log");
    let child = daemon_logging_to(&config, &log_path);
    wait_ready(&config).await;
    // Everything the commands print, to look for secrets at the end.
    let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let cli = |args: &[&str]| {
        let (running, printed) = (run_cli(&config, args), printed.clone());
        tokio::spawn(async move {
            let out = running.await.unwrap();
            let mut all = printed.lock().unwrap();
            all.push_str(&String::from_utf8_lossy(&out.stdout));
            all.push_str(&String::from_utf8_lossy(&out.stderr));
            out
        })
    };
    let text = |out: &std::process::Output| String::from_utf8_lossy(&out.stdout).into_owned();

    let acknowledged = Acknowledged::default();
    let senders = spawn_senders(
        &format!("http://127.0.0.1:{port}"),
        "jobs",
        1,
        &acknowledged,
    );
    while acknowledged.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for sender in &senders {
        sender.abort();
    }

    // The notify step fails at once: its job becomes a dead letter.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let dead = loop {
        let out = cli(&["jobs", "list", "--dead", "--json"]).await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("in use by the running daemon"));
        let first = text(&out)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|j| j["rule"] == "audit-prs");
        if let Some(job) = first {
            break job["id"].as_u64().unwrap();
        }
        assert!(tokio::time::Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let out = cli(&["jobs", "show", &dead.to_string()]).await.unwrap();
    assert!(text(&out).contains("\"audit-prs\""), "{}", text(&out));
    let out = cli(&["jobs", "retry", &dead.to_string()]).await.unwrap();
    assert_eq!(
        text(&out).trim(),
        format!("job {dead} (audit-prs) is queued again")
    );
    // Queued again, it fails again (nothing listens yet); dropping it works in any state.
    let out = cli(&["jobs", "drop", &dead.to_string()]).await.unwrap();
    assert!(
        text(&out).starts_with(&format!("job {dead} (audit-prs")),
        "{}",
        text(&out)
    );
    let out = cli(&["jobs", "show", &dead.to_string()]).await.unwrap();
    assert_eq!(out.status.code(), Some(2), "a dropped job is gone");
    let out = cli(&["jobs", "retry", "999999"]).await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no job 999999"));

    let out = cli(&[
        "silence",
        "add",
        "log-prs",
        "--until",
        "1h",
        "--reason",
        "incident 42",
    ])
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id: u64 = text(&out)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let out = cli(&["silence", "list"]).await.unwrap();
    assert!(text(&out).contains("incident 42"), "{}", text(&out));
    let out = cli(&["silence", "expire", &id.to_string()]).await.unwrap();
    assert_eq!(
        text(&out).trim(),
        format!("silence {id} on log-prs expired")
    );
    let out = cli(&["silence", "list"]).await.unwrap();
    assert!(
        !text(&out).contains("incident 42"),
        "expired: {}",
        text(&out)
    );
    let out = cli(&["silence", "expire", "999999"]).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = terminate(child).await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    let last: Vec<&str> = log.lines().rev().take(15).collect();
    assert_eq!(out.status.code(), Some(0), "{last:#?}");
    let printed = printed.lock().unwrap().clone();
    for canary in [WEBHOOK_CANARY, NOTIFIER_CANARY, TOKEN] {
        assert!(!printed.contains(canary), "a command printed {canary}");
        assert!(!log.contains(canary), "the daemon logged {canary}");
    }
    assert!(
        !dir.path().join("store").join("admin.sock").exists(),
        "the socket is removed at shutdown"
    );
}

/// SIGTERM waits for a step in flight (up to `shutdown_grace`); a second SIGTERM ends the
/// process at once, with 130.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_exits_at_once_while_a_step_is_in_flight() {
    let server = serve(seeded_sim()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &server.base_url, port);
    // A notifier that accepts the request and never answers: the step stays in flight.
    let hanging = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hanging_url = format!("http://{}/hook", hanging.local_addr().unwrap());
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "url: http://127.0.0.1:9/hook",
        &format!("url: {hanging_url}\n    timeout: 60s"),
    ) + "executor:\n  shutdown_grace: 60s\n";
    std::fs::write(&config, text).unwrap();
    std::fs::write(
        dir.path().join("rules/audit.yaml"),
        "rules:\n  - name: audit-prs\n    trigger: github.pull_request\n    steps:\n      - action: notify\n        with: { to: audit, text: \"PR {{ payload.number }}\" }\n",
    )
    .unwrap();
    let child = daemon_logging_to(&config, &dir.path().join("daemon.log"));
    wait_ready(&config).await;

    let acknowledged = Acknowledged::default();
    let senders = spawn_senders(
        &format!("http://127.0.0.1:{port}"),
        "hang",
        1,
        &acknowledged,
    );
    let accepted = tokio::task::spawn_blocking(move || {
        let held = hanging.accept().unwrap();
        (hanging, held) // kept open, never answered
    });
    let _held = tokio::time::timeout(Duration::from_secs(20), accepted)
        .await
        .expect("the notify step never reached the notifier")
        .unwrap();
    for sender in &senders {
        sender.abort();
    }

    let kill = |pid: u32| {
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    let pid = child.id();
    kill(pid);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut child = child;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first SIGTERM waits for the step in flight"
    );
    let second = std::time::Instant::now();
    kill(pid);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        second.elapsed() < Duration::from_secs(10),
        "the second SIGTERM did not wait: {:?}",
        second.elapsed()
    );
}

/// `rules replay` while the daemon holds the store: the candidate rules' text goes to the daemon,
/// which compiles it with its config and replays its store; the report is the one the store gives
/// once the daemon has stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_replay_asks_the_running_daemon_and_reports_as_the_store_does() {
    let server = serve(seeded_sim()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &server.base_url, port);
    let child = daemon(&config);
    wait_ready(&config).await;
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/github/pull_request.opened.json"
    ))
    .unwrap();
    let signature = sign(WEBHOOK_CANARY.as_bytes(), &body);
    let http = reqwest::Client::new();
    for delivery in ["replay-1", "replay-2", "replay-3"] {
        let answer = http
            .post(format!("http://127.0.0.1:{port}/webhooks/github"))
            .header("X-GitHub-Event", "pull_request")
            .header("X-GitHub-Delivery", delivery)
            .header("X-Hub-Signature-256", &signature)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202);
    }
    // The candidate: `log-prs` only for PRs numbered above 100, and a new rule on every PR.
    let candidate = dir.path().join("candidate");
    std::fs::create_dir_all(&candidate).unwrap();
    std::fs::write(
        candidate.join("rules.yaml"),
        "rules:\n  - name: log-prs\n    trigger: github.pull_request\n    when: payload.number > 100\n    steps:\n      - action: log\n        with: { message: \"PR {{ payload.number }}\" }\n  \
         - name: label-prs\n    trigger: github.pull_request\n    steps:\n      - action: log\n        with: { message: \"label {{ payload.number }}\" }\n",
    )
    .unwrap();
    let candidate_path = candidate.to_string_lossy().into_owned();
    let replay = || {
        run_cli(
            &config,
            &[
                "rules",
                "replay",
                "--since",
                "1h",
                "--rules",
                &candidate_path,
            ],
        )
    };

    let live = replay().await.unwrap();
    let stderr = String::from_utf8_lossy(&live.stderr);
    assert!(live.status.success(), "{stderr}");
    assert!(stderr.contains("asking it on"), "{stderr}");
    let report = String::from_utf8_lossy(&live.stdout).into_owned();
    for delivery in ["replay-1", "replay-2", "replay-3"] {
        let of = |rule: &str, sign: char| {
            report.lines().any(|line| {
                line.starts_with(sign)
                    && line.contains(&format!("github/{delivery}"))
                    && line.contains(rule)
            })
        };
        assert!(
            of("label-prs", '+'),
            "{delivery} newly fires label-prs: {report}"
        );
        assert!(
            of("log-prs", '-'),
            "{delivery} no longer fires log-prs: {report}"
        );
    }
    assert!(
        stderr.contains("3 would fire that did not, 3 fired that would not"),
        "{stderr}"
    );

    terminate(child).await;
    let stopped = replay().await.unwrap();
    assert!(stopped.status.success());
    assert_eq!(
        String::from_utf8_lossy(&stopped.stdout),
        report,
        "the daemon and the store report alike"
    );
}

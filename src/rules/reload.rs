//! The live rule set and its reload: on SIGHUP or a change under the rule paths, the files are
//! compiled again and the new set swapped in only if it compiles; otherwise the old set keeps
//! running, and the error is logged, counted (`sentinel_rule_reloads_total{outcome}`) and kept
//! for `/status`.
//!
//! The watch covers each rule directory recursively and the directory holding each configured
//! path, and is re-armed after every change: editors that write a new file and rename it over
//! the old one, `git checkout`, and a directory replaced whole all end in a reload.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{compile_paths, CompileEnv, RuleSet};
use crate::config::Settings;
use crate::yaml::Diagnostic;

/// How long after a file change the reload waits for more: an editor or a checkout writes
/// several files in a burst, and one reload should see them all.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Where the rules come from and what they are checked against.
#[derive(Debug, Clone, Default)]
pub struct RuleSource {
    /// Rule files and directories.
    pub paths: Vec<PathBuf>,
    /// Notifier names and vars of the config.
    pub env: CompileEnv,
}

impl RuleSource {
    /// `rules.paths`, notifiers and vars of a loaded config.
    pub fn from_settings(settings: &Settings) -> RuleSource {
        RuleSource {
            paths: settings.rules.paths.clone(),
            env: CompileEnv::from_settings(settings),
        }
    }
}

/// What `/status` shows of the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RulesStatus {
    /// Hash of the set in force.
    pub hash: String,
    /// Rules in force.
    pub rules: usize,
    /// Files they came from.
    pub files: usize,
    /// When the set in force was loaded.
    pub loaded_at: DateTime<Utc>,
    /// Why the last reload was refused, while no later reload succeeded.
    pub last_error: Option<String>,
    /// When that reload was refused.
    pub last_error_at: Option<DateTime<Utc>>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq)]
pub enum ReloadOutcome {
    /// A new set is in force.
    Swapped { hash: String, rules: usize },
    /// The files compile to the set already in force.
    Unchanged,
    /// The files have errors; the previous set stays in force.
    Rejected(Vec<Diagnostic>),
}

impl ReloadOutcome {
    fn label(&self) -> &'static str {
        match self {
            ReloadOutcome::Swapped { .. } => "ok",
            ReloadOutcome::Unchanged => "unchanged",
            ReloadOutcome::Rejected(_) => "error",
        }
    }
}

/// The rule set in force, shared with the engine and the scheduler, and its reload state.
pub struct Rules {
    source: RuleSource,
    current: Arc<ArcSwap<RuleSet>>,
    status: Mutex<RulesStatus>,
    /// Bumped after every reload attempt, for whoever waits on one.
    reloads: watch::Sender<u64>,
}

impl Rules {
    /// Loads the rules for the first time; errors are returned (there is no older set to keep).
    pub fn load(source: RuleSource) -> Result<Rules, Vec<Diagnostic>> {
        let compiled = compile_paths(&source.paths, &source.env);
        for warning in compiled.warnings() {
            tracing::warn!("{warning}");
        }
        let set = compiled.into_result()?;
        Ok(Rules::with_set(source, set))
    }

    /// Starts from an already compiled set.
    pub fn with_set(source: RuleSource, set: RuleSet) -> Rules {
        let status = RulesStatus {
            hash: set.hash().to_owned(),
            rules: set.len(),
            files: set.files().len(),
            loaded_at: Utc::now(),
            last_error: None,
            last_error_at: None,
        };
        metrics::gauge!("sentinel_rules").set(set.len() as f64);
        Rules {
            source,
            current: Arc::new(ArcSwap::from_pointee(set)),
            status: Mutex::new(status),
            reloads: watch::channel(0).0,
        }
    }

    /// The handle the engine and the scheduler read the set in force through.
    pub fn shared(&self) -> Arc<ArcSwap<RuleSet>> {
        self.current.clone()
    }

    /// The set in force.
    pub fn current(&self) -> Arc<RuleSet> {
        self.current.load_full()
    }

    /// Where the rules are read from.
    pub fn source(&self) -> &RuleSource {
        &self.source
    }

    /// Hash, counts and the last reload error, for `/status`.
    pub fn status(&self) -> RulesStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Counts reload attempts; changes after each one.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.reloads.subscribe()
    }

    /// Compiles the files again and swaps the new set in if it compiles.
    pub fn reload(&self) -> ReloadOutcome {
        let compiled = compile_paths(&self.source.paths, &self.source.env);
        let outcome = match compiled.into_result() {
            Err(errors) => ReloadOutcome::Rejected(errors),
            Ok(set) if set.hash() == self.current.load().hash() => ReloadOutcome::Unchanged,
            Ok(set) => {
                let swapped = ReloadOutcome::Swapped {
                    hash: set.hash().to_owned(),
                    rules: set.len(),
                };
                self.current.store(Arc::new(set));
                swapped
            }
        };
        self.record(&outcome);
        outcome
    }

    fn record(&self, outcome: &ReloadOutcome) {
        metrics::counter!("sentinel_rule_reloads_total", "outcome" => outcome.label()).increment(1);
        let now = Utc::now();
        {
            let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
            match outcome {
                ReloadOutcome::Swapped { hash, rules } => {
                    let set = self.current.load();
                    tracing::info!(%hash, rules, "Rules reloaded");
                    metrics::gauge!("sentinel_rules").set(*rules as f64);
                    *status = RulesStatus {
                        hash: hash.clone(),
                        rules: *rules,
                        files: set.files().len(),
                        loaded_at: now,
                        last_error: None,
                        last_error_at: None,
                    };
                }
                ReloadOutcome::Unchanged => {
                    tracing::debug!("Rules unchanged");
                    status.last_error = None;
                    status.last_error_at = None;
                }
                ReloadOutcome::Rejected(errors) => {
                    for error in errors {
                        tracing::warn!("{error}");
                    }
                    tracing::error!(errors = errors.len(), hash = %status.hash, "Rule files have errors; the previous rules stay in force");
                    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
                    status.last_error = Some(lines.join("\n"));
                    status.last_error_at = Some(now);
                }
            }
        }
        self.reloads.send_modify(|n| *n += 1);
    }
}

/// Reloads on SIGHUP and on changes under the rule paths until cancelled.
pub async fn run_reload(rules: Arc<Rules>, cancel: CancellationToken) -> anyhow::Result<()> {
    let (wake, mut woken) = mpsc::channel::<()>(1);
    let watch_rules = rules.clone();
    let watcher =
        tokio::task::spawn_blocking(move || arm(&watch_rules.source.paths, wake)).await??;
    let mut watcher = watcher;
    let mut hangup = hangups()?;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading rules");
            }
            Some(()) = woken.recv() => {
                // Let the burst of changes settle, then reload once.
                tokio::time::sleep(DEBOUNCE).await;
                while woken.try_recv().is_ok() {}
                rearm(&mut watcher, &rules.source.paths);
            }
        }
        let rules = rules.clone();
        tokio::task::spawn_blocking(move || rules.reload()).await?;
    }
}

/// The directories to watch for `paths`: each directory itself (recursively), and the
/// directory holding each path (so a replaced file or directory is seen).
fn watch_list(paths: &[PathBuf]) -> Vec<(PathBuf, RecursiveMode)> {
    let mut list = Vec::new();
    for path in paths {
        if path.is_dir() {
            list.push((path.clone(), RecursiveMode::Recursive));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            list.push((parent.to_path_buf(), RecursiveMode::NonRecursive));
        }
    }
    list
}

fn relevant(event_paths: &[PathBuf], paths: &[PathBuf]) -> bool {
    event_paths.iter().any(|p| {
        paths
            .iter()
            .any(|root| p.starts_with(root) || root.starts_with(p))
    })
}

fn arm(paths: &[PathBuf], wake: mpsc::Sender<()>) -> anyhow::Result<RecommendedWatcher> {
    let roots: Vec<PathBuf> = paths.iter().map(|p| absolute(p)).collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let wanted = match &event {
            Ok(event) => !event.kind.is_access() && relevant(&event.paths, &roots),
            Err(_) => true,
        };
        if wanted {
            // A full channel already holds a wake-up: nothing is lost.
            let _ = wake.try_send(());
        }
    })?;
    for (dir, mode) in watch_list(paths) {
        if let Err(error) = watcher.watch(&dir, mode) {
            tracing::warn!(dir = %dir.display(), %error, "Cannot watch rule directory; SIGHUP still reloads");
        }
    }
    Ok(watcher)
}

/// Watches again, so a directory that was replaced is followed under its new identity.
fn rearm(watcher: &mut RecommendedWatcher, paths: &[PathBuf]) {
    for (dir, mode) in watch_list(paths) {
        let _ = watcher.unwatch(&dir);
        if let Err(error) = watcher.watch(&dir, mode) {
            tracing::debug!(dir = %dir.display(), %error, "Rule directory not watchable now");
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(unix)]
fn hangups() -> std::io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
}

#[cfg(not(unix))]
fn hangups() -> std::io::Result<NoSignal> {
    Ok(NoSignal)
}

/// Where there is no SIGHUP, only the file watch reloads.
#[cfg(not(unix))]
struct NoSignal;

#[cfg(not(unix))]
impl NoSignal {
    async fn recv(&mut self) -> Option<()> {
        std::future::pending().await
    }
}

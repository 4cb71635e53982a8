//! `codegen-sentinel rules test|replay|schema`: run the tests beside rules, re-evaluate stored
//! history with candidate rules, and print the JSON Schema of rule files.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use chrono::Utc;
use clap::{Args, Subcommand};

use super::target::Target;
use super::{config_source, Failure};
use crate::engine::replay::Difference;
use crate::rules::testing::run_tests;
use crate::rules::{compile_paths, CompileEnv, Compiled};
use crate::yaml::DurationStr;

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub what: RulesCmd,
}

#[derive(Debug, Subcommand)]
pub enum RulesCmd {
    /// Run the tests written under `tests:` in rule files.
    Test {
        /// Rule files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Config file whose notifiers and vars the rules are checked against.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Re-evaluate stored events with candidate rules; print what would fire differently
    /// (through the running daemon, or the store when it is stopped).
    Replay {
        /// Config file [default: $SENTINEL_CONFIG, then ./sentinel.yaml].
        #[arg(long)]
        config: Option<PathBuf>,
        /// How far back, e.g. 7d or 12h.
        #[arg(long)]
        since: String,
        /// Candidate rule files or directories [default: the config's rules.paths].
        #[arg(long)]
        rules: Vec<PathBuf>,
        /// One JSON object per difference.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of rule files (for editors' YAML language servers).
    Schema,
}

pub async fn run(args: RulesArgs) -> Result<(), Failure> {
    match args.what {
        RulesCmd::Test { paths, config } => test(paths, config),
        RulesCmd::Replay {
            config,
            since,
            rules,
            json,
        } => run_replay(config, &since, rules, json).await,
        RulesCmd::Schema => {
            let schema = crate::rules::schema::rule_file_schema();
            let text = serde_json::to_string_pretty(&schema).context("encoding the schema")?;
            println!("{text}");
            Ok(())
        }
    }
}

/// Compiles rules for a command; errors end it with exit 2.
fn compile_or_fail(paths: &[PathBuf], env: &CompileEnv) -> Result<Compiled, Failure> {
    let compiled = compile_paths(paths, env);
    for warning in compiled.warnings() {
        eprintln!("warning: {warning}");
    }
    if compiled.has_errors() {
        return Err(Failure::Usage(compiled.errors_text()));
    }
    Ok(compiled)
}

fn test(paths: Vec<PathBuf>, config: Option<PathBuf>) -> Result<(), Failure> {
    let settings = match config {
        Some(path) => Some(config_source::required(Some(&path))?),
        None => None,
    };
    let env = settings
        .as_ref()
        .map(CompileEnv::from_settings)
        .unwrap_or_default();
    let compiled = compile_or_fail(&paths, &env)?;
    let Some(set) = compiled.set.as_ref() else {
        return Err(Failure::Usage("no rule set".into()));
    };
    let results = run_tests(set, &compiled.tests, settings.as_ref().map(|s| &s.vars));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failed = 0;
    for result in &results {
        let place = format!("{}:{}", result.file.display(), result.location);
        if result.passed() {
            let _ = writeln!(out, "ok    {place}: {}", result.name);
        } else {
            failed += 1;
            let _ = writeln!(out, "FAIL  {place}: {}", result.name);
            for failure in &result.failures {
                let _ = writeln!(out, "        {failure}");
            }
        }
    }
    let _ = writeln!(out, "{} passed, {failed} failed", results.len() - failed);
    if failed > 0 {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "{failed} rule test(s) failed"
        )));
    }
    Ok(())
}

async fn run_replay(
    config: Option<PathBuf>,
    since: &str,
    rules: Vec<PathBuf>,
    json: bool,
) -> Result<(), Failure> {
    let since: DurationStr = serde_yaml::from_str(&format!("{since:?}"))
        .map_err(|e| Failure::Usage(format!("--since: {e}")))?;
    let settings = config_source::required(config.as_deref())?;
    let paths = if rules.is_empty() {
        settings.rules.paths.clone()
    } else {
        rules
    };
    let compiled = compile_or_fail(&paths, &CompileEnv::from_settings(&settings))?;
    let Some(set) = compiled.set else {
        return Err(Failure::Usage("no rule set".into()));
    };
    let from =
        Utc::now() - chrono::Duration::from_std(since.get()).unwrap_or(chrono::Duration::MAX);
    let replayed = Target::open(&settings)?
        .replay(&set, &paths, &settings.vars, from)
        .await?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for difference in &replayed.differences {
        let line = if json {
            serde_json::to_string(difference).unwrap_or_default()
        } else {
            describe(difference)
        };
        let _ = writeln!(out, "{line}");
    }
    let gained = replayed
        .differences
        .iter()
        .filter(|d| d.newly_fires())
        .count();
    let lost = replayed.differences.len() - gained;
    eprintln!(
        "replayed {} event(s) since {} with rules {}: {gained} would fire that did not, {lost} fired that would not",
        replayed.events,
        crate::rules::eval::rfc3339(from),
        set.hash()
    );
    Ok(())
}

fn describe(d: &Difference) -> String {
    let outcome = |o: &Option<(String, Option<String>)>| match o {
        Some((outcome, Some(reason))) => format!("{outcome} ({reason})"),
        Some((outcome, None)) => outcome.clone(),
        None => "not offered".to_owned(),
    };
    let sign = if d.newly_fires() { '+' } else { '-' };
    format!(
        "{sign} {} {} {} {}: was {}; now {}",
        crate::rules::eval::rfc3339(d.at),
        d.event_type,
        d.event_id,
        d.rule,
        outcome(&d.recorded),
        outcome(&d.candidate)
    )
}

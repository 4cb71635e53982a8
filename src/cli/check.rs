//! `codegen-sentinel check`: validate the config and rule files; every problem is printed as
//! `file:line:col: rule › field: message`. Exit 0 when valid, 2 when not.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::{config_source, Failure};
use crate::rules::{compile_paths, CompileEnv};
use crate::yaml::Diagnostic;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Config file: it is checked, and its `rules.paths` too unless PATHs are given.
    /// [default without PATHs: $SENTINEL_CONFIG, then ./sentinel.yaml]
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Rule files or directories to check.
    pub paths: Vec<PathBuf>,
    /// Fail (exit 2) on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
}

pub fn run(args: CheckArgs) -> Result<(), Failure> {
    // Without PATHs the config is what is checked, so it must exist; with PATHs, only if named.
    let settings = if args.paths.is_empty() || args.config.is_some() {
        Some(config_source::required(args.config.as_deref())?)
    } else {
        None
    };
    let (paths, env) = match &settings {
        Some(settings) if args.paths.is_empty() => (
            settings.rules.paths.clone(),
            CompileEnv::from_settings(settings),
        ),
        Some(settings) => (args.paths.clone(), CompileEnv::from_settings(settings)),
        None => {
            eprintln!("warning: no config given: notifier names (`to:`) and `vars.*` are not checked (pass --config)");
            (args.paths.clone(), CompileEnv::default())
        }
    };
    let compiled = compile_paths(&paths, &env);
    let mut warnings: Vec<&Diagnostic> = settings.iter().flat_map(|s| s.warnings.iter()).collect();
    warnings.extend(compiled.warnings());
    let errors: Vec<&Diagnostic> = compiled.errors().collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for error in &errors {
        let _ = writeln!(out, "{error}");
    }
    for warning in &warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    let _ = out.flush();
    if !errors.is_empty() || (args.deny_warnings && !warnings.is_empty()) {
        return Err(Failure::Usage(format!(
            "{} error(s), {} warning(s){}",
            errors.len(),
            warnings.len(),
            if errors.is_empty() {
                " (--deny-warnings)"
            } else {
                ""
            }
        )));
    }
    let (rules, hash) = compiled
        .set
        .as_ref()
        .map_or((0, String::new()), |s| (s.len(), s.hash().to_owned()));
    eprintln!(
        "ok: {rules} rule(s) in {} file(s), rules hash {hash}{}",
        compiled.files.len(),
        if warnings.is_empty() {
            String::new()
        } else {
            format!(", {} warning(s)", warnings.len())
        }
    );
    Ok(())
}

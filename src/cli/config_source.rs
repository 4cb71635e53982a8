//! Loading `sentinel.yaml` for commands: `--config`, else `$SENTINEL_CONFIG`, else
//! `./sentinel.yaml`.

use std::path::{Path, PathBuf};

use secrecy::SecretString;

use super::Failure;
use crate::config::{default_config_path, load_settings, Settings};
use crate::yaml::Diagnostic;

/// Every diagnostic on its own line, as a usage failure (exit 2).
pub fn diagnostics_failure(diagnostics: &[Diagnostic]) -> Failure {
    let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    Failure::Usage(lines.join("\n"))
}

/// Loads the config a daemon command needs: the explicit path or the default one must exist.
pub fn required(explicit: Option<&Path>) -> Result<Settings, Failure> {
    let path = explicit.map_or_else(default_config_path, Path::to_path_buf);
    load_settings(&path).map_err(|d| diagnostics_failure(&d))
}

/// Loads the config when one is named or the default file exists; `None` otherwise.
pub fn optional(explicit: Option<&Path>) -> Result<Option<Settings>, Failure> {
    let path: PathBuf = match explicit {
        Some(path) => path.to_path_buf(),
        None => {
            let path = default_config_path();
            if !path.exists() {
                return Ok(None);
            }
            path
        }
    };
    load_settings(&path)
        .map(Some)
        .map_err(|d| diagnostics_failure(&d))
}

/// The Codegen connection as a config file names it.
pub struct CodegenSource {
    pub base_url: String,
    settings: Settings,
}

impl CodegenSource {
    /// Resolves the token the config names (environment, file or credential).
    pub fn token(self) -> Result<SecretString, Failure> {
        self.settings
            .resolve_codegen_token()
            .map_err(|d| diagnostics_failure(&d))
    }
}

/// Reads the `codegen` section of the config file, when one is given or found.
pub fn codegen_from_config(explicit: Option<&Path>) -> Result<Option<CodegenSource>, Failure> {
    Ok(optional(explicit)?.map(|settings| CodegenSource {
        base_url: settings.codegen_base_url().to_owned(),
        settings,
    }))
}

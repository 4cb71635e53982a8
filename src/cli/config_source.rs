//! Where CLI commands that only need the Codegen connection find it in a config file.

use std::path::Path;

use secrecy::SecretString;

use super::Failure;

/// The Codegen connection as a config file names it.
pub struct CodegenSource {
    pub base_url: String,
    token: SecretString,
}

impl CodegenSource {
    /// The resolved token.
    pub fn token(self) -> Result<SecretString, Failure> {
        Ok(self.token)
    }
}

/// Reads the `codegen` section of the config file, when one is given or found.
pub fn codegen_from_config(_explicit: Option<&Path>) -> Result<Option<CodegenSource>, Failure> {
    Ok(None)
}

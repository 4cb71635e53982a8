//! Secret resolution from the environment, files and `$CREDENTIALS_DIRECTORY`, and proof that
//! a secret value never shows in `Debug` output or in an error message.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;

use codegen_sentinel::config::{parse_settings, GithubCredentials, Settings};
use codegen_sentinel::secret::{SecretSource, CREDENTIALS_DIRECTORY};
use secrecy::ExposeSecret;

/// A fake environment.
struct Env(HashMap<String, String>);

impl SecretSource for Env {
    fn var(&self, name: &str) -> Option<OsString> {
        self.0.get(name).map(OsString::from)
    }
}

fn env(pairs: &[(&str, &str)]) -> Env {
    Env(pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect())
}

fn settings(dir: &Path, text: &str) -> Settings {
    parse_settings(&dir.join("sentinel.yaml"), text).unwrap()
}

const ALL_SOURCES: &str = "\
codegen:
  token_env: CODEGEN_API_TOKEN
  org_ids: [7]
github:
  app_id: 99
  private_key: github-app-key
  webhook_secrets_file: secrets/webhook
notifiers:
  ops:
    type: slack
    url_env: SLACK_URL
  audit:
    type: webhook
    url: https://hooks.example.com/sentinel
    secret_file: secrets/audit
";

#[test]
fn secrets_resolve_from_env_files_and_the_credentials_directory() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds");
    std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(
        dir.path().join("secrets/webhook"),
        "old-secret, new-secret\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("secrets/audit"), "audit-key\n").unwrap();
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n";
    std::fs::write(creds.join("github-app-key"), pem).unwrap();
    let source = env(&[
        ("CODEGEN_API_TOKEN", "cg-token"),
        ("SLACK_URL", "https://hooks.slack.com/services/T/B/X"),
        (CREDENTIALS_DIRECTORY, creds.to_str().unwrap()),
    ]);

    let secrets = settings(dir.path(), ALL_SOURCES)
        .resolve_secrets_with(&source)
        .unwrap();

    assert_eq!(secrets.codegen_token.expose_secret(), "cg-token");
    let github = secrets.github.as_ref().unwrap();
    match &github.auth {
        Some(GithubCredentials::App {
            app_id,
            private_key,
        }) => {
            assert_eq!(*app_id, 99);
            assert_eq!(private_key.expose_secret(), pem.trim_end());
        }
        other => panic!("expected App credentials, got {other:?}"),
    }
    let webhook: Vec<&str> = github
        .webhook_secrets
        .iter()
        .map(|s| s.expose_secret())
        .collect();
    assert_eq!(webhook, ["old-secret", "new-secret"]);
    assert_eq!(
        secrets.notifiers["ops"].url.expose_secret(),
        "https://hooks.slack.com/services/T/B/X"
    );
    assert!(secrets.notifiers["ops"].secret.is_none());
    let audit = &secrets.notifiers["audit"];
    assert_eq!(
        audit.url.expose_secret(),
        "https://hooks.example.com/sentinel"
    );
    assert_eq!(audit.secret.as_ref().unwrap().expose_secret(), "audit-key");
}

#[test]
fn every_unresolvable_secret_is_reported_at_its_reference() {
    let dir = tempfile::tempdir().unwrap();
    let errors = settings(dir.path(), ALL_SOURCES)
        .resolve_secrets_with(&env(&[]))
        .unwrap_err();
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let file = dir.path().join("sentinel.yaml");
    let secrets = dir.path().join("secrets");
    let f = file.display();
    assert_eq!(
        messages,
        [
            format!("{f}:2:14: codegen.token_env: environment variable CODEGEN_API_TOKEN is not set"),
            format!(
                "{f}:6:16: github.private_key: credential github-app-key cannot be found: \
                 $CREDENTIALS_DIRECTORY is not set (add LoadCredential=github-app-key:... to the unit, \
                 or use an _env or _file reference)"
            ),
            format!(
                "{f}:7:25: github.webhook_secrets_file: cannot read {}: No such file or directory (os error 2)",
                secrets.join("webhook").display()
            ),
            format!("{f}:11:14: notifiers.ops.url_env: environment variable SLACK_URL is not set"),
            format!(
                "{f}:15:18: notifiers.audit.secret_file: cannot read {}: No such file or directory (os error 2)",
                secrets.join("audit").display()
            ),
        ]
    );
}

#[test]
fn the_process_environment_is_read_by_resolve_secrets() {
    // A name no other test uses: the process environment is shared by the test threads.
    let text = "codegen:\n  token_env: SENTINEL_CONFIG_SECRETS_TEST_TOKEN\n  org_ids: [7]\n";
    let settings = parse_settings(Path::new("sentinel.yaml"), text).unwrap();
    let err = settings.resolve_codegen_token().unwrap_err();
    assert_eq!(
        err[0].to_string(),
        "sentinel.yaml:2:14: codegen.token_env: environment variable \
         SENTINEL_CONFIG_SECRETS_TEST_TOKEN is not set"
    );
    std::env::set_var("SENTINEL_CONFIG_SECRETS_TEST_TOKEN", "from-process-env");
    let secrets = settings.resolve_secrets().unwrap();
    assert_eq!(secrets.codegen_token.expose_secret(), "from-process-env");
}

const CANARY: &str = "canary-5e1f0c2b";

#[test]
fn a_canary_secret_never_appears_in_debug_output_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
    std::fs::write(
        dir.path().join("secrets/webhook"),
        format!("{CANARY}-a,{CANARY}-b"),
    )
    .unwrap();
    std::fs::write(dir.path().join("secrets/audit"), CANARY).unwrap();
    let creds = dir.path().join("creds");
    std::fs::create_dir_all(&creds).unwrap();
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{CANARY}\n-----END PRIVATE KEY-----\n");
    std::fs::write(creds.join("github-app-key"), pem).unwrap();
    let good = env(&[
        ("CODEGEN_API_TOKEN", CANARY),
        (
            "SLACK_URL",
            &format!("https://hooks.slack.com/services/{CANARY}"),
        ),
        (CREDENTIALS_DIRECTORY, creds.to_str().unwrap()),
    ]);
    let settings = settings(dir.path(), ALL_SOURCES);
    let secrets = settings.resolve_secrets_with(&good).unwrap();
    let debug = format!("{secrets:?} {secrets:#?} {settings:?}");
    assert!(!debug.contains(CANARY), "{debug}");
    assert!(debug.contains("[redacted]"), "{debug}");

    // Values that are read but unusable: the errors must name the reference, not the value.
    std::fs::write(creds.join("github-app-key"), CANARY).unwrap();
    std::fs::write(dir.path().join("secrets/webhook"), format!("{CANARY},,")).unwrap();
    let bad = env(&[
        ("CODEGEN_API_TOKEN", CANARY),
        ("SLACK_URL", &format!("{CANARY} is not a url")),
        (CREDENTIALS_DIRECTORY, creds.to_str().unwrap()),
    ]);
    let errors = settings.resolve_secrets_with(&bad).unwrap_err();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    let shown = format!(
        "{errors:?} {}",
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(!shown.contains(CANARY), "{shown}");
    assert!(
        shown.contains("credential github-app-key: does not hold a PEM private key"),
        "{shown}"
    );
    assert!(
        shown.contains("environment variable SLACK_URL: does not hold an http or https URL"),
        "{shown}"
    );
    assert!(
        shown.contains("the comma-separated list has an empty entry"),
        "{shown}"
    );
}

#[test]
fn a_secret_pasted_where_a_variable_name_belongs_is_not_echoed() {
    let text = format!("codegen:\n  token_env: ghp-{CANARY}\n  org_ids: [7]\n");
    let errors = parse_settings(Path::new("sentinel.yaml"), &text).unwrap_err();
    let shown = format!("{errors:?} {}", errors[0]);
    assert!(!shown.contains(CANARY), "{shown}");
    assert!(shown.contains("codegen.token_env: not a valid environment variable name"));
}

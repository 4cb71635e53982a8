//! Valid configurations load with the values they say, defaults filled in, paths resolved.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use codegen_sentinel::config::{
    load_settings, parse_settings, GithubAuth, NotifierKind, NotifierUrl, Settings,
    DEFAULT_BACKOFF_CAP, DEFAULT_CACHE_SIZE, DEFAULT_CONCURRENCY, DEFAULT_DEEP_RESYNC,
    DEFAULT_MAX_BODY, DEFAULT_RETENTION,
};
use codegen_sentinel::secret::SecretRef;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn load(path: &Path) -> Settings {
    match load_settings(path) {
        Ok(settings) => settings,
        Err(errors) => panic!("{} failed to load:\n{errors:#?}", path.display()),
    }
}

#[test]
fn design_example_loads_as_written() {
    let file = fixture("tests/fixtures/config/design-example.yaml");
    let settings = load(&file);

    let codegen = &settings.codegen;
    assert_eq!(settings.codegen_base_url(), "https://api.codegen.com");
    assert_eq!(
        codegen.token.reference,
        SecretRef::Env("CODEGEN_API_TOKEN".into())
    );
    assert_eq!(codegen.token.path, "codegen.token_env");
    assert_eq!(
        (codegen.token.location.line, codegen.token.location.col),
        (3, 14)
    );
    assert_eq!(settings.org_ids(), [7]);
    assert_eq!(codegen.poll_interval, Duration::from_secs(15));
    assert_eq!(codegen.stall_after, Duration::from_secs(30 * 60));
    assert_eq!(codegen.deep_resync, DEFAULT_DEEP_RESYNC);

    assert_eq!(
        settings.store.path,
        PathBuf::from("/var/lib/codegen-sentinel")
    );
    assert_eq!(settings.store.cache_size, DEFAULT_CACHE_SIZE);
    assert_eq!(settings.store.retention, DEFAULT_RETENTION);
    assert_eq!(
        settings.rules.paths,
        [PathBuf::from("/etc/codegen-sentinel/rules")]
    );
    assert_eq!(
        settings.server.listen,
        "127.0.0.1:8787".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(settings.server.max_body, DEFAULT_MAX_BODY);

    let github = settings.github.as_ref().expect("github section");
    assert_eq!(github.base_url, "https://api.github.com");
    match &github.auth {
        Some(GithubAuth::Token(token)) => {
            assert_eq!(token.reference, SecretRef::Env("GITHUB_TOKEN".into()));
        }
        other => panic!("expected a token, got {other:?}"),
    }
    let webhook = github.webhook_secrets.as_ref().expect("webhook secrets");
    assert_eq!(
        webhook.reference,
        SecretRef::Env("GITHUB_WEBHOOK_SECRET".into())
    );

    let ops = settings.notifier("ops").expect("ops notifier");
    assert_eq!(ops.kind, NotifierKind::Slack);
    assert!(
        matches!(&ops.url, NotifierUrl::Secret(s) if s.reference == SecretRef::Env("SLACK_OPS_WEBHOOK_URL".into()))
    );
    assert!(ops.secret.is_none());
    let audit = settings.notifier("audit").expect("audit notifier");
    assert_eq!(audit.kind, NotifierKind::Webhook);
    assert!(
        matches!(&audit.url, NotifierUrl::Literal(u) if u == "https://hooks.example.com/sentinel")
    );
    assert_eq!(
        audit.secret.as_ref().map(|s| &s.reference),
        Some(&SecretRef::Env("AUDIT_HOOK_SECRET".into()))
    );

    assert_eq!(settings.vars["default_sandbox_id"], serde_json::json!(42));
    assert_eq!(settings.executor.concurrency, DEFAULT_CONCURRENCY);
    assert_eq!(settings.executor.backoff_cap, DEFAULT_BACKOFF_CAP);
    assert!(settings.warnings.is_empty(), "{:?}", settings.warnings);
}

#[test]
fn deploy_example_loads_with_every_section() {
    let settings = load(&fixture("deploy/sentinel.example.yaml"));
    assert_eq!(
        settings.codegen.token.reference,
        SecretRef::Credential("codegen-token".into())
    );
    let github = settings.github.as_ref().expect("github section");
    assert!(matches!(
        github.auth,
        Some(GithubAuth::App { app_id: 123456, .. })
    ));
    assert_eq!(settings.notifiers.len(), 2);
    assert_eq!(settings.notifiers["audit"].timeout, Duration::from_secs(5));
    assert_eq!(settings.vars["oncall_channel"], serde_json::json!("#ops"));
    assert_eq!(settings.executor.shutdown_grace, Duration::from_secs(10));
    assert!(settings.warnings.is_empty(), "{:?}", settings.warnings);
}

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let text = "codegen:\n  token: codegen-token\n  org_ids: [7, 9]\n";
    let settings = parse_settings(Path::new("/etc/cs/sentinel.yaml"), text).unwrap();
    assert_eq!(settings.codegen_base_url(), "https://api.codegen.com");
    assert_eq!(settings.org_ids(), [7, 9]);
    assert_eq!(settings.codegen.poll_interval, Duration::from_secs(15));
    assert_eq!(settings.codegen.request_timeout, Duration::from_secs(30));
    assert_eq!(settings.store.flush_every, Duration::from_millis(500));
    assert_eq!(
        settings.server.listen,
        "127.0.0.1:8787".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(settings.server.max_body, 25 << 20);
    assert!(settings.github.is_none());
    assert!(settings.notifiers.is_empty());
    assert!(settings.rules.paths.is_empty());
    assert_eq!(settings.executor.max_attempts, 5);
    assert_eq!(settings.executor.backoff_base, Duration::from_secs(1));
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let text = "\
codegen:
  token_file: secrets/codegen
  org_ids: [7]
store:
  path: state
rules:
  paths: [rules, /abs/rules]
";
    let settings = parse_settings(Path::new("/etc/cs/sentinel.yaml"), text).unwrap();
    assert_eq!(
        settings.codegen.token.reference,
        SecretRef::File(PathBuf::from("/etc/cs/secrets/codegen"))
    );
    assert_eq!(settings.store.path, PathBuf::from("/etc/cs/state"));
    assert_eq!(
        settings.rules.paths,
        [PathBuf::from("/etc/cs/rules"), PathBuf::from("/abs/rules")]
    );
}

#[test]
fn units_and_trailing_slashes_are_normalised() {
    let text = "\
codegen:
  base_url: http://127.0.0.1:9000/
  token_env: T
  org_ids: [7]
  poll_interval: 1m 30s
  stall_after: 2h
store:
  cache_size: 64MiB
server:
  listen: '[::1]:9999'
  max_body: 1048576
";
    let settings = parse_settings(Path::new("sentinel.yaml"), text).unwrap();
    assert_eq!(settings.codegen_base_url(), "http://127.0.0.1:9000");
    assert_eq!(settings.codegen.poll_interval, Duration::from_secs(90));
    assert_eq!(settings.codegen.stall_after, Duration::from_secs(7200));
    assert_eq!(settings.store.cache_size, 64 << 20);
    assert_eq!(
        settings.server.listen,
        "[::1]:9999".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(settings.server.max_body, 1 << 20);
}

#[test]
fn github_without_webhook_secrets_loads_with_a_warning() {
    let text = "codegen:\n  token_env: T\n  org_ids: [7]\ngithub:\n  token_env: GITHUB_TOKEN\n";
    let settings = parse_settings(Path::new("sentinel.yaml"), text).unwrap();
    let warnings: Vec<String> = settings.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "sentinel.yaml:4:1: github: no webhook secrets: every delivery to /webhooks/github \
          will be refused with 401 (hint: set webhook_secrets_env or webhook_secrets_file)"
        ]
    );
}

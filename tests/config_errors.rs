//! Broken configurations: each yields exactly the expected `file:line:col: path: message` lines.

use std::path::Path;

use codegen_sentinel::config::{load_settings, parse_settings};

/// The diagnostics for `text`, as `check` prints them.
fn errors(text: &str) -> Vec<String> {
    match parse_settings(Path::new("sentinel.yaml"), text) {
        Ok(settings) => panic!("expected errors, got {settings:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn unknown_key_at_depth_is_located_at_the_key_with_a_suggestion() {
    let text = "\
codegen:
  token_env: CODEGEN_API_TOKEN
  org_ids: [7]
notifiers:
  ops:
    type: slack
    url_evn: SLACK_URL
";
    assert_eq!(
        errors(text),
        [
            "sentinel.yaml:5:3: notifiers.ops: missing `url` (hint: set url, url_env or url_file)",
            "sentinel.yaml:7:5: notifiers.ops.url_evn: unknown field `url_evn` (hint: did you mean `url_env`?)",
        ]
    );
}

#[test]
fn unknown_key_without_a_close_match_lists_the_expected_keys() {
    let text = "codegen:\n  token_env: T\n  org_ids: [7]\nserver:\n  port: 8787\n";
    assert_eq!(
        errors(text),
        ["sentinel.yaml:5:3: server.port: unknown field `port` (hint: expected `listen` or `max_body`)"]
    );
}

#[test]
fn unknown_top_level_section() {
    let text = "codegen:\n  token_env: T\n  org_ids: [7]\nrule:\n  paths: [x]\n";
    assert_eq!(
        errors(text),
        ["sentinel.yaml:4:1: rule: unknown field `rule` (hint: did you mean `rules`?)"]
    );
}

#[test]
fn wrong_type_is_located_at_the_value() {
    let text = "codegen:\n  token_env: T\n  org_ids: 7\n";
    assert_eq!(
        errors(text),
        ["sentinel.yaml:3:12: codegen.org_ids: invalid type: integer `7`, expected a sequence"]
    );
}

#[test]
fn bare_number_duration_asks_for_a_unit() {
    let text = "codegen:\n  token_env: T\n  org_ids: [7]\n  poll_interval: 15\n";
    assert_eq!(
        errors(text),
        ["sentinel.yaml:4:18: codegen.poll_interval: invalid duration \"15\": a number needs a unit (hint: add a unit, e.g. 15s)"]
    );
}

#[test]
fn unparseable_duration_quotes_humantime() {
    let text = "codegen:\n  token_env: T\n  org_ids: [7]\n  stall_after: 30 minuts\n";
    assert_eq!(
        errors(text),
        ["sentinel.yaml:4:16: codegen.stall_after: invalid duration \"30 minuts\": unknown time unit \"minuts\", \
          supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations) \
          (hint: write e.g. 500ms, 15s, 30m, 1h 30m or 7d)"]
    );
}

#[test]
fn bad_listen_address() {
    let text = "codegen:\n  token_env: T\n  org_ids: [7]\nserver:\n  listen: localhost:8787\n";
    assert_eq!(
        errors(text),
        ["sentinel.yaml:5:11: server.listen: invalid listen address \"localhost:8787\": invalid socket address syntax \
          (hint: write IP:PORT, e.g. 127.0.0.1:8787 or [::1]:8787)"]
    );
}

#[test]
fn empty_and_non_positive_org_ids() {
    assert_eq!(
        errors("codegen:\n  token_env: T\n  org_ids: []\n"),
        ["sentinel.yaml:3:12: codegen.org_ids: must list at least one organization (hint: e.g. org_ids: [7])"]
    );
    assert_eq!(
        errors("codegen:\n  token_env: T\n  org_ids: [7, 0, 7]\n"),
        [
            "sentinel.yaml:3:16: codegen.org_ids[1]: 0 is not a positive organization id",
            "sentinel.yaml:3:19: codegen.org_ids[2]: organization 7 is listed twice",
        ]
    );
}

#[test]
fn github_token_and_app_id_are_mutually_exclusive() {
    let text = "\
codegen:
  token_env: T
  org_ids: [7]
github:
  token_env: GITHUB_TOKEN
  app_id: 123456
  private_key_file: /etc/codegen-sentinel/github-app.pem
  webhook_secrets_env: GITHUB_WEBHOOK_SECRET
";
    assert_eq!(
        errors(text),
        [
            "sentinel.yaml:6:3: github.app_id: cannot be combined with token_env \
          (hint: authenticate with a token, or as a GitHub App with app_id and private_key_file)"
        ]
    );
}

#[test]
fn notifier_of_unknown_type() {
    let text = "codegen:\n  token_env: T\n  org_ids: [7]\nnotifiers:\n  ops:\n    type: teams\n    url_env: U\n";
    assert_eq!(
        errors(text),
        ["sentinel.yaml:6:11: notifiers.ops.type: unknown variant `teams`, expected `slack` or `webhook`"]
    );
}

#[test]
fn webhook_secret_on_a_slack_notifier() {
    let text = "\
codegen:
  token_env: T
  org_ids: [7]
notifiers:
  ops:
    type: slack
    url_env: SLACK_OPS_WEBHOOK_URL
    secret_env: OPS_SECRET
";
    assert_eq!(
        errors(text),
        ["sentinel.yaml:8:5: notifiers.ops.secret_env: secret_env applies only to webhook notifiers \
          (hint: Slack incoming webhooks are not signed; remove it)"]
    );
}

#[test]
fn secret_given_two_ways_and_missing_token() {
    assert_eq!(
        errors("codegen:\n  token_env: T\n  token_file: /run/t\n  org_ids: [7]\n"),
        [
            "sentinel.yaml:3:3: codegen.token_file: cannot be combined with token_env \
          (hint: set only one of token_env, token_file or token)"
        ]
    );
    assert_eq!(
        errors("codegen:\n  org_ids: [7]\n"),
        ["sentinel.yaml:1:1: codegen: missing `token` \
          (hint: set token_env, token_file, or token (a systemd credential name))"]
    );
}

#[test]
fn empty_file_needs_the_codegen_section() {
    assert_eq!(
        errors("# nothing yet\n"),
        ["sentinel.yaml:1:1: missing `codegen` section \
          (hint: at least `codegen: {token_env: CODEGEN_API_TOKEN, org_ids: [ORG_ID]}`)"]
    );
}

#[test]
fn oversized_file_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sentinel.yaml");
    let mut text = String::from("codegen:\n  token_env: T\n  org_ids: [7]\nvars:\n");
    while text.len() <= 1 << 20 {
        text.push_str("  # padding padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&file, &text).unwrap();
    let errors: Vec<String> = load_settings(&file)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        [format!(
            "{}:1:1: file is {} bytes, over the limit of 1048576 bytes",
            file.display(),
            text.len()
        )]
    );
}

#[test]
fn alias_bomb_is_refused_before_deserialization() {
    // Each level repeats the previous three times: 8 * 3^25 values from 75 alias uses.
    let mut text = String::from(
        "codegen:\n  token_env: T\n  org_ids: [7]\nvars:\n  a: &a [x, x, x, x, x, x, x, x]\n",
    );
    let mut previous = 'a';
    for name in 'b'..='z' {
        text.push_str(&format!(
            "  {name}: &{name} [*{previous}, *{previous}, *{previous}]\n"
        ));
        previous = name;
    }
    // Level l is the first to push the expanded size past a million values.
    assert_eq!(
        errors(&text),
        [
            "sentinel.yaml:16:10: vars.l: document expands to more than 1000000 values \
          (hint: aliases multiply the values they repeat; write fewer or smaller ones)"
        ]
    );
}

#[test]
fn more_than_64_alias_uses_are_refused() {
    let mut text =
        String::from("codegen:\n  token_env: T\n  org_ids: [7]\nvars:\n  base: &b x\n  list:\n");
    for _ in 0..65 {
        text.push_str("    - *b\n");
    }
    assert_eq!(
        errors(&text),
        [
            "sentinel.yaml:71:7: vars.list: too many aliases: more than 64 in one document \
          (hint: aliases are limited to stop alias bombs; write the values out)"
        ]
    );
}

#[test]
fn syntax_error_keeps_the_parser_position() {
    let text = "codegen:\n  token_env: T\n  org_ids: [7\nstore:\n  path: /x\n";
    assert_eq!(
        errors(text),
        ["sentinel.yaml:4:6: did not find expected ',' or ']', while parsing a flow sequence at line 3 column 12"]
    );
}

#[test]
fn every_error_in_a_file_is_reported_in_file_order() {
    let text = "\
codegen:
  token_env: CODEGEN_API_TOKEN
  org_ids: [7]
  poll_interval: 15
  stall_after: soon
store:
  retention: 1h
  cache_size: 32 megs
server:
  listen: 0.0.0.0
  max_body: 25MiB
notifiers:
  ops:
    type: slack
    url: not a url
executor:
  concurrency: 0
  backoff_cap: 100ms
";
    assert_eq!(
        errors(text),
        [
            "sentinel.yaml:4:18: codegen.poll_interval: invalid duration \"15\": a number needs a unit (hint: add a unit, e.g. 15s)",
            "sentinel.yaml:5:16: codegen.stall_after: invalid duration \"soon\": expected number at 0 (hint: write e.g. 500ms, 15s, 30m, 1h 30m or 7d)",
            "sentinel.yaml:7:14: store.retention: must be at least 1d (hint: explain and replay need history; webhook deliveries are kept 7d regardless)",
            "sentinel.yaml:8:15: store.cache_size: invalid size \"32 megs\": unknown unit (hint: write a number of bytes or use B, KB, KiB, MB, MiB, GB or GiB)",
            "sentinel.yaml:10:11: server.listen: invalid listen address \"0.0.0.0\": invalid socket address syntax (hint: write IP:PORT, e.g. 127.0.0.1:8787 or [::1]:8787)",
            "sentinel.yaml:15:10: notifiers.ops.url: not a valid URL: relative URL without a base",
            "sentinel.yaml:17:16: executor.concurrency: must be between 1 and 1024",
            "sentinel.yaml:18:16: executor.backoff_cap: must be at least backoff_base (1s)",
        ]
    );
}

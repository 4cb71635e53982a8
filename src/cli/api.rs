//! `codegen-sentinel api ...`: a subcommand for every operation of the Codegen spec.
//!
//! Output is JSON on stdout. API errors go to stderr with exit 1; usage and configuration mistakes
//! exit 2. The token is read from `--token-env`, the config file or `CODEGEN_API_TOKEN`, and never
//! printed.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use secrecy::SecretString;
use serde::Serialize;

use super::Failure;
use crate::api::client::DEFAULT_BASE_URL;
use crate::api::{
    collect_pages, AgentType, CheckSuiteSettingsUpdate, CodegenClient, CreateRunInput, OrgId,
    PageRequest, PrState, ResumeRunInput, RunFilter, RunId, SetupCommandsInput, SourceType,
    StopRunInput,
};

/// The environment variable read when no other token source is given.
pub const TOKEN_ENV: &str = "CODEGEN_API_TOKEN";
/// The environment variable read when no other base URL is given.
pub const BASE_URL_ENV: &str = "CODEGEN_API_BASE_URL";

#[derive(Debug, Args)]
pub struct ApiArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub resource: Resource,
}

/// Where the API is and how to authenticate.
#[derive(Debug, Args)]
pub struct Connection {
    /// API base URL [default: config, then $CODEGEN_API_BASE_URL, then https://api.codegen.com].
    #[arg(long, global = true)]
    pub base_url: Option<String>,
    /// Read the token from this environment variable [default: config, then $CODEGEN_API_TOKEN].
    #[arg(long, global = true, value_name = "VAR")]
    pub token_env: Option<String>,
    /// Config file to take the base URL and token from [default: $SENTINEL_CONFIG, then
    /// ./sentinel.yaml, when present].
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
}

/// Paging flags of list commands.
#[derive(Debug, Clone, Copy, Args)]
pub struct Paging {
    #[arg(long, default_value_t = 0)]
    pub skip: u32,
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub limit: u32,
    /// Walk every page and print all items as one JSON array.
    #[arg(long)]
    pub all: bool,
}

impl Paging {
    fn request(self) -> PageRequest {
        PageRequest {
            skip: self.skip,
            limit: self.limit,
        }
    }
}

#[derive(Debug, Args)]
pub struct Org {
    /// Organization id.
    #[arg(long)]
    pub org: i64,
}

#[derive(Debug, Args)]
pub struct OrgRun {
    /// Organization id.
    #[arg(long)]
    pub org: i64,
    /// Agent run id.
    #[arg(long)]
    pub run: i64,
}

#[derive(Debug, Subcommand)]
pub enum Resource {
    /// Organizations.
    #[command(subcommand)]
    Orgs(OrgsCmd),
    /// Users of an organization.
    #[command(subcommand)]
    Users(UsersCmd),
    /// Agent runs.
    #[command(subcommand)]
    Runs(RunsCmd),
    /// Repositories and their check-suite settings.
    #[command(subcommand)]
    Repos(ReposCmd),
    /// Pull requests.
    #[command(subcommand)]
    Prs(PrsCmd),
    /// Integrations of an organization.
    #[command(subcommand)]
    Integrations(IntegrationsCmd),
    /// Setup commands.
    #[command(subcommand)]
    SetupCommands(SetupCommandsCmd),
    /// Sandbox log analysis.
    #[command(subcommand)]
    Sandbox(SandboxCmd),
    /// CLI rules.
    #[command(subcommand)]
    CliRules(CliRulesCmd),
    /// MCP providers.
    #[command(subcommand)]
    McpProviders(McpProvidersCmd),
    /// OAuth tokens.
    #[command(subcommand)]
    Oauth(OauthCmd),
    /// Slack connect.
    #[command(subcommand)]
    SlackConnect(SlackConnectCmd),
}

#[derive(Debug, Subcommand)]
pub enum OrgsCmd {
    /// GET /v1/organizations
    List(#[command(flatten)] Paging),
}

#[derive(Debug, Subcommand)]
pub enum UsersCmd {
    /// GET /v1/organizations/{org_id}/users
    List {
        #[command(flatten)]
        org: Org,
        #[command(flatten)]
        paging: Paging,
    },
    /// GET /v1/organizations/{org_id}/users/{user_id}
    Get {
        #[command(flatten)]
        org: Org,
        #[arg(long)]
        user: i64,
    },
    /// GET /v1/users/me
    Me,
}

#[derive(Debug, Args)]
pub struct CardOrder {
    /// Kanban order key: place the run before this card in the CANCELLED column.
    #[arg(long)]
    pub before_card_order_id: Option<String>,
    /// Kanban order key: place the run after this card in the CANCELLED column.
    #[arg(long)]
    pub after_card_order_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RunsCmd {
    /// GET /v1/organizations/{org_id}/agent/runs (newest first)
    List {
        #[command(flatten)]
        org: Org,
        #[arg(long)]
        user_id: Option<i64>,
        /// API, GITHUB, GITHUB_CHECK_SUITE, SLACK, ...
        #[arg(long)]
        source_type: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// GET /v1/organizations/{org_id}/agent/run/{agent_run_id}
    Get(#[command(flatten)] OrgRun),
    /// POST /v1/organizations/{org_id}/agent/run
    Create {
        #[command(flatten)]
        org: Org,
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        repo_id: Option<i64>,
        #[arg(long)]
        model: Option<String>,
        /// codegen or claude_code.
        #[arg(long)]
        agent_type: Option<String>,
        /// A JSON object kept on the run.
        #[arg(long)]
        metadata: Option<String>,
        /// A base64 data-URI image; repeat for several.
        #[arg(long = "image")]
        images: Vec<String>,
    },
    /// POST /v1/organizations/{org_id}/agent/run/resume
    Resume {
        #[command(flatten)]
        target: OrgRun,
        #[arg(long)]
        prompt: String,
        #[arg(long = "image")]
        images: Vec<String>,
    },
    /// POST /v1/organizations/{org_id}/agent/run/ban: ignore check events on the run's PR
    Ban {
        #[command(flatten)]
        target: OrgRun,
        #[command(flatten)]
        order: CardOrder,
    },
    /// POST /v1/organizations/{org_id}/agent/run/unban
    Unban {
        #[command(flatten)]
        target: OrgRun,
        #[command(flatten)]
        order: CardOrder,
    },
    /// POST /v1/organizations/{org_id}/agent/run/remove-from-pr
    RemoveFromPr {
        #[command(flatten)]
        target: OrgRun,
        #[command(flatten)]
        order: CardOrder,
    },
    /// GET /v1/alpha/organizations/{org_id}/agent/run/{agent_run_id}/logs
    Logs {
        #[command(flatten)]
        target: OrgRun,
        /// Newest first.
        #[arg(long)]
        reverse: bool,
        #[command(flatten)]
        paging: Paging,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReposCmd {
    /// GET /v1/organizations/{org_id}/repos
    List {
        #[command(flatten)]
        org: Org,
        #[command(flatten)]
        paging: Paging,
    },
    /// Check-suite auto-fixer settings of a repository.
    #[command(subcommand)]
    CheckSuiteSettings(CheckSuiteCmd),
}

#[derive(Debug, Subcommand)]
pub enum CheckSuiteCmd {
    /// GET /v1/organizations/{org_id}/repos/check-suite-settings
    Get {
        #[command(flatten)]
        org: Org,
        #[arg(long)]
        repo: i64,
    },
    /// PUT /v1/organizations/{org_id}/repos/check-suite-settings
    Set {
        #[command(flatten)]
        org: Org,
        #[arg(long)]
        repo: i64,
        /// Retries per failing check (0..10).
        #[arg(long, value_parser = clap::value_parser!(i64).range(0..=10))]
        check_retry_count: Option<i64>,
        /// A check to ignore; repeat for several.
        #[arg(long = "ignored-check")]
        ignored_checks: Vec<String>,
        /// An app whose checks come first; repeat for several.
        #[arg(long = "high-priority-app")]
        high_priority_apps: Vec<String>,
        /// The whole request body as JSON (CheckSuiteSettingsRequest); flags override it.
        #[arg(long)]
        json: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PrsCmd {
    /// PATCH /v1/organizations/{org_id}/prs/{pr_id} (or .../repos/{repo_id}/prs/{pr_id} with --repo)
    Edit {
        #[command(flatten)]
        org: Org,
        /// Codegen's PR id (from a run's github_pull_requests).
        #[arg(long)]
        pr: i64,
        #[arg(long)]
        repo: Option<i64>,
        #[arg(long, value_enum)]
        state: PrStateArg,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PrStateArg {
    Open,
    Closed,
    Draft,
    ReadyForReview,
}

#[derive(Debug, Subcommand)]
pub enum IntegrationsCmd {
    /// GET /v1/organizations/{org_id}/integrations
    List(#[command(flatten)] Org),
}

#[derive(Debug, Subcommand)]
pub enum SetupCommandsCmd {
    /// POST /v1/organizations/{org_id}/setup-commands/generate
    Generate {
        #[command(flatten)]
        org: Org,
        #[arg(long)]
        repo: i64,
        #[arg(long)]
        prompt: Option<String>,
        #[arg(long, default_value = "setup-commands")]
        trigger_source: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SandboxCmd {
    /// POST /v1/organizations/{org_id}/sandbox/{sandbox_id}/analyze-logs
    AnalyzeLogs {
        #[command(flatten)]
        org: Org,
        #[arg(long)]
        sandbox: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum CliRulesCmd {
    /// GET /v1/organizations/{org_id}/cli/rules
    Get(#[command(flatten)] Org),
}

#[derive(Debug, Subcommand)]
pub enum McpProvidersCmd {
    /// GET /v1/mcp-providers
    List,
}

#[derive(Debug, Subcommand)]
pub enum OauthCmd {
    /// GET /v1/oauth/tokens/status
    Status(#[command(flatten)] Org),
    /// POST /v1/oauth/tokens/revoke
    Revoke {
        #[command(flatten)]
        org: Org,
        #[arg(long)]
        provider: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SlackConnectCmd {
    /// POST /v1/slack-connect/generate-token
    Token(#[command(flatten)] Org),
}

/// Runs an `api` command.
pub async fn run(args: ApiArgs) -> Result<(), Failure> {
    let client = connect(&args.conn)?;
    let output = call(&client, args.resource).await?;
    let text = serde_json::to_string_pretty(&output)
        .context("could not encode the answer as JSON")
        .map_err(Failure::Runtime)?;
    println!("{text}");
    Ok(())
}

/// Builds the client from flags, config and environment, in that order.
fn connect(conn: &Connection) -> Result<CodegenClient, Failure> {
    let from_config = super::config_source::codegen_from_config(conn.config.as_deref())?;
    let base_url = conn
        .base_url
        .clone()
        .or_else(|| from_config.as_ref().map(|c| c.base_url.clone()))
        .or_else(|| std::env::var(BASE_URL_ENV).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
    let token = match (&conn.token_env, from_config) {
        (Some(var), _) => read_token_env(var)?,
        (None, Some(config)) => config.token()?,
        (None, None) => read_token_env(TOKEN_ENV)?,
    };
    CodegenClient::builder(base_url, token)
        .build()
        .map_err(|e| Failure::Usage(e.to_string()))
}

fn read_token_env(var: &str) -> Result<SecretString, Failure> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Ok(SecretString::from(value)),
        _ => Err(Failure::Usage(format!(
            "no Codegen token: set the environment variable {var} (or pass --token-env VAR)"
        ))),
    }
}

fn json<T: Serialize>(value: T) -> Result<serde_json::Value, Failure> {
    serde_json::to_value(value)
        .context("could not encode the answer as JSON")
        .map_err(Failure::Runtime)
}

fn api_failure(err: crate::api::ApiError) -> Failure {
    Failure::Runtime(anyhow::Error::new(err))
}

fn usage(message: impl Into<String>) -> Failure {
    Failure::Usage(message.into())
}

async fn call(client: &CodegenClient, resource: Resource) -> Result<serde_json::Value, Failure> {
    match resource {
        Resource::Orgs(OrgsCmd::List(paging)) => list(paging, |page| client.list_orgs(page)).await,
        Resource::Users(cmd) => users(client, cmd).await,
        Resource::Runs(cmd) => runs(client, cmd).await,
        Resource::Repos(cmd) => repos(client, cmd).await,
        Resource::Prs(PrsCmd::Edit {
            org,
            pr,
            repo,
            state,
        }) => {
            let state = match state {
                PrStateArg::Open => PrState::Open,
                PrStateArg::Closed => PrState::Closed,
                PrStateArg::Draft => PrState::Draft,
                PrStateArg::ReadyForReview => PrState::ReadyForReview,
            };
            let answer = client.edit_pr(OrgId(org.org), repo, pr, state).await;
            json(answer.map_err(api_failure)?)
        }
        Resource::Integrations(IntegrationsCmd::List(org)) => json(
            client
                .integrations(OrgId(org.org))
                .await
                .map_err(api_failure)?,
        ),
        Resource::SetupCommands(SetupCommandsCmd::Generate {
            org,
            repo,
            prompt,
            trigger_source,
        }) => {
            let input = SetupCommandsInput {
                repo_id: repo,
                prompt,
                trigger_source,
            };
            let answer = client.generate_setup_commands(OrgId(org.org), &input).await;
            json(answer.map_err(api_failure)?)
        }
        Resource::Sandbox(SandboxCmd::AnalyzeLogs { org, sandbox }) => {
            let answer = client.analyze_logs(OrgId(org.org), sandbox).await;
            json(answer.map_err(api_failure)?)
        }
        Resource::CliRules(CliRulesCmd::Get(org)) => json(
            client
                .cli_rules(OrgId(org.org))
                .await
                .map_err(api_failure)?,
        ),
        Resource::McpProviders(McpProvidersCmd::List) => {
            json(client.mcp_providers().await.map_err(api_failure)?)
        }
        Resource::Oauth(OauthCmd::Status(org)) => json(
            client
                .oauth_status(OrgId(org.org))
                .await
                .map_err(api_failure)?,
        ),
        Resource::Oauth(OauthCmd::Revoke { org, provider }) => {
            let answer = client.oauth_revoke(OrgId(org.org), &provider).await;
            json(answer.map_err(api_failure)?)
        }
        Resource::SlackConnect(SlackConnectCmd::Token(org)) => {
            let answer = client.slack_connect_token(OrgId(org.org)).await;
            json(answer.map_err(api_failure)?)
        }
    }
}

/// One page as the API sent it, or with `--all` every item as one array.
async fn list<T, F, Fut>(paging: Paging, fetch: F) -> Result<serde_json::Value, Failure>
where
    T: Serialize,
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<crate::api::Page<T>, crate::api::ApiError>>,
{
    let mut fetch = fetch;
    if paging.all {
        json(
            collect_pages(paging.limit, fetch)
                .await
                .map_err(api_failure)?,
        )
    } else {
        json(fetch(paging.request()).await.map_err(api_failure)?)
    }
}

async fn users(client: &CodegenClient, cmd: UsersCmd) -> Result<serde_json::Value, Failure> {
    match cmd {
        UsersCmd::List { org, paging } => {
            list(paging, |page| client.list_users(OrgId(org.org), page)).await
        }
        UsersCmd::Get { org, user } => json(
            client
                .get_user(OrgId(org.org), user)
                .await
                .map_err(api_failure)?,
        ),
        UsersCmd::Me => json(client.me().await.map_err(api_failure)?),
    }
}

fn stop_input(run: i64, order: CardOrder) -> StopRunInput {
    StopRunInput {
        agent_run_id: RunId(run),
        before_card_order_id: order.before_card_order_id,
        after_card_order_id: order.after_card_order_id,
    }
}

async fn runs(client: &CodegenClient, cmd: RunsCmd) -> Result<serde_json::Value, Failure> {
    match cmd {
        RunsCmd::List {
            org,
            user_id,
            source_type,
            paging,
        } => {
            let filter = RunFilter {
                user_id,
                source_type: source_type.as_deref().map(SourceType::parse),
            };
            let org = OrgId(org.org);
            list(paging, |page| client.list_runs(org, &filter, page)).await
        }
        RunsCmd::Get(t) => json(
            client
                .get_run(OrgId(t.org), RunId(t.run))
                .await
                .map_err(api_failure)?,
        ),
        RunsCmd::Create {
            org,
            prompt,
            repo_id,
            model,
            agent_type,
            metadata,
            images,
        } => {
            let input = CreateRunInput {
                prompt,
                images: (!images.is_empty()).then_some(images),
                metadata: metadata.as_deref().map(parse_object).transpose()?,
                repo_id,
                model,
                agent_type: agent_type.as_deref().map(parse_agent_type).transpose()?,
            };
            let run = client.create_run(OrgId(org.org), &input).await;
            json(run.map_err(api_failure)?)
        }
        RunsCmd::Resume {
            target,
            prompt,
            images,
        } => {
            if prompt.trim().is_empty() {
                return Err(usage("--prompt must not be empty"));
            }
            let input = ResumeRunInput {
                agent_run_id: RunId(target.run),
                prompt,
                images: (!images.is_empty()).then_some(images),
            };
            let run = client.resume_run(OrgId(target.org), &input).await;
            json(run.map_err(api_failure)?)
        }
        RunsCmd::Ban { target, order } => {
            let input = stop_input(target.run, order);
            json(
                client
                    .ban_checks(OrgId(target.org), &input)
                    .await
                    .map_err(api_failure)?,
            )
        }
        RunsCmd::Unban { target, order } => {
            let input = stop_input(target.run, order);
            let answer = client.unban_checks(OrgId(target.org), &input).await;
            json(answer.map_err(api_failure)?)
        }
        RunsCmd::RemoveFromPr { target, order } => {
            let input = stop_input(target.run, order);
            let answer = client.remove_from_pr(OrgId(target.org), &input).await;
            json(answer.map_err(api_failure)?)
        }
        RunsCmd::Logs {
            target,
            reverse,
            paging,
        } => {
            let (org, run) = (OrgId(target.org), RunId(target.run));
            let logs = if paging.all {
                client.all_run_logs(org, run, reverse).await
            } else {
                client.run_logs(org, run, paging.request(), reverse).await
            };
            json(logs.map_err(api_failure)?)
        }
    }
}

async fn repos(client: &CodegenClient, cmd: ReposCmd) -> Result<serde_json::Value, Failure> {
    match cmd {
        ReposCmd::List { org, paging } => {
            list(paging, |page| client.list_repos(OrgId(org.org), page)).await
        }
        ReposCmd::CheckSuiteSettings(CheckSuiteCmd::Get { org, repo }) => {
            let answer = client.check_suite_settings(OrgId(org.org), repo).await;
            json(answer.map_err(api_failure)?)
        }
        ReposCmd::CheckSuiteSettings(CheckSuiteCmd::Set {
            org,
            repo,
            check_retry_count,
            ignored_checks,
            high_priority_apps,
            json: body,
        }) => {
            let mut update: CheckSuiteSettingsUpdate = match body {
                Some(text) => serde_json::from_str(&text).map_err(|e| {
                    usage(format!("--json is not a CheckSuiteSettingsRequest: {e}"))
                })?,
                None => CheckSuiteSettingsUpdate::default(),
            };
            if check_retry_count.is_some() {
                update.check_retry_count = check_retry_count;
            }
            if !ignored_checks.is_empty() {
                update.ignored_checks = Some(ignored_checks);
            }
            if !high_priority_apps.is_empty() {
                update.high_priority_apps = Some(high_priority_apps);
            }
            let answer = client
                .set_check_suite_settings(OrgId(org.org), repo, &update)
                .await;
            json(answer.map_err(api_failure)?)
        }
    }
}

fn parse_object(text: &str) -> Result<serde_json::Value, Failure> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(_) => Err(usage("--metadata must be a JSON object")),
        Err(e) => Err(usage(format!("--metadata is not valid JSON: {e}"))),
    }
}

fn parse_agent_type(text: &str) -> Result<AgentType, Failure> {
    match text {
        "codegen" => Ok(AgentType::Codegen),
        "claude_code" => Ok(AgentType::ClaudeCode),
        other => Err(usage(format!(
            "--agent-type must be codegen or claude_code, not {other:?}"
        ))),
    }
}

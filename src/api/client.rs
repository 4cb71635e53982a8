//! The Codegen REST client: one method per operation of the official spec, all sharing the rate
//! budget and the retry policy.
//!
//! Idempotent calls (GET, PUT, PATCH, ban, unban, remove-from-pr) are retried on transient
//! failures. Create, resume, analyze-logs, setup-commands and the token endpoints are retried only
//! when the server provably did not act (429, or the connection was never made): after an
//! uncertain failure the caller decides, because repeating them repeats an effect.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::error::{parse_retry_after, ApiError};
use super::limits::{LimitClass, RateBudget};
use super::models::*;
use crate::retry::RetryPolicy;

/// The public API.
pub const DEFAULT_BASE_URL: &str = "https://api.codegen.com";
/// How long one attempt may take, headers and body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest page the API serves.
pub const MAX_PAGE: u32 = 100;

/// A cheap-to-clone handle on the Codegen API.
#[derive(Clone)]
pub struct CodegenClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    auth: HeaderValue,
    budget: Arc<RateBudget>,
    retry: RetryPolicy,
    timeout: Duration,
}

impl std::fmt::Debug for CodegenClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodegenClient")
            .field("base", &self.inner.base.as_str())
            .field("token", &"[redacted]")
            .finish()
    }
}

/// Builds a [`CodegenClient`].
pub struct ClientBuilder {
    base_url: String,
    token: SecretString,
    budget: Option<Arc<RateBudget>>,
    retry: RetryPolicy,
    timeout: Duration,
}

/// The client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid Codegen base URL {url:?}: {reason}")]
    BaseUrl { url: String, reason: String },
    #[error("the Codegen token is not a valid HTTP header value")]
    Token,
    #[error("could not build the HTTP client: {0}")]
    Http(String),
}

impl ClientBuilder {
    /// Shares a rate budget (every client of one process should share one).
    pub fn budget(mut self, budget: Arc<RateBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Overrides the retry policy of idempotent calls.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Overrides the per-attempt timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn build(self) -> Result<CodegenClient, BuildError> {
        let mut text = self.base_url.trim().to_owned();
        if !text.ends_with('/') {
            text.push('/');
        }
        let base = Url::parse(&text).map_err(|e| BuildError::BaseUrl {
            url: self.base_url.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(BuildError::BaseUrl {
                url: self.base_url,
                reason: "the scheme must be http or https".into(),
            });
        }
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", self.token.expose_secret().trim()))
                .map_err(|_| BuildError::Token)?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .user_agent(concat!("codegen-sentinel/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| BuildError::Http(e.to_string()))?;
        Ok(CodegenClient {
            inner: Arc::new(Inner {
                http,
                base,
                auth,
                budget: self
                    .budget
                    .unwrap_or_else(|| Arc::new(RateBudget::published())),
                retry: self.retry,
                timeout: self.timeout,
            }),
        })
    }
}

/// `skip` and `limit` of a list call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub skip: u32,
    pub limit: u32,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            skip: 0,
            limit: MAX_PAGE,
        }
    }
}

impl PageRequest {
    fn query(self) -> Vec<(&'static str, String)> {
        vec![
            ("skip", self.skip.to_string()),
            ("limit", self.limit.to_string()),
        ]
    }
}

/// Filters of list runs (the only two the API has).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    pub user_id: Option<i64>,
    pub source_type: Option<SourceType>,
}

/// One HTTP call, described.
struct Call {
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
    class: LimitClass,
    /// Safe to send again after an uncertain failure.
    idempotent: bool,
    /// A stable label for logs and metrics.
    endpoint: &'static str,
}

impl Call {
    fn get(endpoint: &'static str, path: String) -> Call {
        Call {
            method: Method::GET,
            path,
            query: Vec::new(),
            body: None,
            class: LimitClass::Standard,
            idempotent: true,
            endpoint,
        }
    }

    fn post(endpoint: &'static str, path: String, body: Option<Value>, idempotent: bool) -> Call {
        Call {
            method: Method::POST,
            path,
            query: Vec::new(),
            body,
            class: LimitClass::Standard,
            idempotent,
            endpoint,
        }
    }

    fn class(mut self, class: LimitClass) -> Call {
        self.class = class;
        self
    }

    fn query(mut self, query: Vec<(&'static str, String)>) -> Call {
        self.query.extend(query);
        self
    }
}

/// Why one attempt failed, and whether the request may have reached the server.
struct Failure {
    error: ApiError,
    maybe_sent: bool,
}

impl CodegenClient {
    /// Starts building a client for `base_url` with `token`.
    pub fn builder(base_url: impl Into<String>, token: SecretString) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            token,
            budget: None,
            retry: RetryPolicy::default(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The rate budget this client spends.
    pub fn budget(&self) -> &Arc<RateBudget> {
        &self.inner.budget
    }

    /// The base URL (without credentials; safe to show).
    pub fn base_url(&self) -> &str {
        self.inner.base.as_str()
    }

    async fn send<T: DeserializeOwned>(&self, call: Call) -> Result<T, ApiError> {
        let mut attempt = 1;
        loop {
            self.inner.budget.acquire(call.class).await;
            let failure = match self.attempt(&call).await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            let error = failure.error;
            if let Some(wait) = error.retry_after() {
                self.inner.budget.block_for(call.class, wait);
            }
            let safe = call.idempotent || error.was_not_processed() || !failure.maybe_sent;
            if !(error.is_transient() && safe) || attempt >= self.inner.retry.max_attempts {
                return Err(error);
            }
            let wait = self.inner.retry.delay(attempt, error.retry_after());
            tracing::debug!(endpoint = call.endpoint, attempt, ?wait, %error, "Retrying Codegen call");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn attempt<T: DeserializeOwned>(&self, call: &Call) -> Result<T, Failure> {
        let inner = &self.inner;
        let url = inner.base.join(&call.path).map_err(|e| Failure {
            error: ApiError::Transport(format!("bad request path {}: {e}", call.path)),
            maybe_sent: false,
        })?;
        let mut request = inner
            .http
            .request(call.method.clone(), url)
            .header(AUTHORIZATION, inner.auth.clone())
            .timeout(inner.timeout);
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            record(call.endpoint, "transport");
            Failure {
                error: ApiError::from_transport(&e, inner.timeout),
                maybe_sent: !e.is_connect(),
            }
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = response.bytes().await.map_err(|e| {
            record(call.endpoint, "transport");
            Failure {
                error: ApiError::from_transport(&e, inner.timeout),
                maybe_sent: true,
            }
        })?;
        record(call.endpoint, status.as_str());
        if !status.is_success() {
            return Err(Failure {
                error: ApiError::from_response(status, retry_after, &body),
                maybe_sent: true,
            });
        }
        decode(&body).map_err(|error| Failure {
            error,
            maybe_sent: true,
        })
    }

    // ----- organizations and users -----

    /// `GET /v1/organizations`
    pub async fn list_orgs(&self, page: PageRequest) -> Result<Page<Organization>, ApiError> {
        self.send(Call::get("orgs.list", "v1/organizations".into()).query(page.query()))
            .await
    }

    /// `GET /v1/organizations/{org_id}/users`
    pub async fn list_users(&self, org: OrgId, page: PageRequest) -> Result<Page<User>, ApiError> {
        let path = format!("v1/organizations/{org}/users");
        self.send(Call::get("users.list", path).query(page.query()))
            .await
    }

    /// `GET /v1/organizations/{org_id}/users/{user_id}`
    pub async fn get_user(&self, org: OrgId, user_id: i64) -> Result<User, ApiError> {
        let path = format!("v1/organizations/{org}/users/{user_id}");
        self.send(Call::get("users.get", path)).await
    }

    /// `GET /v1/users/me`
    pub async fn me(&self) -> Result<User, ApiError> {
        self.send(Call::get("users.me", "v1/users/me".into())).await
    }

    // ----- agent runs -----

    /// `POST /v1/organizations/{org_id}/agent/run`. Not retried after an uncertain failure.
    pub async fn create_run(
        &self,
        org: OrgId,
        input: &CreateRunInput,
    ) -> Result<AgentRun, ApiError> {
        let path = format!("v1/organizations/{org}/agent/run");
        let call = Call::post("runs.create", path, Some(to_json(input)?), false);
        self.send(call.class(LimitClass::Create)).await
    }

    /// `GET /v1/organizations/{org_id}/agent/run/{agent_run_id}`
    pub async fn get_run(&self, org: OrgId, run: RunId) -> Result<AgentRun, ApiError> {
        let path = format!("v1/organizations/{org}/agent/run/{run}");
        self.send(Call::get("runs.get", path)).await
    }

    /// `GET /v1/organizations/{org_id}/agent/runs`, newest first.
    pub async fn list_runs(
        &self,
        org: OrgId,
        filter: &RunFilter,
        page: PageRequest,
    ) -> Result<Page<AgentRun>, ApiError> {
        let path = format!("v1/organizations/{org}/agent/runs");
        let mut query = page.query();
        if let Some(user) = filter.user_id {
            query.push(("user_id", user.to_string()));
        }
        if let Some(source) = &filter.source_type {
            query.push(("source_type", source.as_str().to_owned()));
        }
        self.send(Call::get("runs.list", path).query(query)).await
    }

    /// `POST /v1/organizations/{org_id}/agent/run/resume` (the run id travels in the body).
    pub async fn resume_run(
        &self,
        org: OrgId,
        input: &ResumeRunInput,
    ) -> Result<AgentRun, ApiError> {
        let path = format!("v1/organizations/{org}/agent/run/resume");
        self.send(Call::post(
            "runs.resume",
            path,
            Some(to_json(input)?),
            false,
        ))
        .await
    }

    /// `POST /v1/organizations/{org_id}/agent/run/ban`: ignore check-suite events on the run's PR
    /// and stop the agents working on it. Idempotent.
    pub async fn ban_checks(&self, org: OrgId, input: &StopRunInput) -> Result<Value, ApiError> {
        self.stop_call("runs.ban", org, "ban", input).await
    }

    /// `POST /v1/organizations/{org_id}/agent/run/unban`. Idempotent.
    pub async fn unban_checks(&self, org: OrgId, input: &StopRunInput) -> Result<Value, ApiError> {
        self.stop_call("runs.unban", org, "unban", input).await
    }

    /// `POST /v1/organizations/{org_id}/agent/run/remove-from-pr`. Idempotent.
    pub async fn remove_from_pr(
        &self,
        org: OrgId,
        input: &StopRunInput,
    ) -> Result<Value, ApiError> {
        self.stop_call("runs.remove_from_pr", org, "remove-from-pr", input)
            .await
    }

    async fn stop_call(
        &self,
        endpoint: &'static str,
        org: OrgId,
        verb: &str,
        input: &StopRunInput,
    ) -> Result<Value, ApiError> {
        let path = format!("v1/organizations/{org}/agent/run/{verb}");
        self.send(Call::post(endpoint, path, Some(to_json(input)?), true))
            .await
    }

    /// `GET /v1/alpha/organizations/{org_id}/agent/run/{agent_run_id}/logs`
    pub async fn run_logs(
        &self,
        org: OrgId,
        run: RunId,
        page: PageRequest,
        reverse: bool,
    ) -> Result<RunLogs, ApiError> {
        let path = format!("v1/alpha/organizations/{org}/agent/run/{run}/logs");
        let mut query = page.query();
        query.push(("reverse", reverse.to_string()));
        let call = Call::get("runs.logs", path).query(query);
        self.send(call.class(LimitClass::Logs)).await
    }

    /// Every log entry of a run, walking the pages (`reverse` gives newest first).
    pub async fn all_run_logs(
        &self,
        org: OrgId,
        run: RunId,
        reverse: bool,
    ) -> Result<RunLogs, ApiError> {
        let mut page = PageRequest::default();
        let mut all = self.run_logs(org, run, page, reverse).await?;
        let mut last_count = all.logs.len();
        loop {
            page.skip = page.skip.saturating_add(page.limit);
            let total = all.total_logs.unwrap_or(0);
            if last_count < page.limit as usize || i64::from(page.skip) >= total {
                return Ok(all);
            }
            let next = self.run_logs(org, run, page, reverse).await?;
            last_count = next.logs.len();
            all.logs.extend(next.logs);
            all.total_logs = next.total_logs.or(all.total_logs);
        }
    }

    // ----- repositories and settings -----

    /// `GET /v1/organizations/{org_id}/repos`
    pub async fn list_repos(&self, org: OrgId, page: PageRequest) -> Result<Page<Repo>, ApiError> {
        let path = format!("v1/organizations/{org}/repos");
        self.send(Call::get("repos.list", path).query(page.query()))
            .await
    }

    /// `GET /v1/organizations/{org_id}/repos/check-suite-settings?repo_id=`
    pub async fn check_suite_settings(
        &self,
        org: OrgId,
        repo_id: i64,
    ) -> Result<CheckSuiteSettings, ApiError> {
        let path = format!("v1/organizations/{org}/repos/check-suite-settings");
        let call = Call::get("repos.check_suite_settings.get", path);
        self.send(call.query(vec![("repo_id", repo_id.to_string())]))
            .await
    }

    /// `PUT /v1/organizations/{org_id}/repos/check-suite-settings?repo_id=`
    pub async fn set_check_suite_settings(
        &self,
        org: OrgId,
        repo_id: i64,
        update: &CheckSuiteSettingsUpdate,
    ) -> Result<Value, ApiError> {
        let path = format!("v1/organizations/{org}/repos/check-suite-settings");
        let mut call = Call::get("repos.check_suite_settings.set", path)
            .query(vec![("repo_id", repo_id.to_string())]);
        call.method = Method::PUT;
        call.body = Some(to_json(update)?);
        self.send(call).await
    }

    /// `PATCH /v1/organizations/{org_id}/prs/{pr_id}`, or with `repo_id` the repo-scoped path
    /// `PATCH /v1/organizations/{org_id}/repos/{repo_id}/prs/{pr_id}`.
    pub async fn edit_pr(
        &self,
        org: OrgId,
        repo_id: Option<i64>,
        pr_id: i64,
        state: PrState,
    ) -> Result<EditPrResponse, ApiError> {
        let path = match repo_id {
            Some(repo) => format!("v1/organizations/{org}/repos/{repo}/prs/{pr_id}"),
            None => format!("v1/organizations/{org}/prs/{pr_id}"),
        };
        let mut call = Call::get("prs.edit", path).class(LimitClass::PrEdit);
        call.method = Method::PATCH;
        call.body = Some(to_json(&EditPrInput { state })?);
        self.send(call).await
    }

    // ----- everything else -----

    /// `GET /v1/organizations/{org_id}/integrations`
    pub async fn integrations(&self, org: OrgId) -> Result<Integrations, ApiError> {
        let path = format!("v1/organizations/{org}/integrations");
        self.send(Call::get("integrations.list", path)).await
    }

    /// `POST /v1/organizations/{org_id}/setup-commands/generate`. Starts a run: not retried after
    /// an uncertain failure.
    pub async fn generate_setup_commands(
        &self,
        org: OrgId,
        input: &SetupCommandsInput,
    ) -> Result<SetupCommandsResponse, ApiError> {
        let path = format!("v1/organizations/{org}/setup-commands/generate");
        let call = Call::post(
            "setup_commands.generate",
            path,
            Some(to_json(input)?),
            false,
        );
        self.send(call.class(LimitClass::SetupCommands)).await
    }

    /// `POST /v1/organizations/{org_id}/sandbox/{sandbox_id}/analyze-logs` (no body). Starts a
    /// run: not retried after an uncertain failure.
    pub async fn analyze_logs(
        &self,
        org: OrgId,
        sandbox_id: i64,
    ) -> Result<AnalyzeLogsResponse, ApiError> {
        let path = format!("v1/organizations/{org}/sandbox/{sandbox_id}/analyze-logs");
        let call = Call::post("sandbox.analyze_logs", path, None, false);
        self.send(call.class(LimitClass::AnalyzeLogs)).await
    }

    /// `GET /v1/organizations/{org_id}/cli/rules`
    pub async fn cli_rules(&self, org: OrgId) -> Result<CliRules, ApiError> {
        let path = format!("v1/organizations/{org}/cli/rules");
        let call = Call::get("cli_rules.get", path).class(LimitClass::CliRules);
        self.send(call).await
    }

    /// `GET /v1/mcp-providers`
    pub async fn mcp_providers(&self) -> Result<Vec<McpProvider>, ApiError> {
        self.send(Call::get("mcp_providers.list", "v1/mcp-providers".into()))
            .await
    }

    /// `GET /v1/oauth/tokens/status?org_id=` (the answer is untyped in the spec).
    pub async fn oauth_status(&self, org: OrgId) -> Result<Value, ApiError> {
        let call = Call::get("oauth.status", "v1/oauth/tokens/status".into());
        self.send(call.query(vec![("org_id", org.to_string())]))
            .await
    }

    /// `POST /v1/oauth/tokens/revoke?provider=&org_id=`. Revoking twice is harmless.
    pub async fn oauth_revoke(&self, org: OrgId, provider: &str) -> Result<Value, ApiError> {
        let call = Call::post("oauth.revoke", "v1/oauth/tokens/revoke".into(), None, true);
        let query = vec![
            ("provider", provider.to_owned()),
            ("org_id", org.to_string()),
        ];
        self.send(call.query(query)).await
    }

    /// `POST /v1/slack-connect/generate-token`: a one-time token; not retried after an uncertain
    /// failure.
    pub async fn slack_connect_token(&self, org: OrgId) -> Result<SlackConnectToken, ApiError> {
        let body = serde_json::json!({ "org_id": org });
        let call = Call::post(
            "slack_connect.token",
            "v1/slack-connect/generate-token".into(),
            Some(body),
            false,
        );
        self.send(call).await
    }
}

/// Fetches every page of a list: stops at a short page or once `skip >= total`.
pub async fn collect_pages<T, F, Fut>(limit: u32, mut fetch: F) -> Result<Vec<T>, ApiError>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, ApiError>>,
{
    let limit = limit.clamp(1, MAX_PAGE);
    let mut page = PageRequest { skip: 0, limit };
    let mut all = Vec::new();
    loop {
        let got = fetch(page).await?;
        let count = got.items.len();
        all.extend(got.items);
        page.skip = page.skip.saturating_add(limit);
        if count < limit as usize || i64::from(page.skip) >= got.total {
            return Ok(all);
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::Decode {
        path: ".".into(),
        message: format!("could not encode the request: {e}"),
    })
}

/// Decodes a body, naming the JSON path of the first mismatch.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        ApiError::Decode {
            path,
            message: err.into_inner().to_string(),
        }
    })
}

fn record(endpoint: &'static str, status: &str) {
    metrics::counter!(
        "sentinel_api_requests_total",
        "endpoint" => endpoint,
        "status" => status.to_owned()
    )
    .increment(1);
}

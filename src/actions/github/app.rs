//! GitHub App authentication: the App's JWT finds the installation that covers a repository's
//! owner and mints its installation tokens. One token is cached per owner (an installation covers
//! all of an owner's repositories the App may see), replaced when less than
//! [`TOKEN_REFRESH_MARGIN`] of it is left, and dropped at once when GitHub refuses it.
//!
//! The tokens are minted here rather than by octocrab's installation mode, which only renews a
//! token with 30 s left by the wall clock and resends a request answered 401 on its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use octocrab::Octocrab;
use secrecy::SecretString;
use serde_json::Value;

use super::client::{GithubClient, Verb};
use super::error::GithubError;
use super::RepoRef;

/// A cached installation token with less than this left is replaced before the next request:
/// far more than a request's timeout plus any plausible clock difference with GitHub, and a
/// small part of a token's hour.
pub const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// GitHub's installation tokens live an hour; an answer without `expires_at` is taken as that.
const DEFAULT_LIFETIME: chrono::Duration = chrono::Duration::hours(1);

/// The App's own client and the installation tokens it minted, per owner.
pub(super) struct AppAuth {
    /// Authenticates with a fresh JWT on every request.
    app: Octocrab,
    margin: chrono::Duration,
    /// Lower-cased owner → its installation. One lock per owner, so that concurrent requests for
    /// one owner mint one token and other owners do not wait for it.
    owners: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Installation>>>>>,
    next_generation: AtomicU64,
}

struct Installation {
    id: u64,
    token: Token,
}

struct Token {
    /// Sends `Authorization: Bearer <token>` and never resends on its own.
    client: Octocrab,
    expires_at: DateTime<Utc>,
    generation: u64,
}

/// Which cached token a request used, so that a refusal drops that token and not a newer one.
pub(super) struct Lease {
    owner: String,
    generation: u64,
}

impl AppAuth {
    pub(super) fn new(app: Octocrab) -> AppAuth {
        AppAuth {
            app,
            margin: chrono::Duration::from_std(TOKEN_REFRESH_MARGIN)
                .unwrap_or(chrono::Duration::MAX),
            owners: Mutex::new(HashMap::new()),
            next_generation: AtomicU64::new(1),
        }
    }

    fn slot(&self, owner: &str) -> Arc<tokio::sync::Mutex<Option<Installation>>> {
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        owners.entry(owner.to_owned()).or_default().clone()
    }

    /// GitHub refused the token of `lease` (401): forget it and its installation, so that the
    /// next request looks the installation up again and mints a new token.
    pub(super) async fn refused(&self, lease: &Lease) {
        let slot = self.slot(&lease.owner);
        let mut held = slot.lock().await;
        if held
            .as_ref()
            .is_some_and(|i| i.token.generation == lease.generation)
        {
            *held = None;
            tracing::warn!(
                owner = %lease.owner,
                "GitHub refused the App installation token; a new one is fetched for the next request"
            );
        }
    }
}

impl GithubClient {
    /// The installation client for `repo`'s owner, with a token that has more than the margin
    /// left (or was minted just now).
    pub(super) async fn installation_client(
        &self,
        auth: &AppAuth,
        repo: &RepoRef,
    ) -> Result<(Octocrab, Lease), GithubError> {
        let owner = repo.owner.to_ascii_lowercase();
        let slot = auth.slot(&owner);
        let mut held = slot.lock().await;
        let now = self.now();
        if let Some(installation) = held.as_ref() {
            let token = &installation.token;
            if token.expires_at - now > auth.margin {
                let lease = Lease {
                    owner,
                    generation: token.generation,
                };
                return Ok((token.client.clone(), lease));
            }
        }
        let previous = held.take();
        let id = match &previous {
            Some(installation) => installation.id,
            None => self.find_installation(auth, repo).await?,
        };
        let (secret, expires_at) = match self.mint_token(auth, id, &owner).await {
            Ok(minted) => minted,
            // Refreshing ahead of time failed (GitHub down, a timeout): the old token still
            // works until it expires, so use it and try again on the next request.
            Err(error) => match previous.filter(|i| i.token.expires_at > now) {
                Some(installation) => {
                    tracing::warn!(
                        %owner,
                        %error,
                        "GitHub App token refresh failed; using the current token until it expires"
                    );
                    let lease = Lease {
                        owner,
                        generation: installation.token.generation,
                    };
                    let client = installation.token.client.clone();
                    *held = Some(installation);
                    return Ok((client, lease));
                }
                None => return Err(error),
            },
        };
        let client = auth
            .app
            .user_access_token(secret)
            .map_err(|e| GithubError::Setup(e.to_string()))?;
        let generation = auth.next_generation.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%owner, installation = id, %expires_at, "GitHub App installation token fetched");
        *held = Some(Installation {
            id,
            token: Token {
                client: client.clone(),
                expires_at,
                generation,
            },
        });
        Ok((client, Lease { owner, generation }))
    }

    /// The id of the installation that covers `repo`.
    async fn find_installation(&self, auth: &AppAuth, repo: &RepoRef) -> Result<u64, GithubError> {
        let what = format!(
            "GitHub App installation for {} (looked up through {})",
            repo.owner,
            repo.full_name()
        );
        let path = format!("{}/installation", repo.path());
        let found = self
            .send(&auth.app, Verb::Get, &path, None)
            .await
            .map_err(|e| e.context(&what))?;
        found["id"]
            .as_u64()
            .ok_or_else(|| GithubError::Decode(format!("{what}: the answer has no numeric id")))
    }

    /// A new token of installation `id`, with its expiry.
    async fn mint_token(
        &self,
        auth: &AppAuth,
        id: u64,
        owner: &str,
    ) -> Result<(SecretString, DateTime<Utc>), GithubError> {
        let what = format!("GitHub App installation {id} of {owner}: access token");
        let path = format!("/app/installations/{id}/access_tokens");
        let minted = self
            .send(
                &auth.app,
                Verb::Post,
                &path,
                Some(&Value::Object(Default::default())),
            )
            .await
            .map_err(|e| e.context(&what))?;
        let token = minted["token"]
            .as_str()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| GithubError::Decode(format!("{what}: the answer has no token")))?;
        let expires_at = match minted["expires_at"].as_str() {
            Some(text) => DateTime::parse_from_rfc3339(text)
                .map_err(|e| GithubError::Decode(format!("{what}: expires_at {text:?}: {e}")))?
                .with_timezone(&Utc),
            None => self.now() + DEFAULT_LIFETIME,
        };
        Ok((SecretString::from(token.trim().to_owned()), expires_at))
    }
}

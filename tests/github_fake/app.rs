//! App mode of the fake GitHub: the App endpoints want a JWT signed with the App's key (checked
//! with its public key, RS256, `iss` the App id, sane `iat`/`exp` by the wall clock, as the JWT is
//! signed by it); installations are configured per owner; installation tokens expire after a
//! lifetime the test sets, by a clock the test gives; and the REST paths take only a live token
//! of the repository owner's installation. Every token issued and every refusal is recorded.

#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SubsecRound, Utc};
// octocrab's own jsonwebtoken (its RustCrypto backend), so no second crypto stack comes in.
use octocrab::jsonwebtoken::{self, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{json, Value};

use super::github::{error, not_found, FakeGithub};

/// The fake's wall time for installation tokens.
pub type ClockFn = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// An installation token as issued.
#[derive(Clone, Debug, PartialEq)]
pub struct Issued {
    pub token: String,
    pub installation: u64,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
}

/// A REST request let through, with the token that authorized it.
#[derive(Clone, Debug, PartialEq)]
pub struct Authorized {
    pub owner: String,
    pub installation: u64,
    pub token: String,
}

/// The App's side of the world.
pub(super) struct AppWorld {
    app_id: u64,
    key: DecodingKey,
    /// Lower-cased owner → installation id.
    installations: HashMap<String, u64>,
    lifetime: chrono::Duration,
    clock: ClockFn,
    issued: Vec<Issued>,
    lookups: usize,
    authorized: Vec<Authorized>,
    refusals: Vec<String>,
}

impl AppWorld {
    /// 401 unless `headers` carry a live token of `owner`'s installation.
    pub(super) fn authorize(&mut self, headers: &HeaderMap, owner: &str) -> Result<(), Response> {
        let refused = |this: &mut AppWorld, why: String| {
            this.refusals.push(why);
            error(StatusCode::UNAUTHORIZED, "Bad credentials")
        };
        let Some(given) = credential(headers, &["token", "bearer"]) else {
            return Err(refused(self, "no installation token".into()));
        };
        let Some(issued) = self.issued.iter().find(|t| t.token == given).cloned() else {
            return Err(refused(self, "unknown token".into()));
        };
        let now = (self.clock)();
        if issued.revoked {
            return Err(refused(self, format!("revoked token {}", issued.token)));
        }
        if now >= issued.expires_at {
            return Err(refused(
                self,
                format!(
                    "expired token {} ({} at {now})",
                    issued.token, issued.expires_at
                ),
            ));
        }
        if self.installations.get(&owner.to_ascii_lowercase()) != Some(&issued.installation) {
            return Err(refused(
                self,
                format!(
                    "token of installation {} used for {owner}",
                    issued.installation
                ),
            ));
        }
        self.authorized.push(Authorized {
            owner: owner.to_owned(),
            installation: issued.installation,
            token: issued.token,
        });
        Ok(())
    }

    /// 401 unless `headers` carry a valid JWT of the App.
    fn check_jwt(&mut self, headers: &HeaderMap) -> Result<(), Response> {
        match self.jwt_problem(headers) {
            None => Ok(()),
            Some(why) => {
                self.refusals.push(format!("JWT: {why}"));
                Err(error(
                    StatusCode::UNAUTHORIZED,
                    "A JSON web token could not be decoded",
                ))
            }
        }
    }

    fn jwt_problem(&self, headers: &HeaderMap) -> Option<String> {
        #[derive(Deserialize)]
        struct Claims {
            iss: Value,
            iat: i64,
            exp: i64,
        }
        let jwt = credential(headers, &["bearer"])?;
        let mut validation = Validation::new(Algorithm::RS256);
        // GitHub's `iss` may be a number, which jsonwebtoken's own `iss` check does not read.
        validation.set_required_spec_claims(&["exp", "iat"]);
        let claims = match jsonwebtoken::decode::<Claims>(&jwt, &self.key, &validation) {
            Ok(data) => data.claims,
            Err(e) => return Some(e.to_string()),
        };
        let iss_ok = claims.iss.as_u64() == Some(self.app_id)
            || claims.iss.as_str() == Some(self.app_id.to_string().as_str());
        let now = Utc::now().timestamp();
        if !iss_ok {
            Some(format!("iss {} is not App {}", claims.iss, self.app_id))
        } else if claims.iat > now + 60 {
            Some("issued in the future".into())
        } else if claims.exp <= claims.iat || claims.exp > now + 11 * 60 {
            Some("expiry not within 10 minutes".into())
        } else {
            None
        }
    }

    fn installation_json(&self, owner: &str, id: u64) -> Value {
        json!({
            "id": id,
            "account": {"login": owner, "id": id * 10, "type": "Organization"},
            "app_id": self.app_id,
            "app_slug": "codegen-sentinel",
            "target_id": id * 10,
            "target_type": "Organization",
            "repository_selection": "all",
            "access_tokens_url": format!("https://api.github.com/app/installations/{id}/access_tokens"),
            "repositories_url": "https://api.github.com/installation/repositories",
            "html_url": format!("https://github.com/organizations/{owner}/settings/installations/{id}"),
            "permissions": {"issues": "write", "pull_requests": "write", "statuses": "write", "metadata": "read"},
            "events": ["pull_request", "issue_comment"],
            "created_at": "2025-01-02T03:04:05Z",
            "updated_at": "2025-01-02T03:04:05Z",
            "single_file_name": null,
        })
    }
}

/// The credential of `Authorization: <scheme> <credential>` for one of `schemes`.
fn credential(headers: &HeaderMap, schemes: &[&str]) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| schemes.iter().any(|s| scheme.eq_ignore_ascii_case(s)))
        .map(|(_, credential)| credential.trim().to_owned())
}

impl FakeGithub {
    /// A GitHub where App `app_id` (its public key in PEM) is installed for each
    /// `(owner, installation id)`; installation tokens live an hour by `clock`.
    pub fn app(
        app_id: u64,
        public_key_pem: &str,
        installations: &[(&str, u64)],
        clock: ClockFn,
    ) -> FakeGithub {
        let github = FakeGithub::new("");
        github.lock().app = Some(AppWorld {
            app_id,
            key: DecodingKey::from_rsa_pem(public_key_pem.as_bytes()).expect("public key PEM"),
            installations: installations
                .iter()
                .map(|(owner, id)| (owner.to_ascii_lowercase(), *id))
                .collect(),
            lifetime: chrono::Duration::hours(1),
            clock,
            issued: Vec::new(),
            lookups: 0,
            authorized: Vec::new(),
            refusals: Vec::new(),
        });
        github
    }

    fn with_app<T>(&self, f: impl FnOnce(&mut AppWorld) -> T) -> T {
        f(self
            .lock()
            .app
            .as_mut()
            .expect("the fake GitHub is in App mode"))
    }

    /// How long the tokens issued from now on live.
    pub fn set_token_lifetime(&self, lifetime: std::time::Duration) {
        self.with_app(|app| app.lifetime = chrono::Duration::from_std(lifetime).unwrap());
    }

    /// Every installation token issued, in order.
    pub fn tokens_issued(&self) -> Vec<Issued> {
        self.with_app(|app| app.issued.clone())
    }

    /// How many installation lookups (`GET /repos/{owner}/{repo}/installation`) were answered.
    pub fn installation_lookups(&self) -> usize {
        self.with_app(|app| app.lookups)
    }

    /// The REST requests let through, with their tokens, in order.
    pub fn authorized(&self) -> Vec<Authorized> {
        self.with_app(|app| app.authorized.clone())
    }

    /// Why requests were refused (401), in order.
    pub fn refusals(&self) -> Vec<String> {
        self.with_app(|app| app.refusals.clone())
    }

    /// Revokes every token issued so far.
    pub fn revoke_tokens(&self) {
        self.with_app(|app| app.issued.iter_mut().for_each(|t| t.revoked = true));
    }
}

/// `GET /repos/{owner}/{repo}/installation`
pub(super) async fn repo_installation(
    State(gh): State<FakeGithub>,
    Path((owner, _repo)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let mut world = gh.lock();
    let app = world.app.as_mut().ok_or_else(jwt_missing)?;
    app.check_jwt(&headers)?;
    let id = *app
        .installations
        .get(&owner.to_ascii_lowercase())
        .ok_or_else(not_found)?;
    app.lookups += 1;
    Ok(Json(app.installation_json(&owner, id)).into_response())
}

/// `GET /app/installations/{id}`
pub(super) async fn get_installation(
    State(gh): State<FakeGithub>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let mut world = gh.lock();
    let app = world.app.as_mut().ok_or_else(jwt_missing)?;
    app.check_jwt(&headers)?;
    let owner = app
        .installations
        .iter()
        .find(|(_, i)| **i == id)
        .map(|(owner, _)| owner.clone())
        .ok_or_else(not_found)?;
    Ok(Json(app.installation_json(&owner, id)).into_response())
}

/// `POST /app/installations/{id}/access_tokens`
pub(super) async fn create_token(
    State(gh): State<FakeGithub>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let mut world = gh.lock();
    let app = world.app.as_mut().ok_or_else(jwt_missing)?;
    app.check_jwt(&headers)?;
    if !app.installations.values().any(|i| *i == id) {
        return Err(not_found());
    }
    // GitHub's expiries are whole seconds.
    let expires_at = ((app.clock)() + app.lifetime).trunc_subsecs(0);
    let token = format!("ghs_{id}x{:032}", app.issued.len() + 1);
    app.issued.push(Issued {
        token: token.clone(),
        installation: id,
        expires_at,
        revoked: false,
    });
    let answer = json!({
        "token": token,
        "expires_at": expires_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "permissions": {"issues": "write", "pull_requests": "write", "statuses": "write", "metadata": "read"},
        "repository_selection": "all",
    });
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// A token-mode GitHub takes no JWT.
fn jwt_missing() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "A JSON web token could not be decoded",
    )
}

//! Shared harness for the simulator's HTTP tests: a small world served on 127.0.0.1:0 and a plain
//! reqwest client (no client model types, only serde_json values).
#![allow(dead_code)]

use std::net::SocketAddr;

use codegen_sentinel::sim::{SimConfig, SimServer, Simulator};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;

/// Token of user 101, member of orgs 7 and 9.
pub const TOKEN: &str = "tok-acme";
/// Token of user 201, member of org 8 only.
pub const OTHER_TOKEN: &str = "tok-globex";
pub const ORG: i64 = 7;
pub const OTHER_ORG: i64 = 8;
/// An org user 101 belongs to that has no repositories.
pub const EMPTY_ORG: i64 = 9;

pub struct Env {
    pub server: SimServer,
    pub sim: Simulator,
    pub http: reqwest::Client,
}

/// An answer: status, headers and the body parsed as JSON (`Null` when it is not JSON).
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

pub fn world(config: SimConfig) -> Simulator {
    let sim = Simulator::new(config);
    sim.add_org(ORG, "Acme");
    sim.add_org(OTHER_ORG, "Globex");
    sim.add_org(EMPTY_ORG, "Empty");
    sim.add_user(ORG, 101, "acme-ops");
    sim.add_user(ORG, 102, "alice");
    sim.add_user(EMPTY_ORG, 101, "acme-ops");
    sim.add_user(OTHER_ORG, 201, "globex-admin");
    sim.add_token(TOKEN, 101);
    sim.add_token(OTHER_TOKEN, 201);
    sim.add_repo(ORG, 301, "acme/firmware");
    sim.add_repo(ORG, 302, "acme/control");
    sim.add_repo(OTHER_ORG, 401, "globex/notes");
    sim.add_sandbox(ORG, 42, true);
    sim.add_sandbox(ORG, 43, false);
    sim
}

pub async fn start() -> Env {
    start_with(world(SimConfig::default())).await
}

pub async fn start_with(sim: Simulator) -> Env {
    let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    let server = sim.clone().serve(addr).await.expect("simulator binds");
    // No idle-pool timer: under paused time a pending timer lets the clock jump during I/O.
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_idle_timeout(None)
        .build()
        .expect("client builds");
    Env { server, sim, http }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.server.base_url, path)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self.http.request(method, self.url(path));
        if let Some(token) = token {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request completes");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body arrives");
        Answer {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, Some(TOKEN), None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(TOKEN), Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(TOKEN), Some(body))
            .await
    }

    /// Creates a run through the API and returns its id.
    pub async fn create_run(&self, prompt: &str) -> i64 {
        let answer = self
            .post(
                &format!("/v1/organizations/{ORG}/agent/run"),
                serde_json::json!({ "prompt": prompt }),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body["id"].as_i64().expect("run id")
    }

    pub async fn run(&self, id: i64) -> Value {
        let answer = self
            .get(&format!("/v1/organizations/{ORG}/agent/run/{id}"))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body
    }
}

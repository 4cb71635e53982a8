//! Test doubles of everything the executor talks to besides Codegen: a fake GitHub at the REST
//! paths octocrab calls (token or App mode), a webhook receiver, and fault switches with a request
//! log that can be put in front of any of them (the Codegen simulator included), served on
//! 127.0.0.1:0.
#![allow(dead_code, unused_imports)]

pub mod app;
pub mod chaos;
pub mod github;
pub mod net;
pub mod receiver;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use codegen_sentinel::clock::Clock;
use tokio::time::Instant;

pub use app::{Authorized, Issued};
pub use chaos::{by_path, one_scope, Chaos, Fault, Logged};
pub use github::FakeGithub;
pub use net::{serve, Served};
pub use receiver::{Delivery, Receiver};

/// Wall time that moves with tokio's clock, so paused-time tests move both together.
#[derive(Clone, Debug)]
pub struct TokioClock {
    base: DateTime<Utc>,
    start: Instant,
}

impl TokioClock {
    /// Starts at `base` now.
    pub fn starting_at(base: DateTime<Utc>) -> TokioClock {
        TokioClock {
            base,
            start: Instant::now(),
        }
    }

    /// Starts at 2025-06-21T11:20:00Z.
    pub fn new() -> TokioClock {
        TokioClock::starting_at(Utc.with_ymd_and_hms(2025, 6, 21, 11, 20, 0).unwrap())
    }

    /// The same clock as a plain function (for [`Chaos`]).
    pub fn func(&self) -> Arc<dyn Fn() -> DateTime<Utc> + Send + Sync> {
        let clock = self.clone();
        Arc::new(move || clock.now())
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = Instant::now().duration_since(self.start);
        self.base + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }
}

/// The fake GitHub behind fault switches, served; with its base URL.
pub async fn serve_github(github: &FakeGithub, chaos: &Chaos) -> Served {
    serve(chaos.wrap(github.router())).await
}

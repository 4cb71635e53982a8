//! Where events come from: the reconciling poller of the Codegen API (and, later, GitHub
//! webhooks and the cron scheduler).

pub mod observe;
pub mod poller;
pub mod scheduler;

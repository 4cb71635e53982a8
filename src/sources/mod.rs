//! Where events come from: the reconciling poller of the Codegen API, GitHub webhooks (and,
//! later, the cron scheduler).

pub mod observe;
pub mod poller;
pub mod webhook;

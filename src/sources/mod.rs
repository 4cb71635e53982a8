//! Where events come from: the reconciling poller of the Codegen API, GitHub webhooks, and the
//! cron scheduler of `schedule:` rules.

pub mod observe;
pub mod poller;
pub mod scheduler;
pub mod webhook;

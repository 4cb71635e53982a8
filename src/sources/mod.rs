//! Where events come from: the reconciling poller of the Codegen API, the cron scheduler of
//! `schedule:` rules (and, later, GitHub webhooks).

pub mod observe;
pub mod poller;
pub mod scheduler;

//! systemd integration: `Type=notify` readiness once the first reconcile is done, and watchdog
//! pings while the daemon's loops are alive. Both do nothing outside systemd (no NOTIFY_SOCKET).

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::sources::poller::PollerHealth;
use crate::store::Store;

/// How often readiness is checked before the first reconcile is done.
const READY_CHECK: Duration = Duration::from_millis(100);

/// Tells systemd we are ready once the pollers have reconciled, then pings the watchdog (when
/// `WATCHDOG_USEC` is set) at half its period for as long as the runtime is responsive and the
/// store answers. A loop that ends stops the daemon, and with it the pings.
pub async fn run_notifier(health: Arc<PollerHealth>, store: Store, cancel: CancellationToken) {
    loop {
        if health.first_reconcile_done() {
            break;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(READY_CHECK) => {}
        }
    }
    notify(&[NotifyState::Ready, NotifyState::Status("Polling")]);
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        cancel.cancelled().await;
        notify(&[NotifyState::Stopping]);
        return;
    }
    let period = Duration::from_micros(usec) / 2;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(period) => {}
        }
        match store.meta("schema_version") {
            Ok(_) => notify(&[NotifyState::Watchdog]),
            Err(error) => {
                tracing::error!(%error, "Store check failed; withholding the watchdog ping")
            }
        }
    }
    notify(&[NotifyState::Stopping]);
}

fn notify(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(false, states) {
        tracing::debug!(%error, "sd_notify failed");
    }
}

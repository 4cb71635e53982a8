//! Waiting for the signals that stop a long-running command.

use tokio_util::sync::CancellationToken;

/// Cancels `shutdown` on the first SIGTERM/SIGINT; a second one exits the process at once.
pub async fn stop_on_signals(shutdown: CancellationToken) {
    if let Err(error) = wait_for_signal().await {
        tracing::error!(%error, "Cannot listen for signals; stop the process with SIGKILL");
        return;
    }
    tracing::info!("Signal received; stopping (send it again to exit at once)");
    shutdown.cancel();
    if wait_for_signal().await.is_ok() {
        tracing::warn!("Second signal; exiting without waiting");
        std::process::exit(130);
    }
}

#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}

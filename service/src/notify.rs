//! systemd readiness for `Type=notify` units. Outside systemd
//! (`NOTIFY_SOCKET` unset) these do nothing.

use sd_notify::NotifyState;

/// Tells systemd the service is ready: call once it can serve.
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// Tells systemd the service is reloading its configuration.
pub fn reloading() {
    send(&[NotifyState::Reloading]);
}

/// Tells systemd the service is stopping.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

fn send(state: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(error) = sd_notify::notify(false, state) {
        tracing::warn!(%error, "Could not notify systemd.");
    }
}

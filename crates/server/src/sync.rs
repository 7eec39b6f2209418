//! Two small helpers every part of the server uses for shared data and for
//! shutdown: a mutex lock that survives poisoning, and waiting for the stop
//! signal.

use std::sync::Mutex;

use tokio::sync::watch;

/// Locks a std mutex, recovering the data if a panicking thread poisoned it:
/// every critical section leaves its data consistent between statements, so
/// the data is still good.
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Completes once the shutdown signal is set. The signal's borrow guard is
/// dropped here, so callers may hold this across awaits in `select!` branches.
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

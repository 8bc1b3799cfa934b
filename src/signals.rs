//! Signals: SIGTERM and SIGINT ask for a graceful stop, SIGHUP for a configuration reload.
//!
//! signal-hook delivers them on a thread of its own; they reach the async side as messages so
//! the daemon's main loop handles them like any other event.

use crate::error::StartError;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tokio::sync::mpsc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    Stop,
    Reload,
}

/// Starts listening; the receiver yields each signal as it arrives.
pub(crate) fn listen() -> Result<mpsc::UnboundedReceiver<Signal>, StartError> {
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| StartError::new("cannot install signal handlers").because(e))?;
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let message = if signal == SIGHUP { Signal::Reload } else { Signal::Stop };
                if tx.send(message).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| StartError::new("cannot start the signal thread").because(e))?;
    Ok(rx)
}

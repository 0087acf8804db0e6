//! systemd's notification protocol (`sd_notify`): `READY=1` once the gateway listens,
//! `WATCHDOG=1` while every core keeps going round its loop, `STOPPING=1` when it stops.
//! A datagram to the socket named by `$NOTIFY_SOCKET` (a path, or an abstract name after
//! `@`); with no such variable (not started by systemd) every call does nothing.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends `state` (e.g. `"READY=1"`) to systemd. `Ok(false)` when not under systemd.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    send(&path, state)?;
    Ok(true)
}

/// Sends `state` to the notification socket `path` (`@name`: an abstract socket).
pub fn send(path: &std::ffi::OsStr, state: &str) -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        socket.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        socket.send_to(state.as_bytes(), path)?;
    }
    Ok(())
}

/// The interval at which systemd expects `WATCHDOG=1` (half of `$WATCHDOG_USEC`, as
/// sd_watchdog_enabled(3) advises), if the watchdog is on for this process.
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var("WATCHDOG_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        && pid != std::process::id()
    {
        return None;
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// Sends `state`, logging a failure: a notification is never worth stopping the gateway
/// for.
pub fn notify_or_log(state: &str) {
    if let Err(e) = notify(state) {
        tracing::warn!(state, error = %e, "could not notify systemd");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abstract_socket_names_are_understood() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("twofold-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let listener = UnixDatagram::bind_addr(&addr).unwrap_or_else(|e| panic!("{e}"));
        send(std::ffi::OsStr::new(&format!("@{name}")), "WATCHDOG=1")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }

    #[test]
    fn notifies_a_listening_socket() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap_or_else(|e| panic!("{e}"));
        send(path.as_os_str(), "READY=1").unwrap_or_else(|e| panic!("{e}"));
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&buf[..n], b"READY=1");
    }
}

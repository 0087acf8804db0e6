//! Process hardening applied at start-up, before any key is loaded: no core dumps (a core
//! file would hold bucket and data keys in the clear) and no ptrace attach by other
//! processes of the same user.

/// Turns off core dumps for this process: `RLIMIT_CORE` = 0 and `PR_SET_DUMPABLE` = 0.
/// Returns a description of what could not be done (the process continues either way;
/// the caller decides whether to warn).
#[allow(unsafe_code)]
pub fn disable_core_dumps() -> Result<(), String> {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `setrlimit` reads one properly initialised `rlimit` for the duration of the
    // call; it touches no memory of ours afterwards.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
    if rc != 0 {
        return Err(format!(
            "setrlimit(RLIMIT_CORE, 0): {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: PR_SET_DUMPABLE takes plain integer arguments and no pointers.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if rc != 0 {
        return Err(format!(
            "prctl(PR_SET_DUMPABLE, 0): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn core_dumps_are_off_after_the_call() {
        super::disable_core_dumps().unwrap();
        let mut lim = libc::rlimit {
            rlim_cur: 1,
            rlim_max: 1,
        };
        #[allow(unsafe_code)]
        // SAFETY: `getrlimit` writes one `rlimit` into memory we own.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut lim) };
        assert_eq!(rc, 0);
        assert_eq!(lim.rlim_cur, 0);
    }
}

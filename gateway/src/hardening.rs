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

/// Raises this process's soft limit on open files to its hard limit (systemd's unit sets
/// both; a shell often leaves the soft one at 1024). Returns the soft limit now in force.
#[allow(unsafe_code)]
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes one `rlimit` into memory we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `setrlimit` reads one properly initialised `rlimit` during the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        lim = raised;
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_open_files_limit_is_raised_to_the_hard_limit() {
        let soft = super::raise_open_files_limit().unwrap();
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        #[allow(unsafe_code)]
        // SAFETY: `getrlimit` writes one `rlimit` into memory we own.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
        assert_eq!(rc, 0);
        assert_eq!((soft, lim.rlim_cur), (lim.rlim_max, lim.rlim_max));
    }

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

/// Bytes of each region [`LockedKey`] slots are carved from: 2048 keys.
pub const KEY_REGION_BYTES: usize = 64 * 1024;
const KEY_BYTES: usize = 32;

/// A 32-byte key held in memory that is excluded from core dumps (`MADV_DONTDUMP`) and
/// locked into RAM (`mlock`, so it is never written to swap) where the host allows it, and
/// zeroised when dropped. Bucket keys kept in the caches and key-file KEKs live in these;
/// they outlive requests, so they are what a dump or swap would otherwise catch.
///
/// Slots come from 64 KiB anonymous mappings, taken as needed and never given back (the
/// number of keys alive is bounded by the caches). Where `mmap` fails, a slot comes from the
/// heap instead; where `madvise` or `mlock` fail (an 8 MiB `RLIMIT_MEMLOCK` holds 128
/// regions), the key is still zeroised and core dumps are still off process-wide
/// ([`disable_core_dumps`]); [`key_memory_status`] tells which protections hold.
pub struct LockedKey {
    slot: std::ptr::NonNull<[u8; KEY_BYTES]>,
}

// SAFETY: a `LockedKey` owns its slot exclusively (no other `LockedKey` or pool entry points
// at it while it lives), so moving it to another thread moves sole ownership; shared
// references only read it.
#[allow(unsafe_code)]
unsafe impl Send for LockedKey {}
// SAFETY: `&LockedKey` gives only read access to the slot; writes need `&mut`.
#[allow(unsafe_code)]
unsafe impl Sync for LockedKey {}

/// Which protections the key memory has got so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyMemoryStatus {
    /// Regions mapped.
    pub regions: usize,
    /// Regions excluded from core dumps.
    pub dontdump: usize,
    /// Regions locked into RAM.
    pub locked: usize,
    /// Slots that had to come from the ordinary heap.
    pub heap_slots: usize,
}

struct KeyPool {
    free: Vec<std::ptr::NonNull<[u8; KEY_BYTES]>>,
    status: KeyMemoryStatus,
}

// SAFETY: the pool only stores pointers to free slots, handed out under its mutex.
#[allow(unsafe_code)]
unsafe impl Send for KeyPool {}

static KEY_POOL: std::sync::Mutex<KeyPool> = std::sync::Mutex::new(KeyPool {
    free: Vec::new(),
    status: KeyMemoryStatus {
        regions: 0,
        dontdump: 0,
        locked: 0,
        heap_slots: 0,
    },
});

fn key_pool() -> std::sync::MutexGuard<'static, KeyPool> {
    KEY_POOL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The protections key memory has: regions mapped, excluded from dumps, locked.
pub fn key_memory_status() -> KeyMemoryStatus {
    key_pool().status
}

impl KeyPool {
    #[allow(unsafe_code)]
    fn take(&mut self) -> std::ptr::NonNull<[u8; KEY_BYTES]> {
        if let Some(slot) = self.free.pop() {
            return slot;
        }
        // SAFETY: an anonymous private mapping with no address hint: it aliases nothing.
        let region = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                KEY_REGION_BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if region == libc::MAP_FAILED {
            self.status.heap_slots += 1;
            let leaked: &'static mut [u8; KEY_BYTES] = Box::leak(Box::new([0u8; KEY_BYTES]));
            return std::ptr::NonNull::from(leaked);
        }
        self.status.regions += 1;
        // SAFETY: `region` is the start of a mapping of KEY_REGION_BYTES we just made.
        if unsafe { libc::madvise(region, KEY_REGION_BYTES, libc::MADV_DONTDUMP) } == 0 {
            self.status.dontdump += 1;
        }
        // SAFETY: as above; mlock only pins the pages.
        if unsafe { libc::mlock(region, KEY_REGION_BYTES) } == 0 {
            self.status.locked += 1;
        } else if self.status.regions == 1 {
            tracing::warn!(
                error = %std::io::Error::last_os_error(),
                "cannot lock key memory into RAM (raise LimitMEMLOCK); keys stay out of core dumps"
            );
        }
        let base = region.cast::<[u8; KEY_BYTES]>();
        for i in (0..KEY_REGION_BYTES / KEY_BYTES).rev() {
            // SAFETY: `i * KEY_BYTES` stays inside the mapping; the pointer is non-null
            // because `base` is (mmap succeeded) and aligned because the mapping is
            // page-aligned and `[u8; 32]` needs alignment 1.
            let slot = unsafe { std::ptr::NonNull::new_unchecked(base.add(i)) };
            self.free.push(slot);
        }
        self.free
            .pop()
            .unwrap_or_else(|| std::ptr::NonNull::from(Box::leak(Box::new([0u8; KEY_BYTES]))))
    }
}

impl LockedKey {
    /// A copy of `key` in protected memory.
    #[allow(unsafe_code)]
    pub fn new(key: &[u8; KEY_BYTES]) -> Self {
        let mut slot = key_pool().take();
        // SAFETY: the slot was free, so nothing else refers to it; it is valid for writes.
        unsafe { slot.as_mut() }.copy_from_slice(key);
        Self { slot }
    }
}

impl std::ops::Deref for LockedKey {
    type Target = [u8; KEY_BYTES];

    #[allow(unsafe_code)]
    fn deref(&self) -> &[u8; KEY_BYTES] {
        // SAFETY: the slot is owned by `self` and initialised in `new`.
        unsafe { self.slot.as_ref() }
    }
}

impl std::ops::DerefMut for LockedKey {
    #[allow(unsafe_code)]
    fn deref_mut(&mut self) -> &mut [u8; KEY_BYTES] {
        // SAFETY: the slot is owned by `self`, and `&mut self` makes this the only access.
        unsafe { self.slot.as_mut() }
    }
}

impl Clone for LockedKey {
    fn clone(&self) -> Self {
        Self::new(self)
    }
}

impl Drop for LockedKey {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        (**self).zeroize();
        key_pool().free.push(self.slot);
    }
}

impl std::fmt::Debug for LockedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockedKey(<hidden>)")
    }
}

impl PartialEq for LockedKey {
    fn eq(&self, other: &Self) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self[..], &other[..]).is_ok()
    }
}

impl Eq for LockedKey {}

#[cfg(test)]
mod key_memory_tests {
    use super::*;

    /// The VmFlags of the mapping that holds `addr`, from /proc/self/smaps.
    fn vm_flags(addr: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && let Some((a, b)) = range.split_once('-')
                && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                inside = (a..b).contains(&addr);
                continue;
            }
            if inside && let Some(flags) = line.strip_prefix("VmFlags:") {
                return flags.trim().to_owned();
            }
        }
        String::new()
    }

    #[test]
    fn keys_live_in_pages_kept_out_of_core_dumps_and_are_zeroised_on_drop() {
        let key = LockedKey::new(&[7u8; 32]);
        assert_eq!(*key, [7u8; 32]);
        let addr = key.slot.as_ptr() as usize;
        let status = key_memory_status();
        assert!(status.regions >= 1, "{status:?}");
        let flags = vm_flags(addr);
        assert!(
            flags.split(' ').any(|f| f == "dd"),
            "not MADV_DONTDUMP: {flags}"
        );
        if status.locked == status.regions {
            assert!(flags.split(' ').any(|f| f == "lo"), "not locked: {flags}");
        }
        let copy = key.clone();
        assert_eq!(copy, key);
        assert_ne!(copy.slot, key.slot);
        let slot = key.slot;
        drop(key);
        // The slot is back in the pool, zeroised (checked under the pool's lock, so that no
        // other test can take it meanwhile).
        let pool = key_pool();
        if pool.free.contains(&slot) {
            #[allow(unsafe_code)]
            // SAFETY: the region is never unmapped and the slot is free: nothing else
            // refers to it while we hold the pool's lock.
            let after = unsafe { *slot.as_ptr() };
            assert_eq!(after, [0u8; 32], "not zeroised");
        }
    }
}

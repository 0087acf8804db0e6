//! Process hardening applied at start-up, before any key is loaded: no core dumps (a core
//! file would hold bucket and data keys in the clear) and no ptrace attach by other
//! processes of the same user.

/// Turns off core dumps for this process: `RLIMIT_CORE` = 0 and `PR_SET_DUMPABLE` = 0.
/// Returns a description of what could not be done (the process continues either way;
/// the caller decides whether to warn).
pub fn disable_core_dumps() -> Result<(), String> {
    use nix::sys::resource::{Resource, setrlimit};
    setrlimit(Resource::RLIMIT_CORE, 0, 0)
        .map_err(|e| format!("setrlimit(RLIMIT_CORE, 0): {}", std::io::Error::from(e)))?;
    nix::sys::prctl::set_dumpable(false)
        .map_err(|e| format!("prctl(PR_SET_DUMPABLE, 0): {}", std::io::Error::from(e)))?;
    Ok(())
}

/// Raises this process's soft limit on open files to its hard limit (systemd's unit sets
/// both; a shell often leaves the soft one at 1024). Returns the soft limit now in force.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
        return Ok(hard);
    }
    Ok(soft)
}

#[cfg(test)]
mod tests {
    use nix::sys::resource::{Resource, getrlimit};

    #[test]
    fn the_open_files_limit_is_raised_to_the_hard_limit() {
        let soft = super::raise_open_files_limit().unwrap();
        let (cur, max) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!((soft, cur), (max, max));
    }

    #[test]
    fn core_dumps_are_off_after_the_call() {
        super::disable_core_dumps().unwrap();
        let (cur, _) = getrlimit(Resource::RLIMIT_CORE).unwrap();
        assert_eq!(cur, 0);
        assert!(!nix::sys::prctl::get_dumpable().unwrap());
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
/// number of keys alive is bounded by the caches). Where the mapping fails, a slot comes
/// from the heap instead; where `madvise` or `mlock` fail (an 8 MiB `RLIMIT_MEMLOCK` holds
/// 128 regions), the key is still zeroised and core dumps are still off process-wide
/// ([`disable_core_dumps`]); [`key_memory_status`] tells which protections hold.
pub struct LockedKey {
    /// Always `Some` while the key lives; `Drop` takes the slot back to the pool.
    slot: Option<Slot>,
}

/// One key's slot: a piece of a region that is never unmapped (or of a leaked heap box),
/// owned by exactly one [`LockedKey`] or by the pool's free list.
type Slot = &'static mut [u8; KEY_BYTES];

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
    free: Vec<Slot>,
    status: KeyMemoryStatus,
}

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

fn heap_slot() -> Slot {
    Box::leak(Box::new([0u8; KEY_BYTES]))
}

impl KeyPool {
    fn take(&mut self) -> Slot {
        if let Some(slot) = self.free.pop() {
            return slot;
        }
        let Ok(region) = memmap2::MmapMut::map_anon(KEY_REGION_BYTES) else {
            self.status.heap_slots += 1;
            return heap_slot();
        };
        self.status.regions += 1;
        if region.advise(memmap2::Advice::DontDump).is_ok() {
            self.status.dontdump += 1;
        }
        match region.lock() {
            Ok(()) => self.status.locked += 1,
            Err(error) if self.status.regions == 1 => tracing::warn!(
                %error,
                "cannot lock key memory into RAM (raise LimitMEMLOCK); keys stay out of core dumps"
            ),
            Err(_) => {}
        }
        // The region is never unmapped: leaking the mapping makes its bytes `'static`, and
        // each 32-byte chunk becomes one slot.
        let region: &'static mut memmap2::MmapMut = Box::leak(Box::new(region));
        let (slots, _) = region.as_chunks_mut::<KEY_BYTES>();
        self.free.extend(slots.iter_mut().rev());
        self.free.pop().unwrap_or_else(heap_slot)
    }
}

impl LockedKey {
    /// A copy of `key` in protected memory.
    pub fn new(key: &[u8; KEY_BYTES]) -> Self {
        let slot = key_pool().take();
        slot.copy_from_slice(key);
        Self { slot: Some(slot) }
    }
}

impl std::ops::Deref for LockedKey {
    type Target = [u8; KEY_BYTES];

    fn deref(&self) -> &[u8; KEY_BYTES] {
        match &self.slot {
            Some(slot) => slot,
            // `slot` is only taken in `drop`.
            None => unreachable!("a live LockedKey without its slot"),
        }
    }
}

impl std::ops::DerefMut for LockedKey {
    fn deref_mut(&mut self) -> &mut [u8; KEY_BYTES] {
        match &mut self.slot {
            Some(slot) => slot,
            // `slot` is only taken in `drop`.
            None => unreachable!("a live LockedKey without its slot"),
        }
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
        if let Some(slot) = self.slot.take() {
            slot.zeroize();
            key_pool().free.push(slot);
        }
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
        let addr = key.as_ptr() as usize;
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
        assert_ne!(copy.as_ptr(), key.as_ptr());
        drop(key);
        // The slot is back in the pool, zeroised (checked under the pool's lock, so that no
        // other test can take it meanwhile).
        let pool = key_pool();
        let back = pool.free.iter().find(|slot| slot.as_ptr() as usize == addr);
        if let Some(slot) = back {
            assert_eq!(**slot, [0u8; 32], "not zeroised");
        }
    }
}

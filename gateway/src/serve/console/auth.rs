//! Console logins and sessions. A session is a random 256-bit token in an `HttpOnly`,
//! `SameSite=Strict` cookie; the table keeps only its SHA-256, so neither a memory dump of
//! the table nor the lookup's timing gives a usable token. Sessions end [`Sessions::new`]'s
//! lifetime after their login, at logout, or when the table is full and they are the
//! oldest. The cookie itself has no expiry (the browser drops it when it closes): the
//! server ends sessions, and remembers an ended one for another lifetime, so that a page
//! opened with it says the session expired rather than that nobody logged in. Every action
//! also needs the session's CSRF token in a header. Failed logins are throttled per client
//! address.

use sha2::Digest;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Sessions kept at once; a login beyond it ends the oldest.
pub const CONSOLE_SESSIONS_MAX: usize = 256;
/// Failed logins one address may make within [`LOGIN_WINDOW`] before it is refused
/// without a password check.
pub const LOGIN_FAILURES_MAX: u32 = 5;
/// The window of [`LOGIN_FAILURES_MAX`].
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// Client addresses whose failures are tracked at once (the oldest is forgotten).
const LOGIN_TRACKED_MAX: usize = 1024;
/// The session cookie's name.
pub const COOKIE: &str = "twofold_console";

/// One logged-in operator.
#[derive(Debug, Clone)]
pub struct Session {
    /// The operator's name.
    pub operator: String,
    /// Whether the operator may act.
    pub act: bool,
    /// The token actions must carry in `X-Twofold-CSRF`.
    pub csrf: String,
    /// When it ends.
    pub expires: Instant,
    /// When it ends, in Unix seconds.
    pub expires_unix: u64,
}

/// The sessions of the console.
#[derive(Debug)]
pub struct Sessions {
    lifetime: Duration,
    by_hash: HashMap<[u8; 32], Session>,
    failures: HashMap<IpAddr, (u32, Instant)>,
}

fn digest(token: &str) -> [u8; 32] {
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// 32 random bytes in hex.
fn random_token() -> Result<String, String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| format!("the random source: {e}"))?;
    Ok(hex::encode(b))
}

impl Sessions {
    /// No sessions; each will last `lifetime`.
    pub fn new(lifetime: Duration) -> Self {
        Self {
            lifetime,
            by_hash: HashMap::new(),
            failures: HashMap::new(),
        }
    }

    /// Opens a session for `operator`; returns its token (the cookie's value).
    pub fn open(&mut self, operator: &str, act: bool) -> Result<(String, Session), String> {
        let now = Instant::now();
        let lifetime = self.lifetime;
        self.by_hash.retain(|_, s| s.expires + lifetime > now);
        if self.by_hash.len() >= CONSOLE_SESSIONS_MAX
            && let Some(oldest) = self
                .by_hash
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| *k)
        {
            self.by_hash.remove(&oldest);
        }
        let token = random_token()?;
        let session = Session {
            operator: operator.to_owned(),
            act,
            csrf: random_token()?,
            expires: now + self.lifetime,
            expires_unix: crate::sigv4::unix_now() + self.lifetime.as_secs(),
        };
        self.by_hash.insert(digest(&token), session.clone());
        Ok((token, session))
    }

    /// The live session of `token`; an expired one reads as `Err(true)` (for one more
    /// lifetime), an unknown one as `Err(false)`.
    pub fn get(&mut self, token: &str) -> Result<Session, bool> {
        let key = digest(token);
        let now = Instant::now();
        match self.by_hash.get(&key) {
            Some(s) if s.expires > now => Ok(s.clone()),
            Some(s) if s.expires + self.lifetime > now => Err(true),
            Some(_) => {
                self.by_hash.remove(&key);
                Err(false)
            }
            None => Err(false),
        }
    }

    /// Ends the session of `token`.
    pub fn close(&mut self, token: &str) {
        self.by_hash.remove(&digest(token));
    }

    /// Whether `from` has failed too often to try again now.
    pub fn throttled(&mut self, from: IpAddr) -> bool {
        match self.failures.get(&from) {
            Some((n, since)) if since.elapsed() < LOGIN_WINDOW => *n >= LOGIN_FAILURES_MAX,
            Some(_) => {
                self.failures.remove(&from);
                false
            }
            None => false,
        }
    }

    /// Counts a failed login from `from`.
    pub fn failed(&mut self, from: IpAddr) {
        if self.failures.len() >= LOGIN_TRACKED_MAX && !self.failures.contains_key(&from) {
            self.failures
                .retain(|_, (_, since)| since.elapsed() < LOGIN_WINDOW);
            if self.failures.len() >= LOGIN_TRACKED_MAX
                && let Some(oldest) = self
                    .failures
                    .iter()
                    .min_by_key(|(_, (_, since))| *since)
                    .map(|(k, _)| *k)
            {
                self.failures.remove(&oldest);
            }
        }
        let entry = self.failures.entry(from).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= LOGIN_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_expire_and_close() {
        let mut s = Sessions::new(Duration::from_millis(50));
        let (token, session) = s.open("alice", true).unwrap();
        assert_eq!(token.len(), 64);
        assert_ne!(token, session.csrf);
        assert_eq!(s.get(&token).unwrap().operator, "alice");
        assert!(!s.get("nope").unwrap_err());
        std::thread::sleep(Duration::from_millis(60));
        assert!(s.get(&token).unwrap_err());
        // Still said to be expired after another login and another look...
        s.open("carol", false).unwrap();
        assert!(s.get(&token).unwrap_err());
        // ...until a second lifetime has passed.
        std::thread::sleep(Duration::from_millis(50));
        assert!(!s.get(&token).unwrap_err());
        let (token, _) = s.open("bob", false).unwrap();
        s.close(&token);
        assert!(s.get(&token).is_err());
    }

    #[test]
    fn the_table_is_bounded() {
        let mut s = Sessions::new(Duration::from_secs(60));
        let (first, _) = s.open("a", false).unwrap();
        for _ in 0..CONSOLE_SESSIONS_MAX {
            s.open("a", false).unwrap();
        }
        assert_eq!(s.by_hash.len(), CONSOLE_SESSIONS_MAX);
        assert!(s.get(&first).is_err());
    }

    #[test]
    fn failed_logins_are_throttled_per_address() {
        let mut s = Sessions::new(Duration::from_secs(60));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..LOGIN_FAILURES_MAX {
            assert!(!s.throttled(a));
            s.failed(a);
        }
        assert!(s.throttled(a));
        assert!(!s.throttled(b));
    }

    #[test]
    fn cookies_and_comparison() {
        let h = "a=1; twofold_console=abc; b=2";
        assert_eq!(cookie(h, COOKIE), Some("abc"));
        assert_eq!(cookie("x=1", COOKIE), None);
        let same = |a: &str, b: &str| crate::envelope::constant_time_eq(a.as_bytes(), b.as_bytes());
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}

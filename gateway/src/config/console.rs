//! `[console]` and `[[console.operator]]`: the operators' web console on the admin listener
//! (docs/operations.md, "Console"). Operators log in with a name and a password whose
//! PBKDF2-HMAC-SHA256 hash is in the file (`twofold console-password` writes one); the file
//! never holds a console password itself.

use serde::Deserialize;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Most operators one configuration may list.
pub const CONSOLE_OPERATORS_MAX: usize = 64;
/// Default lifetime of a console session, from its login.
pub const CONSOLE_SESSION_SECS_DEFAULT: u64 = 900;
/// Shortest session lifetime `session_secs` accepts.
pub const CONSOLE_SESSION_SECS_MIN: u64 = 60;
/// Longest session lifetime `session_secs` accepts (a working day).
pub const CONSOLE_SESSION_SECS_MAX: u64 = 12 * 3600;
/// Default folder of the console's audit log and job records.
pub const CONSOLE_STATE_DIR_DEFAULT: &str = "/var/lib/twofold/console";
/// Fewest PBKDF2 iterations a password hash may have.
pub const PBKDF2_ITERATIONS_MIN: u32 = 100_000;
/// Iterations `twofold console-password` uses (OWASP's figure for PBKDF2-HMAC-SHA256).
pub const PBKDF2_ITERATIONS_DEFAULT: u32 = 600_000;
/// Most iterations a hash may ask for: a login must not cost seconds of the admin core.
pub const PBKDF2_ITERATIONS_MAX: u32 = 2_000_000;
/// Bytes of salt in a new password hash.
const SALT_BYTES: usize = 16;
/// Bytes of the derived hash.
const HASH_BYTES: usize = 32;
/// Scheme name at the head of a password hash.
const SCHEME: &str = "pbkdf2-sha256";

/// `[console]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleFile {
    /// Seconds a session lasts from its login.
    pub session_secs: u64,
    /// Folder of the audit log (`audit.jsonl`) and the job records (`jobs/`).
    pub state_dir: PathBuf,
    /// Serve the console over plain HTTP on an admin address that is not loopback.
    pub plain_http: bool,
    /// `[[console.operator]]`
    pub operator: Vec<OperatorFile>,
}

impl Default for ConsoleFile {
    fn default() -> Self {
        Self {
            session_secs: CONSOLE_SESSION_SECS_DEFAULT,
            state_dir: PathBuf::from(CONSOLE_STATE_DIR_DEFAULT),
            plain_http: false,
            operator: Vec::new(),
        }
    }
}

/// `[[console.operator]]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OperatorFile {
    /// The name the operator logs in with.
    pub name: String,
    /// `pbkdf2-sha256$ITERATIONS$SALT$HASH` (standard base64), from `twofold console-password`.
    pub password_hash: String,
    /// May start, pause and resume jobs; without it the operator only looks.
    pub act: bool,
}

/// The validated `[console]`.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// Who may log in.
    pub operators: Vec<Operator>,
    /// How long a session lasts from its login.
    pub session: Duration,
    /// Folder of the audit log and the job records.
    pub state_dir: PathBuf,
}

/// One operator who may log in.
#[derive(Debug, Clone)]
pub struct Operator {
    /// The login name.
    pub name: String,
    /// The password's hash.
    pub hash: PasswordHash,
    /// May act (start, pause, resume jobs).
    pub act: bool,
}

/// A PBKDF2-HMAC-SHA256 password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PasswordHash({SCHEME}, {} iterations)", self.iterations)
    }
}

impl PasswordHash {
    /// Parses `pbkdf2-sha256$ITERATIONS$SALT$HASH`.
    pub fn parse(text: &str) -> Result<Self, String> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let parts: Vec<&str> = text.trim().split('$').collect();
        let [scheme, iterations, salt, hash] = parts.as_slice() else {
            return Err(format!(
                "not {SCHEME}$ITERATIONS$SALT$HASH (make one with `twofold console-password`)"
            ));
        };
        if *scheme != SCHEME {
            return Err(format!("scheme {scheme:?} is not {SCHEME:?}"));
        }
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| format!("iterations {iterations:?} is not a number"))?;
        if !(PBKDF2_ITERATIONS_MIN..=PBKDF2_ITERATIONS_MAX).contains(&iterations) {
            return Err(format!(
                "{iterations} iterations: {PBKDF2_ITERATIONS_MIN} to {PBKDF2_ITERATIONS_MAX}"
            ));
        }
        let salt = b64
            .decode(salt)
            .map_err(|_| "the salt is not base64".to_owned())?;
        let hash = b64
            .decode(hash)
            .map_err(|_| "the hash is not base64".to_owned())?;
        if salt.len() < SALT_BYTES || hash.len() != HASH_BYTES {
            return Err(format!(
                "needs at least {SALT_BYTES} bytes of salt and a {HASH_BYTES}-byte hash"
            ));
        }
        Ok(Self {
            iterations: NonZeroU32::new(iterations).ok_or("0 iterations")?,
            salt,
            hash,
        })
    }

    /// A new hash of `password` with a random salt.
    pub fn generate(password: &str, iterations: u32) -> Result<String, String> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let rounds =
            NonZeroU32::new(iterations.max(PBKDF2_ITERATIONS_MIN)).ok_or("0 iterations")?;
        let mut salt = [0u8; SALT_BYTES];
        getrandom::fill(&mut salt).map_err(|e| format!("the salt: {e}"))?;
        let mut hash = [0u8; HASH_BYTES];
        aws_lc_rs::pbkdf2::derive(
            aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
            rounds,
            &salt,
            password.as_bytes(),
            &mut hash,
        );
        Ok(format!(
            "{SCHEME}${rounds}${}${}",
            b64.encode(salt),
            b64.encode(hash)
        ))
    }

    /// Whether `password` is the one hashed (compared in constant time by AWS-LC).
    pub fn verify(&self, password: &str) -> bool {
        aws_lc_rs::pbkdf2::verify(
            aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
            self.iterations,
            &self.salt,
            password.as_bytes(),
            &self.hash,
        )
        .is_ok()
    }
}

/// Whether `name` may name an operator: 1 to 64 of `A-Z a-z 0-9 . _ @ -`.
pub fn operator_name_is_valid(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
}

/// Validates `[console]`. `admin_plain_non_loopback`: the admin listener serves plain HTTP
/// on an address other than loopback.
pub fn validate(
    file: ConsoleFile,
    admin_plain_non_loopback: bool,
    base: &Path,
) -> Result<ConsoleSettings, (String, String)> {
    let field = |f: &str, m: String| (format!("console.{f}"), m);
    if !(CONSOLE_SESSION_SECS_MIN..=CONSOLE_SESSION_SECS_MAX).contains(&file.session_secs) {
        return Err(field(
            "session_secs",
            format!("{CONSOLE_SESSION_SECS_MIN} to {CONSOLE_SESSION_SECS_MAX}"),
        ));
    }
    if admin_plain_non_loopback && !file.plain_http {
        return Err(field(
            "plain_http",
            "the admin listener serves plain HTTP beyond loopback: give [admin] tls, or set \
             plain_http = true to send console passwords unencrypted"
                .into(),
        ));
    }
    if file.operator.is_empty() || file.operator.len() > CONSOLE_OPERATORS_MAX {
        return Err(field(
            "operator",
            format!("list 1 to {CONSOLE_OPERATORS_MAX} [[console.operator]]"),
        ));
    }
    let mut operators: Vec<Operator> = Vec::with_capacity(file.operator.len());
    for (i, o) in file.operator.into_iter().enumerate() {
        if !operator_name_is_valid(&o.name) {
            return Err(field(
                &format!("operator[{i}].name"),
                "1 to 64 of A-Z a-z 0-9 . _ @ -".into(),
            ));
        }
        if operators.iter().any(|p| p.name == o.name) {
            return Err(field(
                &format!("operator[{i}].name"),
                format!("{:?} is listed twice", o.name),
            ));
        }
        let hash = PasswordHash::parse(&o.password_hash)
            .map_err(|m| field(&format!("operator[{i}].password_hash"), m))?;
        operators.push(Operator {
            name: o.name,
            hash,
            act: o.act,
        });
    }
    let state_dir = match file.state_dir.is_absolute() {
        true => file.state_dir,
        false => base.join(file.state_dir),
    };
    Ok(ConsoleSettings {
        operators,
        session: Duration::from_secs(file.session_secs),
        state_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, hash: &str) -> ConsoleFile {
        ConsoleFile {
            operator: vec![OperatorFile {
                name: name.into(),
                password_hash: hash.into(),
                act: false,
            }],
            ..ConsoleFile::default()
        }
    }

    #[test]
    fn a_new_hash_verifies_its_password_only() {
        let text = PasswordHash::generate("correct horse", PBKDF2_ITERATIONS_MIN).unwrap();
        let hash = PasswordHash::parse(&text).unwrap();
        assert!(hash.verify("correct horse"));
        assert!(!hash.verify("correct hors"));
        assert!(!hash.verify(""));
        assert!(!format!("{hash:?}").contains(&text[30..]));
    }

    #[test]
    fn malformed_hashes_are_refused() {
        let good = PasswordHash::generate("pw", PBKDF2_ITERATIONS_MIN).unwrap();
        let parts: Vec<&str> = good.split('$').collect();
        for bad in [
            "",
            "pw",
            &format!("sha1${}${}${}", parts[1], parts[2], parts[3]),
            &format!("{SCHEME}$1000${}${}", parts[2], parts[3]),
            &format!("{SCHEME}$x${}${}", parts[2], parts[3]),
            &format!("{SCHEME}${}$!!${}", parts[1], parts[3]),
            &format!("{SCHEME}${}${}$AAAA", parts[1], parts[2]),
        ] {
            assert!(PasswordHash::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_are_checked() {
        let hash = PasswordHash::generate("pw", PBKDF2_ITERATIONS_MIN).unwrap();
        let base = Path::new("/etc/twofold");
        let s = validate(one("alice", &hash), false, base).unwrap();
        assert_eq!(s.operators[0].name, "alice");
        assert_eq!(s.state_dir, PathBuf::from(CONSOLE_STATE_DIR_DEFAULT));
        assert!(validate(one("al ice", &hash), false, base).is_err());
        assert!(validate(one("alice", "nope"), false, base).is_err());
        assert_eq!(
            validate(one("alice", &hash), true, base).unwrap_err().0,
            "console.plain_http"
        );
        let mut twice = one("alice", &hash);
        twice.operator.push(twice.operator[0].clone());
        assert!(validate(twice, false, base).is_err());
        let none = ConsoleFile::default();
        assert!(validate(none, false, base).is_err());
        let short = ConsoleFile {
            session_secs: 5,
            ..one("alice", &hash)
        };
        assert!(validate(short, false, base).is_err());
        let relative = ConsoleFile {
            state_dir: "console".into(),
            ..one("alice", &hash)
        };
        assert_eq!(
            validate(relative, false, base).unwrap().state_dir,
            base.join("console")
        );
    }
}

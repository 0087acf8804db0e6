//! The running configuration as the console shows it: the file as it was read at start,
//! with every value that is or may hold a secret replaced. Paths of secret files and names
//! of environment variables stay: they are where a secret is, not the secret.

/// What a masked value reads as.
pub const MASK: &str = "(masked)";

/// Keys whose values are masked wherever they appear.
const SECRET_KEYS: &[&str] = &[
    "dev_plaintext",
    "password_hash",
    "password",
    "pin",
    "secret",
];

/// The masked text of configuration `text`, or a note when it does not parse (it did at
/// start, so the file has changed since).
pub fn masked(text: &str) -> String {
    match text.parse::<toml::Table>() {
        Ok(mut table) => {
            mask_table(&mut table);
            toml::to_string_pretty(&table).unwrap_or_else(|e| format!("# cannot show: {e}\n"))
        }
        Err(_) => {
            "# the configuration file does not parse now; it has changed since start\n".to_owned()
        }
    }
}

fn mask_table(table: &mut toml::Table) {
    for (key, value) in table.iter_mut() {
        if SECRET_KEYS.contains(&key.as_str()) {
            *value = toml::Value::String(MASK.to_owned());
        } else {
            mask_value(value);
        }
    }
}

fn mask_value(value: &mut toml::Value) {
    match value {
        toml::Value::Table(t) => mask_table(t),
        toml::Value::Array(items) => items.iter_mut().for_each(mask_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_their_places_kept() {
        let text = r#"
[backend]
secret_access_key = { dev_plaintext = "s3cr3t-backend" }
[[credential]]
access_key_id = "AKID"
secret_access_key = { file = "client.secret" }
[console]
[[console.operator]]
name = "alice"
password_hash = "pbkdf2-sha256$600000$c2FsdA$aGFzaA"
[custodian.outer]
pin_file = "outer.pin"
"#;
        let out = masked(text);
        assert!(!out.contains("s3cr3t-backend"), "{out}");
        assert!(!out.contains("pbkdf2"), "{out}");
        assert!(out.contains("client.secret") && out.contains("outer.pin") && out.contains("AKID"));
        assert!(out.contains(MASK));
        assert!(masked("not = [toml").starts_with('#'));
    }
}

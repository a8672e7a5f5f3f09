//! Client keys: a fresh random key, its SHA-256 (the only form the configuration stores), and
//! matching a presented key against every client in constant time.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::ClientConfig;

/// The prefix of generated keys, so a leaked one is recognisable in a scan.
const PREFIX: &str = "ig_";

/// The system's random source failed.
#[derive(Debug)]
pub struct KeyError(String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `n` random bytes from the operating system.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| KeyError(format!("the system's random source failed: {e}")))?;
    Ok(bytes)
}

/// A fresh client key: `ig_` and 32 random bytes in hex (256 bits).
///
/// # Errors
/// [`KeyError`] when the operating system gives no randomness.
pub fn generate_key() -> Result<String, KeyError> {
    Ok(format!("{PREFIX}{}", hex(&random_bytes::<32>()?)))
}

/// The lowercase hex SHA-256 of `key`, as `key_sha256` stores it.
pub fn key_sha256(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// The clients with their hashes decoded once.
pub(crate) struct Keys {
    clients: Vec<(ClientConfig, [u8; 32])>,
}

impl fmt::Debug for Keys {
    // Names only: a hash is no key, but nothing about keys belongs in a debug print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.clients.iter().map(|(c, _)| &c.name))
            .finish()
    }
}

fn decode(hash: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = hash
            .get(i * 2..i * 2 + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    out
}

impl Keys {
    /// The clients of a validated configuration.
    pub(crate) fn new(clients: &[ClientConfig]) -> Keys {
        Keys {
            clients: clients
                .iter()
                .map(|c| (c.clone(), decode(&c.key_sha256.to_ascii_lowercase())))
                .collect(),
        }
    }

    /// Whether any client is configured (else any key is accepted).
    pub(crate) fn is_open(&self) -> bool {
        self.clients.is_empty()
    }

    /// The client whose key this is. Every client's hash is compared, in constant time, so the
    /// answer's timing says nothing about which hash matched or how much of it.
    pub(crate) fn find(&self, presented: &str) -> Option<&ClientConfig> {
        let digest = Sha256::digest(presented.as_bytes());
        let mut found = None;
        for (client, hash) in &self.clients {
            if bool::from(hash.as_slice().ct_eq(digest.as_slice())) && found.is_none() {
                found = Some(client);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_matches_its_hash_only() {
        let key = generate_key().unwrap();
        assert!(key.starts_with("ig_") && key.len() == 67, "{key}");
        assert_ne!(key, generate_key().unwrap());
        let client = ClientConfig {
            name: "app".into(),
            key_sha256: key_sha256(&key).to_ascii_uppercase(),
            routes: None,
            priority: imagegate_core::Priority::Interactive,
            budget_usd_per_day: None,
        };
        let keys = Keys::new(&[client]);
        assert_eq!(keys.find(&key).map(|c| c.name.as_str()), Some("app"));
        assert!(keys.find("ig_wrong").is_none());
        assert!(keys.find("").is_none());
        assert_eq!(format!("{keys:?}"), r#"["app"]"#);
        assert_eq!(
            key_sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

//! API keys that cannot leak by accident, and a scrubber for text that came from outside.

use std::fmt;
use std::sync::RwLock;

use secrecy::{ExposeSecret, SecretString};

/// An API key. `Debug` and `Display` print `***`; the only way to the text is
/// [`ApiKey::expose`], called at the one place a provider builds its auth header.
#[derive(Clone)]
pub struct ApiKey(SecretString);

impl ApiKey {
    /// Wraps a key. Leading and trailing whitespace (a pasted newline) is removed.
    ///
    /// The key is also registered with [`scrub`], so its exact text is removed from every
    /// message this process builds, whatever its shape: a relay's key has no prefix a
    /// pattern could know, and an upstream may echo it back.
    pub fn new(key: impl Into<String>) -> Self {
        let key: String = key.into();
        let key = key.trim().to_owned();
        register(&key);
        ApiKey(SecretString::from(key))
    }

    /// The key's text, for building the request header. Never log or format it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// True when the key is empty (an unset variable exported as `""`).
    pub fn is_empty(&self) -> bool {
        self.0.expose_secret().is_empty()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for ApiKey {
    fn from(key: String) -> Self {
        ApiKey::new(key)
    }
}

impl From<&str> for ApiKey {
    fn from(key: &str) -> Self {
        ApiKey::new(key)
    }
}

/// Key prefixes that identify a secret whatever follows them.
const KEY_PREFIXES: [&str; 4] = ["AIza", "sk-or-", "sk-", "ya29."];

/// Keys shorter than this are not registered: scrubbing every occurrence of a 4-character
/// string would garble ordinary text, and no real provider issues keys that short.
const MIN_REGISTERED_LEN: usize = 8;

/// Every key this process holds (see [`ApiKey::new`]), longest first.
static KNOWN_KEYS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Adds `key` to the values [`scrub`] removes.
fn register(key: &str) {
    if key.chars().count() < MIN_REGISTERED_LEN {
        return;
    }
    let mut known = KNOWN_KEYS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !known.iter().any(|k| k == key) {
        known.push(key.to_owned());
        // Longest first, so a key containing another is removed whole.
        known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    }
}

/// Removes the text of every registered key from `text`.
fn scrub_known(text: &str) -> String {
    let known = KNOWN_KEYS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = text.to_owned();
    for key in known.iter() {
        if out.contains(key.as_str()) {
            out = out.replace(key.as_str(), "***");
        }
    }
    out
}

/// Replaces every key this process holds (exactly, whatever its shape), and anything shaped
/// like an API key or bearer token, in `text` with `***`.
///
/// Upstream messages can echo a key back (Gemini's `API_KEY_INVALID` does not, but relays and
/// proxies may), and transport errors can carry URLs; everything that enters an [`crate::Error`]
/// goes through here, and so does everything the CLI writes to a journal or a state record.
pub fn scrub(text: &str) -> String {
    let known = scrub_known(text);
    let text = known.as_str();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let next = KEY_PREFIXES
            .iter()
            .filter_map(|p| rest.find(p).map(|i| (i, *p)))
            .chain(find_bearer(rest))
            .min_by_key(|(i, _)| *i);
        let Some((start, prefix)) = next else {
            out.push_str(rest);
            break;
        };
        let token_start = start + prefix.len();
        let token_len = rest[token_start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .unwrap_or(rest.len() - token_start);
        // A prefix inside a word ("sk-" in "risk-assessment") or followed by a short word is
        // not a key.
        let at_word_start = rest[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        if at_word_start && token_len >= 8 {
            out.push_str(&rest[..start]);
            if prefix.eq_ignore_ascii_case("bearer ") {
                out.push_str(&rest[start..token_start]);
            }
            out.push_str("***");
        } else {
            out.push_str(&rest[..token_start + token_len]);
        }
        rest = &rest[token_start + token_len..];
    }
    out
}

fn find_bearer(text: &str) -> Option<(usize, &'static str)> {
    let lower = text.to_ascii_lowercase();
    lower.find("bearer ").map(|i| (i, "Bearer "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_never_prints() {
        let key = ApiKey::new("AIzaSyDUMMYDUMMYDUMMYDUMMYDUMMYDUMMY12\n");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        assert_eq!(key.to_string(), "***");
        assert_eq!(key.expose(), "AIzaSyDUMMYDUMMYDUMMYDUMMYDUMMYDUMMY12");
    }

    #[test]
    fn keys_of_any_shape_are_scrubbed_once_held() {
        let odd = "q7Zt4LmR9wXc2Vb8Nk1P-unit";
        assert_eq!(scrub(&format!("key {odd} bad")), format!("key {odd} bad"));
        let _held = ApiKey::new(format!(" {odd}\n"));
        assert_eq!(scrub(&format!("key {odd} bad")), "key *** bad");
        // Too short to scrub without garbling text: never registered.
        let _short = ApiKey::new("abc");
        assert_eq!(scrub("abcdef"), "abcdef");
    }

    #[test]
    fn scrub_removes_key_shapes_and_keeps_words() {
        assert_eq!(
            scrub("key AIzaSyA1234567890abcdefghijklmnop is bad"),
            "key *** is bad"
        );
        assert_eq!(
            scrub("Authorization: Bearer sk-or-v1-abcdef0123456789"),
            "Authorization: Bearer ***"
        );
        assert_eq!(
            scrub("url https://x/?key=sk-or-v1-0123456789abcdef&a=1"),
            "url https://x/?key=***&a=1"
        );
        assert_eq!(
            scrub("a task-list and a disk-usage"),
            "a task-list and a disk-usage"
        );
        assert_eq!(scrub("risk-assessment-report"), "risk-assessment-report");
        assert_eq!(scrub("no secrets here"), "no secrets here");
        assert_eq!(scrub(""), "");
    }
}

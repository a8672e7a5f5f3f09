//! Checks on provider settings that serde accepts but that cannot work: a key pasted where the
//! name of its environment variable belongs, and a timeout of zero or of days.
//!
//! Messages name the key and the file, never the value when it may be a secret.

use std::time::Duration;

/// The shortest upstream timeout accepted: an image takes seconds to make, so less than one
/// second fails every call after it was sent (and possibly billed).
pub(crate) const MIN_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest upstream timeout accepted: one call held longer than an hour is a hang.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Whether `name` looks like an environment variable's name (and not like a key): letters,
/// digits and `_`, not starting with a digit, at most 64 characters, no known key prefix,
/// and not the mixed-case-and-digits jumble keys are made of.
pub(crate) fn looks_like_variable_name(name: &str) -> bool {
    let charset = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let key_prefix = ["AIza", "sk-", "ya29."].iter().any(|p| name.starts_with(p));
    let has = |f: fn(&char) -> bool| name.chars().any(|c| f(&c));
    let jumble = has(char::is_ascii_lowercase)
        && has(char::is_ascii_uppercase)
        && has(char::is_ascii_digit)
        && name.len() >= 20;
    charset && !key_prefix && !jumble
}

/// The problem with one provider's `api_key_env` and `timeout`, as a configuration error line.
pub(crate) fn provider_problem(
    name: &str,
    api_key_env: Option<&str>,
    timeout: Option<Duration>,
    source: &str,
) -> Option<String> {
    if let Some(var) = api_key_env
        && !looks_like_variable_name(var)
    {
        // The value is not repeated: it may be the key itself.
        return Some(format!(
            "invalid configuration: key `providers.{name}.api_key_env` in {source}: expected \
             the NAME of an environment variable (letters, digits and `_`, like \
             GEMINI_API_KEY); the value given does not look like one (it may be a key pasted \
             by mistake: if so, revoke it, since it is now in a file) and is not shown"
        ));
    }
    if let Some(timeout) = timeout
        && !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&timeout)
    {
        return Some(format!(
            "invalid configuration: key `providers.{name}.timeout` in {source}: expected a \
             duration from {} to {}, found {}",
            humantime::format_duration(MIN_TIMEOUT),
            humantime::format_duration(MAX_TIMEOUT),
            humantime::format_duration(timeout)
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_pass_and_keys_do_not() {
        for good in ["GEMINI_API_KEY", "relay_token", "MY_KEY_2", "_X"] {
            assert!(looks_like_variable_name(good), "{good}");
        }
        for bad in [
            "AIzaSyD4xY7qLmN0pRsTuVwXyZ1234567890ab",
            "sk-or-v1-abc",
            "q7Zt4LmR9wXc2Vb8Nk1P",
            "has space",
            "1ABC",
            "",
        ] {
            assert!(!looks_like_variable_name(bad), "{bad}");
        }
    }

    #[test]
    fn timeouts_between_a_second_and_an_hour() {
        let check = |secs| provider_problem("p", None, Some(Duration::from_secs(secs)), "f");
        assert!(check(0).is_some_and(|m| m.contains("providers.p.timeout")));
        assert!(check(1).is_none());
        assert!(check(3600).is_none());
        assert!(check(3601).is_some());
    }
}

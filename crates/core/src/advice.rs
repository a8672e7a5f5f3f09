//! What to do about an [`Error`]: one sentence per kind, filled with the error's own facts.
//!
//! Kept apart from the error type so the wording (what a person reads in `diagnose`, `generate`
//! and batch summaries) lives in one place. The method [`Error::advice`] is defined here, so
//! this module imports `error` and `error` imports nothing of it: no loop between them.

use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::quota::PACIFIC;

impl Error {
    /// What a person (or the router) should do about it: one sentence.
    pub fn advice(&self) -> String {
        advice(self)
    }
}

/// The longest wait a per-minute window can plausibly ask for.
const LONGEST_WINDOW_WAIT: Duration = Duration::from_secs(15 * 60);

/// The advice for `error`.
fn advice(error: &Error) -> String {
    let project = error
        .project()
        .map(|p| format!("project {p}"))
        .unwrap_or_else(|| "the project this key belongs to".to_owned());
    // A zero delay says nothing ("Wait 0 ms"): advise as if none was given.
    let delay = error.retry_after().filter(|d| !d.is_zero());
    let wait = delay.map(human_duration);
    match error.kind() {
        // A per-minute window never asks for hours: a delay that long is a daily quota or a
        // misreported delay, and "wait" would be the wrong advice.
        ErrorKind::RateLimited if delay.is_some_and(|d| d > LONGEST_WINDOW_WAIT) => format!(
            "The upstream asked for a wait of {}, far longer than a per-minute window: this is \
             likely a daily quota or a misreported delay; use another project or provider, or \
             check `imagegate quota`.",
            wait.unwrap_or_default()
        ),
        ErrorKind::RateLimited => match wait {
            Some(w) => format!(
                "Wait {w} before the next request to this quota, or send it to another project or provider now."
            ),
            None => "Back off with jitter, or send the request to another project or provider now.".to_owned(),
        },
        ErrorKind::QuotaExhausted => match error.quota().reset_at {
            Some(at) => format!(
                "This quota resets at {} ({}); until then use another project or provider.",
                at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                at.to_zoned(PACIFIC.clone()).strftime("%Y-%m-%d %H:%M %Z"),
            ),
            None => "Daily quotas reset at midnight Pacific time; until then use another project or provider.".to_owned(),
        },
        ErrorKind::BillingRequired => format!(
            "Retrying cannot help: attach a billing account to {project} (or buy credits), or use a model or provider this account is entitled to."
        ),
        ErrorKind::Unavailable => match wait {
            Some(w) => format!("The upstream is overloaded: retry after {w}, or fall back to another provider."),
            None => "The upstream is overloaded or failing: retry briefly with backoff, or fall back to another provider.".to_owned(),
        },
        ErrorKind::Timeout => "Generation can take 30-45 s: use a generous timeout (60 s or more); the image may already have been billed.".to_owned(),
        ErrorKind::Connect => "Check the network and the base URL; nothing was sent, so retrying is safe.".to_owned(),
        ErrorKind::Unauthorized => format!(
            "Replace the API key (or grant {project} access): retrying with the same key cannot succeed."
        ),
        ErrorKind::RegionUnsupported => "This provider refuses requests from your location: use another region or provider (OpenRouter).".to_owned(),
        ErrorKind::ModelNotFound => "Check the model name and that this key may use it.".to_owned(),
        ErrorKind::InvalidRequest => "Fix the request (prompt, size, aspect ratio, reference images); retrying it unchanged cannot succeed.".to_owned(),
        ErrorKind::ContentBlocked => "A safety filter refused this prompt or image: rephrase it; this is not a quota problem.".to_owned(),
        ErrorKind::NoImage => "The model answered without an image: rephrase the prompt to ask for an image explicitly.".to_owned(),
        ErrorKind::InvalidResponse => "The upstream's answer could not be decoded: report it with the request id.".to_owned(),
        ErrorKind::ConfigInvalid => "Fix the configuration named above.".to_owned(),
        ErrorKind::Unexpected => "Report this with the request id if it persists.".to_owned(),
    }
}

/// `41 s`, `1.5 s`, `250 ms`, `3 min 20 s`, `7 h 12 min`: for people, not parsers.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        return format!("{ms} ms");
    }
    let secs = d.as_secs();
    if secs < 10 && !ms.is_multiple_of(1_000) {
        return format!("{:.1} s", d.as_secs_f64());
    }
    if secs < 60 {
        return format!("{secs} s");
    }
    if secs < 3_600 {
        let rest = secs % 60;
        return if rest == 0 {
            format!("{} min", secs / 60)
        } else {
            format!("{} min {rest} s", secs / 60)
        };
    }
    let rest = (secs % 3_600) / 60;
    if rest == 0 {
        format!("{} h", secs / 3_600)
    } else {
        format!("{} h {rest} min", secs / 3_600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(human_duration(Duration::from_millis(1_500)), "1.5 s");
        assert_eq!(human_duration(Duration::from_secs(41)), "41 s");
        assert_eq!(human_duration(Duration::from_secs(200)), "3 min 20 s");
        assert_eq!(
            human_duration(Duration::from_secs(7 * 3600 + 720)),
            "7 h 12 min"
        );
    }

    #[test]
    fn advice_names_the_wait_and_the_project() {
        let e = Error::new(ErrorKind::RateLimited, "").with_retry_after(Duration::from_secs(41));
        assert!(e.advice().contains("Wait 41 s"), "{}", e.advice());
        let e = Error::new(ErrorKind::BillingRequired, "").with_project("proj-b");
        assert!(e.advice().contains("project proj-b"), "{}", e.advice());
    }
}

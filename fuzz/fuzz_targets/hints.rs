//! The retry-hint parsers (core's `hints`, OpenAI's Go durations and rate-limit headers) on any
//! text: every hint is within `0..=MAX_RETRY_HINT`, and a reset stamp is an instant.
#![no_main]

use http::{HeaderMap, HeaderValue};
use imagegate_core::hints;
use imagegate_fuzz::{check_hint, now};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let now = now();
    check_hint("protobuf_duration", hints::protobuf_duration(&text));
    check_hint("retry_after_value", hints::retry_after_value(&text, now));
    check_hint("retry_in_message", hints::retry_in_message(&text));
    if let Some(at) = hints::epoch_reset(&text) {
        check_hint("until(epoch_reset)", Some(hints::until(now, at)));
    }
    if let Ok(seconds) = text.trim().parse::<f64>() {
        check_hint("clamp_seconds", hints::clamp_seconds(seconds));
    }
    let _ = imagegate_openai::go_duration(&text);
    if let Ok(value) = HeaderValue::from_bytes(bytes) {
        let mut headers = HeaderMap::new();
        for name in [
            "retry-after",
            "retry-after-ms",
            "x-ratelimit-reset-requests",
            "x-ratelimit-reset-tokens",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-limit-requests",
            "x-ratelimit-reset",
        ] {
            headers.insert(name, value.clone());
        }
        check_hint(
            "retry_after_headers",
            hints::retry_after_headers(&headers, now),
        );
        headers.remove("retry-after-ms");
        check_hint(
            "retry_after_headers",
            hints::retry_after_headers(&headers, now),
        );
        let _ = format!("{:?}", imagegate_openai::rate_limits(&headers, now));
    }
});

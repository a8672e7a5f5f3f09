//! google-rpc: any body through `parse_status` and its accessors, and through `classify` under
//! each status the Google APIs answer errors with; the retry delay it carries stays bounded.
#![no_main]

use http::StatusCode;
use imagegate_core::hints;
use imagegate_fuzz::{check_error, check_hint, hold_key, now};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    hold_key();
    if let Some(status) = imagegate_google_rpc::parse_status(body) {
        let _ = format!("{status:?}");
        let _ = status.violations().count();
        let _ = status.error_infos().count();
        let _ = status.help_url();
        if let Some(delay) = status.retry_delay() {
            check_hint("retryDelay", hints::protobuf_duration(delay));
        }
    }
    let headers = http::HeaderMap::new();
    for code in [400, 403, 429, 503] {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
        check_error(&imagegate_google_rpc::classify(
            status,
            &headers,
            body,
            now(),
            "gemini",
        ));
    }
});

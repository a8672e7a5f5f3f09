//! OpenRouter: any status, headers and body through `parse_response`, `parse_error` and
//! `parse_success`; the upstream may echo the held key.
#![no_main]

use imagegate_fuzz::{Exchange, check_error, check_response, header_map, hold_key, now, status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|exchange: Exchange| {
    hold_key();
    let status = status(&exchange);
    let headers = header_map(&exchange.headers_with_key());
    let body = exchange.body_with_key();
    check_response(&imagegate_openrouter::parse_response(
        status,
        &headers,
        &body,
        now(),
    ));
    if !status.is_success() {
        check_error(&imagegate_openrouter::parse_error(
            status,
            &headers,
            &body,
            now(),
        ));
    }
    if let Err(error) = imagegate_openrouter::parse_success(&body, "google/gemini-2.5-flash-image")
    {
        check_error(&error);
    }
});

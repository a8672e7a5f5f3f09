//! Gemini: any status, headers and body through `parse_response_for` (success and error) and
//! `parse_error`; the upstream may echo the held key.
#![no_main]

use imagegate_fuzz::{Exchange, check_error, check_response, header_map, hold_key, now, status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|exchange: Exchange| {
    hold_key();
    let status = status(&exchange);
    let headers = header_map(&exchange.headers_with_key());
    let body = exchange.body_with_key();
    let model = "gemini-2.5-flash-image";
    check_response(&imagegate_gemini::parse_response_for(
        model,
        status,
        &headers,
        &body,
        now(),
    ));
    if !status.is_success() {
        check_error(&imagegate_gemini::parse_error(
            status,
            &headers,
            &body,
            now(),
        ));
    }
    if let Err(error) = imagegate_gemini::parse_success(&body, model) {
        check_error(&error);
    }
});

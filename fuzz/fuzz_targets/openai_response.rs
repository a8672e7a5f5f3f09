//! OpenAI Images: any status, headers and body through `parse_response`, `parse_error`,
//! `parse_success` and `image_links`, and the rate-limit headers through `rate_limits`; the
//! upstream may echo the held key.
#![no_main]

use imagegate_fuzz::{Exchange, check_error, check_response, header_map, hold_key, now, status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|exchange: Exchange| {
    hold_key();
    let status = status(&exchange);
    let headers = header_map(&exchange.headers_with_key());
    let body = exchange.body_with_key();
    let model = "gpt-image-1";
    check_response(&imagegate_openai::parse_response(
        status,
        &headers,
        &body,
        model,
        now(),
    ));
    if !status.is_success() {
        check_error(&imagegate_openai::parse_error(
            status,
            &headers,
            &body,
            now(),
        ));
    }
    if let Err(error) = imagegate_openai::parse_success(&body, model) {
        check_error(&error);
    }
    let _ = imagegate_openai::image_links(&body);
    let _ = format!("{:?}", imagegate_openai::rate_limits(&headers, now()));
});

//! Vertex AI: any status, headers and body through `parse_response` and `parse_error`, for a
//! Gemini and an Imagen model; the upstream may echo the held key.
#![no_main]

use imagegate_fuzz::{Exchange, check_error, check_response, header_map, hold_key, now, status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|exchange: Exchange| {
    hold_key();
    let status = status(&exchange);
    let headers = header_map(&exchange.headers_with_key());
    let body = exchange.body_with_key();
    let model = if exchange.key.mode & 4 == 0 {
        "gemini-2.5-flash-image"
    } else {
        "imagen-4.0-generate-001"
    };
    check_response(&imagegate_vertex::parse_response(
        status,
        &headers,
        &body,
        model,
        now(),
    ));
    if !status.is_success() {
        check_error(&imagegate_vertex::parse_error(
            status,
            &headers,
            &body,
            now(),
        ));
    }
});

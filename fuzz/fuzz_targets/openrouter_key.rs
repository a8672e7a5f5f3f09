//! OpenRouter's key endpoint (`GET /api/v1/key`): any body through `parse_key_info`, and the
//! answer's reset instant and credits; the label never keeps the held key.
#![no_main]

use imagegate_fuzz::{assert_no_key, check_error, hold_key, now};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    hold_key();
    match imagegate_openrouter::parse_key_info(body) {
        Ok(info) => {
            if let Some(label) = &info.label {
                assert_no_key("label", label);
            }
            let _ = info.credits_remaining();
            let _ = info.is_exhausted();
            let _ = info.next_limit_reset(now());
        }
        Err(error) => check_error(&error),
    }
});

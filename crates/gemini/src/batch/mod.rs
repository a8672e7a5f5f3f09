//! The Gemini Batch API: the same `generateContent` requests at half the price, answered within
//! 24 hours (usually much sooner), on quota separate from the interactive one.
//!
//! Two layers:
//! - pure build and parse functions ([`inline_body`], [`file_body`], [`jsonl_input`],
//!   [`parse_operation`], [`parse_list`], [`inline_results`], [`parse_results_jsonl`],
//!   [`classify_request_error`], [`choose_input`]), testable without HTTP;
//! - the calls, as methods of [`crate::GeminiProvider`]: `batch_create` (inline when small,
//!   else a JSONL file uploaded through the Files API's resumable protocol), `batch_get`,
//!   `batch_list` (every page), `batch_cancel`, `batch_delete`, `batch_results` (inline or by
//!   downloading the responses file).
//!
//! Create is not idempotent: a retried create makes a second job that is billed again. Give
//! each job a unique display name, record it (and the keys) before creating, and after a crash
//! find the job again with `batch_list` by that name.
//!
//! Every per-request error becomes the [`imagegate_core::Error`] an interactive call would have
//! got: it goes through the same classifier (`imagegate-google-rpc`).

mod client;
mod types;
mod wire;

pub use types::{
    BatchInput, BatchJob, BatchOptions, BatchOutput, BatchPage, BatchRequest, BatchResult,
    BatchState, BatchStats, InlineResponses, JobFailure,
};
pub use wire::{
    INLINE_BODY_LIMIT_BYTES, check_requests, choose_input, classify_request_error,
    expected_image_bytes, expected_inline_result_bytes, file_body, inline_body, inline_results,
    jsonl_input, operation_from_value, parse_list, parse_operation, parse_results_jsonl,
    result_from_item, result_from_line,
};

//! `imagegate batch`'s input reader (text and JSONL, crates/cli/src/batch/input.rs) on any
//! bytes, with either file name and either references policy.
#![no_main]

use imagegate_fuzz::TextFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|file: TextFile| {
    let jsonl = file.key.mode & 1 == 1;
    let anywhere = file.key.mode & 2 == 2;
    let _ = imagegate_cli::fuzzing::batch_input(&file.text, jsonl, anywhere);
});

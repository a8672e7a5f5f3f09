//! `imagegate batch`'s journal reader (crates/cli/src/batch/journal.rs) on any file: a torn or
//! edited journal is read, never a panic.
#![no_main]

use imagegate_fuzz::TextFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|file: TextFile| {
    let _ = imagegate_cli::fuzzing::journal(&file.text);
});

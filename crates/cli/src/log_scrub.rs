//! Log lines scrubbed of keys before they reach stderr.
//!
//! Errors are scrubbed when they are made, but a log line can format anything (a URL, a
//! header, an upstream's text). Each tracing event is buffered whole and passed through
//! `secret::scrub`, which removes every key the process holds and anything key-shaped.

use std::io::Write;

use imagegate_core::secret::scrub;
use tracing_subscriber::fmt::MakeWriter;

/// Makes one [`ScrubbedLine`] per event.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ScrubbedStderr;

/// One event's text, written to stderr scrubbed when the event is done (on drop).
#[derive(Debug, Default)]
pub(crate) struct ScrubbedLine(Vec<u8>);

impl Write for ScrubbedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbedLine {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        // Nowhere left to report a failed write to stderr.
        let _ = std::io::stderr()
            .lock()
            .write_all(scrubbed(&self.0).as_bytes());
    }
}

/// One event's bytes as they may be shown.
fn scrubbed(event: &[u8]) -> String {
    scrub(&String::from_utf8_lossy(event))
}

impl<'a> MakeWriter<'a> for ScrubbedStderr {
    type Writer = ScrubbedLine;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbedLine::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_event_is_written_whole_and_without_keys() {
        let _held = imagegate_core::secret::ApiKey::new("log-scrub-test-key-0a9f");
        let mut line = ScrubbedStderr.make_writer();
        write!(line, "DEBUG sending to https://relay/?k=log-scrub-").unwrap();
        writeln!(line, "test-key-0a9f done").unwrap();
        assert_eq!(
            scrubbed(&line.0),
            "DEBUG sending to https://relay/?k=*** done\n"
        );
        line.0.clear();
    }
}

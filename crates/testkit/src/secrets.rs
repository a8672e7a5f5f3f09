//! A scan for key-shaped strings, so a real credential never lands in `fixtures/`.
//!
//! Recorded fixtures come from real captures; one careless paste would publish a key. The
//! scan looks for the shapes the providers issue: Google API keys (`AIza` + 35 characters),
//! OpenRouter keys (`sk-or-...`), OpenAI keys (`sk-proj-...`, `sk-` + a long token), Google
//! OAuth access tokens (`ya29.`), PEM private keys (a service-account key file) and bearer
//! tokens. Placeholders such as
//! `Bearer <OPENROUTER_API_KEY>` or `$GEMINI_API_KEY` are not key-shaped and pass.

use std::fs;
use std::path::{Path, PathBuf};

/// One key-shaped string found in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The file it is in.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// Which shape matched (never the secret itself, which must not be echoed either).
    pub shape: &'static str,
}

fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.'
}

/// The length of the run of token characters at the start of `rest`.
fn token_len(rest: &[u8]) -> usize {
    rest.iter().take_while(|c| is_token_char(**c)).count()
}

/// The key shapes found in one line of text.
pub fn shapes_in(line: &str) -> Vec<&'static str> {
    let bytes = line.as_bytes();
    let lower = line.to_ascii_lowercase();
    let lower = lower.as_bytes();
    let mut found = Vec::new();
    for i in 0..bytes.len() {
        let rest = &bytes[i..];
        let lower_rest = &lower[i..];
        if rest.starts_with(b"AIza") && token_len(&rest[4..]) >= 30 {
            found.push("Google API key (AIza...)");
        } else if lower_rest.starts_with(b"sk-or-") && token_len(&rest[6..]) >= 8 {
            found.push("OpenRouter key (sk-or-...)");
        } else if rest.starts_with(b"sk-")
            && (i == 0 || !is_token_char(bytes[i - 1]))
            && token_len(&rest[3..]) >= 20
        {
            found.push("OpenAI key (sk-...)");
        } else if rest.starts_with(b"ya29.") && token_len(&rest[5..]) >= 20 {
            found.push("Google access token (ya29....)");
        } else if rest.starts_with(b"-----BEGIN") && line.contains("PRIVATE KEY-----") {
            found.push("PEM private key");
        } else if lower_rest.starts_with(b"bearer ") && token_len(&rest[7..]) >= 16 {
            found.push("bearer token");
        }
    }
    found
}

/// Every key-shaped string in every file under `dir`, recursively. Unreadable or non-UTF-8
/// files are scanned lossily rather than skipped: skipping would hide exactly the file that
/// holds a binary-pasted secret.
///
/// # Errors
/// The directory or an entry that cannot be listed or read.
pub fn scan_dir(dir: &Path) -> Result<Vec<Finding>, String> {
    let mut findings = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        paths.push(
            entry
                .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
                .path(),
        );
    }
    paths.sort();
    for path in paths {
        if path.is_dir() {
            findings.extend(scan_dir(&path)?);
            continue;
        }
        let bytes = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        for (index, line) in text.lines().enumerate() {
            for shape in shapes_in(line) {
                findings.push(Finding {
                    path: path.clone(),
                    line: index + 1,
                    shape,
                });
            }
        }
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::shapes_in;

    #[test]
    fn key_shapes_are_found() {
        // Assembled at run time so this source file does not itself trip a scanner.
        let google = format!("key={}{}", "AIza", "Sy".repeat(17) + "A");
        assert_eq!(shapes_in(&google), ["Google API key (AIza...)"]);
        let openrouter = format!("\"{}v1-{}\"", "sk-or-", "0a1b2c3d4e5f".repeat(4));
        assert_eq!(shapes_in(&openrouter), ["OpenRouter key (sk-or-...)"]);
        let bearer = format!("Authorization: {} {}", "Bearer", "abcdEFGH1234ijkl5678");
        assert_eq!(shapes_in(&bearer), ["bearer token"]);
        let openai = format!("\"{}{}\"", "sk-proj-", "Ab12Cd34".repeat(4));
        assert_eq!(shapes_in(&openai), ["OpenAI key (sk-...)"]);
        let token = format!("{}{}", "ya29.", "a0AfH6SM".repeat(4));
        assert_eq!(shapes_in(&token), ["Google access token (ya29....)"]);
        let pem = format!("{}{}", "-----BEGIN ", "PRIVATE KEY-----");
        assert_eq!(shapes_in(&pem), ["PEM private key"]);
    }

    #[test]
    fn placeholders_and_prose_pass() {
        for line in [
            "Authorization: Bearer <OPENROUTER_API_KEY>",
            "Authorization: Bearer $OPENROUTER_API_KEY",
            "x-goog-api-key: $GEMINI_API_KEY",
            "API key not valid. Please pass a valid API key.",
            "\"reason\": \"API_KEY_INVALID\"",
            "AIza is how Google keys start",
            "sk-or-",
            "Incorrect API key provided: sk-proj-****7890.",
            "a risk-assessment-of-the-whole-pipeline-today",
        ] {
            assert!(shapes_in(line).is_empty(), "{line}");
        }
    }
}

//! Token counts as an upstream reports them: a leaf module, because both a response (what was
//! spent) and the quota model (what counts towards a tokens-per-minute limit) speak of them.

use serde::{Deserialize, Serialize};

/// Token counts as the upstream reported them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenUsage {
    /// Prompt (input) tokens.
    pub input_tokens: u64,
    /// Output tokens, images included.
    pub output_tokens: u64,
    /// Output tokens spent on images, when broken out (Gemini's `IMAGE` modality).
    pub image_tokens: Option<u64>,
}

impl TokenUsage {
    /// Input plus output: what counts towards a tokens-per-minute quota.
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

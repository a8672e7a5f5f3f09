//! Key names: every key of one pool starts with the same hash tag, so Redis Cluster keeps a
//! pool on one slot and a script may touch all of them.

use imagegate_core::quota::PoolId;

/// `%`, `:`, `{` and `}` escaped, so that no pool id can end the hash tag early or collide
/// with another (`a:b` + `c` and `a` + `b:c`).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
    out
}

/// The keys of one pool.
#[derive(Debug, Clone)]
pub(crate) struct PoolKeys {
    /// `{prefix:provider:project:pool}`.
    tag: String,
}

impl PoolKeys {
    pub(crate) fn new(prefix: &str, pool: &PoolId) -> Self {
        PoolKeys {
            tag: format!(
                "{{{}:{}:{}:{}}}",
                escape(prefix),
                escape(&pool.provider),
                escape(&pool.project),
                escape(&pool.pool)
            ),
        }
    }

    /// State, log, entries and the window's admission ids: the keys every script names first.
    pub(crate) fn base(&self) -> [String; 4] {
        [
            format!("{}:s", self.tag),
            format!("{}:log", self.tag),
            format!("{}:e", self.tag),
            format!("{}:ids", self.tag),
        ]
    }

    /// Marks one use as released, so a retried release gives back once.
    pub(crate) fn released(&self, id: u64, at_us: i64) -> String {
        format!("{}:r:{id}:{at_us}", self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_pool_shares_one_hash_tag_that_no_id_can_end() {
        let keys = PoolKeys::new("ig", &PoolId::new("gemini", "p}x", "a:b"));
        for key in keys.base() {
            assert!(key.starts_with("{ig:gemini:p%7Dx:a%3Ab}:"), "{key}");
        }
        let other = PoolKeys::new("ig", &PoolId::new("gemini", "p}x:a", "b"));
        assert_ne!(keys.base(), other.base());
    }
}

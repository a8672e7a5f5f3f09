//! The on-disk, content-addressed cache: the normalised request (route, prompt, count, size,
//! aspect ratio, model, seed, reference images by hash) -> the response's images, for a TTL.
//!
//! A hit costs no quota and no money. Entries are JSON files named by the key (hex SHA-256),
//! written to a temporary file and renamed, so a reader never sees half an entry; an entry that
//! cannot be read is a miss, never an error.

use std::path::PathBuf;
use std::time::Duration;

use imagegate_core::{GenerateRequest, GenerateResponse};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The cache's location and entry lifetime.
#[derive(Clone, Debug)]
pub(crate) struct Cache {
    dir: PathBuf,
    ttl: Duration,
}

/// What the key is computed from: every field that changes the images, nothing that does not
/// (priority, deadline). Bump `v` when the normalisation changes.
#[derive(Serialize)]
struct Normalised<'a> {
    v: u32,
    route: &'a str,
    prompt: &'a str,
    count: u32,
    size: Option<&'static str>,
    aspect_ratio: Option<String>,
    model: Option<&'a str>,
    seed: Option<u64>,
    references: Vec<(String, &'a str)>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    created_at: Timestamp,
    response: GenerateResponse,
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

impl Cache {
    pub(crate) fn new(dir: impl Into<PathBuf>, ttl: Duration) -> Self {
        Cache {
            dir: dir.into(),
            ttl,
        }
    }

    /// The key of `request` on `route`: hex SHA-256 of its normalised form.
    pub(crate) fn key(route: &str, request: &GenerateRequest) -> String {
        let normalised = Normalised {
            v: 1,
            route,
            prompt: request.prompt.trim(),
            count: request.count,
            size: request.size.map(|s| s.as_str()),
            aspect_ratio: request.aspect_ratio.map(|r| r.to_string()),
            model: request.model.as_deref(),
            seed: request.seed,
            references: request
                .reference_images
                .iter()
                .map(|r| (hex(&Sha256::digest(&r.bytes)), r.mime_type.as_str()))
                .collect(),
        };
        let json = serde_json::to_vec(&normalised).unwrap_or_default();
        hex(&Sha256::digest(&json))
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The cached response for `key`, if present and younger than the TTL at `now`.
    pub(crate) async fn get(&self, key: &str, now: Timestamp) -> Option<GenerateResponse> {
        let bytes = tokio::fs::read(self.path(key)).await.ok()?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        let age = imagegate_core::clock::span(entry.created_at, now);
        (age <= self.ttl && entry.created_at <= now).then_some(entry.response)
    }

    /// Stores `response` under `key`. Failures are logged, never returned: the images were
    /// generated and the caller must get them.
    pub(crate) async fn put(&self, key: &str, now: Timestamp, response: &GenerateResponse) {
        if let Err(error) = self.write(key, now, response).await {
            tracing::warn!(dir = %self.dir.display(), %error, "could not write the cache entry");
        }
    }

    async fn write(
        &self,
        key: &str,
        now: Timestamp,
        response: &GenerateResponse,
    ) -> std::io::Result<()> {
        let entry = Entry {
            created_at: now,
            response: response.clone(),
        };
        let json = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        tokio::fs::create_dir_all(&self.dir).await?;
        let tmp = self.dir.join(format!(
            ".{key}.{}.{}.tmp",
            std::process::id(),
            fastrand::u64(..)
        ));
        tokio::fs::write(&tmp, &json).await?;
        let result = tokio::fs::rename(&tmp, self.path(key)).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_priority_and_whitespace_but_not_the_route_or_options() {
        let base = GenerateRequest::new("a cat");
        let k = Cache::key("default", &base);
        assert_eq!(k.len(), 64);
        assert_eq!(k, Cache::key("default", &GenerateRequest::new("  a cat ")));
        assert_eq!(
            k,
            Cache::key(
                "default",
                &base
                    .clone()
                    .with_priority(imagegate_core::Priority::Background)
            )
        );
        assert_ne!(k, Cache::key("other", &base));
        assert_ne!(k, Cache::key("default", &base.clone().with_seed(1)));
        assert_ne!(k, Cache::key("default", &base.clone().with_count(2)));
    }

    /// A TTL longer than the 25 hours a retry hint is clamped to: an entry 47 h old is still
    /// good, one 49 h old has expired (the age is measured without the hint clamp).
    #[tokio::test]
    async fn a_48_hour_ttl_keeps_an_entry_for_48_hours_and_no_longer() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path(), Duration::from_secs(48 * 3_600));
        let created: Timestamp = "2026-11-20T10:00:00Z".parse().unwrap();
        let response = GenerateResponse::new(
            Vec::new(),
            imagegate_core::ServedBy::new("mock", "mock-image-1", None),
        );
        let key = Cache::key("default", &GenerateRequest::new("a cat"));
        cache.put(&key, created, &response).await;
        let hours = |h: u64| imagegate_core::clock::add(created, Duration::from_secs(h * 3_600));
        assert!(cache.get(&key, hours(26)).await.is_some(), "past the 25 h clamp");
        assert!(cache.get(&key, hours(47)).await.is_some());
        assert!(cache.get(&key, hours(48)).await.is_some(), "exactly the TTL");
        assert!(cache.get(&key, hours(49)).await.is_none(), "expired");
    }
}

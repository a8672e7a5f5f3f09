//! Images answered as `url`s: kept on disk under the state directory for `server.files_ttl`
//! (60 minutes, as OpenAI's URLs expire), the oldest dropped first past `server.files_max_bytes`.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use imagegate_core::Image;
use jiff::Timestamp;

use crate::keys::{hex, random_bytes};

#[derive(Debug)]
struct Entry {
    id: String,
    mime: String,
    size: u64,
    expires: Timestamp,
}

/// The stored images and their index (ids are 128 random bits: unguessable, path-safe).
#[derive(Debug)]
pub(crate) struct Files {
    dir: PathBuf,
    ttl: Duration,
    max_bytes: u64,
    index: Mutex<VecDeque<Entry>>,
}

impl Files {
    pub(crate) fn new(dir: PathBuf, ttl: Duration, max_bytes: u64) -> Files {
        Files {
            dir,
            ttl,
            max_bytes,
            index: Mutex::new(VecDeque::new()),
        }
    }

    /// Stores `image`, returning its id.
    pub(crate) async fn put(&self, image: &Image, now: Timestamp) -> std::io::Result<String> {
        let id = hex(&random_bytes::<16>().map_err(std::io::Error::other)?);
        tokio::fs::create_dir_all(&self.dir).await?;
        tokio::fs::write(self.dir.join(&id), &image.bytes).await?;
        let expires = now
            .checked_add(
                jiff::SignedDuration::try_from(self.ttl).unwrap_or(jiff::SignedDuration::MAX),
            )
            .unwrap_or(Timestamp::MAX);
        let gone = {
            let mut index = self
                .index
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            index.push_back(Entry {
                id: id.clone(),
                mime: image.mime_type.clone(),
                size: image.bytes.len() as u64,
                expires,
            });
            let mut gone = Vec::new();
            let mut total: u64 = index.iter().map(|e| e.size).sum();
            while let Some(front) = index.front() {
                if front.expires > now && total <= self.max_bytes {
                    break;
                }
                total -= front.size;
                if let Some(e) = index.pop_front() {
                    gone.push(e.id);
                }
            }
            gone
        };
        for old in gone {
            let _ = tokio::fs::remove_file(self.dir.join(old)).await;
        }
        Ok(id)
    }

    /// The image of `id`, when it exists and has not expired.
    pub(crate) async fn get(&self, id: &str, now: Timestamp) -> Option<(Bytes, String)> {
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mime = {
            let index = self
                .index
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let entry = index.iter().find(|e| e.id == id)?;
            (entry.expires > now).then(|| entry.mime.clone())?
        };
        let bytes = tokio::fs::read(self.dir.join(id)).await.ok()?;
        Some((Bytes::from(bytes), mime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(n: usize) -> Image {
        let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
        png.resize(n, 0);
        serde_json::from_value(serde_json::json!({
            "bytes": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &png),
            "mime_type": "image/png", "width": null, "height": null
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn files_expire_and_the_oldest_go_past_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path().join("f"), Duration::from_secs(3_600), 250);
        let t0: Timestamp = "2026-01-15T12:00:00Z".parse().unwrap();
        let a = files.put(&image(100), t0).await.unwrap();
        let b = files.put(&image(100), t0).await.unwrap();
        assert_eq!(files.get(&a, t0).await.unwrap().0.len(), 100);
        let c = files.put(&image(100), t0).await.unwrap();
        assert!(
            files.get(&a, t0).await.is_none(),
            "the oldest went past the cap"
        );
        assert!(!dir.path().join("f").join(&a).exists());
        assert!(files.get(&b, t0).await.is_some());
        let later = t0 + jiff::SignedDuration::from_secs(3_601);
        assert!(files.get(&c, later).await.is_none(), "expired");
        assert!(files.get("../../etc/passwd", t0).await.is_none());
    }
}

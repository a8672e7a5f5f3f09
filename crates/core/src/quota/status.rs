//! What `imagegate quota` shows: [`PoolStatus`] (serialisable for `--json`) and
//! [`render_table`] for people.
//!
//! The structs are plain data with public fields (not `#[non_exhaustive]`) so that a
//! [`QuotaStore`](super::QuotaStore) in another crate (a shared Redis store) can build them.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::{Dimension, PoolId, SharedPoolSuspicion, zone_named};

/// The state of one pool at one instant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolStatus {
    /// Which pool.
    pub id: PoolId,
    /// The models drawing on it.
    pub models: Vec<String>,
    /// The IANA zone whose midnight ends its day.
    pub day_zone: String,
    /// The instant this status describes.
    pub at: Timestamp,
    /// One entry per dimension, in the order rpm, rpd, tpm, ipm.
    pub dimensions: Vec<DimensionStatus>,
    /// Why the pool refuses everything right now, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<Block>,
    /// Evidence that the pool is shared with other models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_pool_suspected: Option<SharedPoolSuspicion>,
}

/// One dimension of a pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DimensionStatus {
    /// Which dimension.
    pub dimension: Dimension,
    /// The configured limit (preset or override).
    pub configured: Option<u64>,
    /// The limit learned from the upstream (a 429's quota value, a rate-limit header).
    pub learned: Option<u64>,
    /// The limit admission enforces: learned, else configured.
    pub limit: Option<u64>,
    /// True while the limit is unknown and waits to be learned from the upstream's first 429
    /// (a tiered provider with no tier configured). Shown as "unknown (learning)".
    #[serde(default, skip_serializing_if = "is_false")]
    pub learning: bool,
    /// Counted in the current window (the last 60 seconds, or the current day).
    pub used: u64,
    /// `limit - used`, when there is a limit.
    pub remaining: Option<u64>,
    /// When capacity next comes back: the oldest counted use leaving the 60-second window, or
    /// the next midnight in the pool's zone. `None` when nothing is counted in a per-minute
    /// window.
    pub resets_at: Option<Timestamp>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Why a pool refuses everything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Until when (`None`: until a person acts: restart with the memory store, clearing with
    /// the file store).
    pub until: Option<Timestamp>,
    /// The reason.
    pub reason: BlockReason,
    /// The dimension concerned, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimension: Option<Dimension>,
    /// What a person should do (for billing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

/// Why a pool is blocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    /// The upstream asked for a delay (`retryDelay`, `Retry-After`).
    RetryDelay,
    /// The upstream said a daily quota is used up.
    DailyQuota,
    /// No entitlement: billing must be attached.
    BillingRequired,
}

impl BlockReason {
    /// `retry_delay`, `daily_quota`, `billing_required`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BlockReason::RetryDelay => "retry_delay",
            BlockReason::DailyQuota => "daily_quota",
            BlockReason::BillingRequired => "billing_required",
        }
    }
}

/// Renders `statuses` as a table for people: one row per limited, learning or used dimension,
/// reset instants in `local` time and in the pool's own day zone (where its day ends: Pacific
/// for Gemini, UTC for OpenRouter), then a line
/// per block and per shared-pool suspicion.
pub fn render_table(statuses: &[PoolStatus], local: &TimeZone) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "POOL".into(),
        "DIM".into(),
        "LIMIT".into(),
        "USED".into(),
        "LEFT".into(),
        "NEXT RESET (local / day zone)".into(),
    ]];
    let mut notes: Vec<String> = Vec::new();
    for status in statuses {
        let day = zone_named(&status.day_zone).unwrap_or(TimeZone::UTC);
        let both_zones = |at: Timestamp| both_zones(at, local, &day);
        let mut first = true;
        for d in &status.dimensions {
            if d.limit.is_none() && d.used == 0 && !d.learning {
                continue;
            }
            let limit = match (d.limit, d.learned) {
                (Some(l), Some(_)) => format!("{l} (learned)"),
                (Some(l), None) => l.to_string(),
                (None, _) if d.learning => "unknown (learning)".into(),
                (None, _) => "-".into(),
            };
            rows.push([
                if first {
                    status.id.to_string()
                } else {
                    String::new()
                },
                d.dimension.to_string(),
                limit,
                d.used.to_string(),
                d.remaining.map_or_else(|| "-".into(), |r| r.to_string()),
                d.resets_at.map_or_else(|| "-".into(), both_zones),
            ]);
            first = false;
        }
        if first {
            rows.push([
                status.id.to_string(),
                "-".into(),
                "no limits".into(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
        if let Some(block) = &status.blocked {
            let until = block.until.map_or_else(
                || "until cleared".into(),
                |t| format!("until {}", both_zones(t)),
            );
            let dim = block
                .dimension
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            let mut line = format!(
                "{}: blocked {until}: {}{dim}",
                status.id,
                block.reason.as_str()
            );
            if let Some(advice) = &block.advice {
                let _ = write!(line, ". {advice}");
            }
            notes.push(line);
        }
        if let Some(s) = &status.shared_pool_suspected {
            let mut line = format!(
                "{}: shared pool suspected: {} 429 at {}/{} counted here ({} time(s))",
                status.id, s.dimension, s.used, s.limit, s.count
            );
            if let Some(m) = &s.quota_model {
                let _ = write!(line, ", quota names model {m}");
            }
            if !s.partners.is_empty() {
                let names: Vec<String> = s.partners.iter().map(|p| p.pool.clone()).collect();
                let _ = write!(line, ", busy alongside: {}", names.join(", "));
            }
            notes.push(line);
        }
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for note in notes {
        out.push_str(&note);
        out.push('\n');
    }
    out
}

/// `2026-11-23 09:00 CET / 00:00 PST`.
fn both_zones(at: Timestamp, local: &TimeZone, day: &TimeZone) -> String {
    format!(
        "{} / {}",
        at.to_zoned(local.clone()).strftime("%Y-%m-%d %H:%M:%S %Z"),
        at.to_zoned(day.clone()).strftime("%H:%M:%S %Z"),
    )
}

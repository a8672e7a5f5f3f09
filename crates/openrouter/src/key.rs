//! What `GET /api/v1/key` says about the key: credits left, when the limit resets, whether the
//! account is on the free tier. The router and CLI use it to show and plan spending.
//!
//! Two shapes are in the wild (both recorded as fixtures under `fixtures/openrouter/key/`): the current one with `limit_reset`,
//! `usage_daily`/`_weekly`/`_monthly`, `is_free_tier` and a deprecated `rate_limit`, and an
//! older one with only `limit`, `usage`, `limit_remaining`, `is_free_tier` and
//! `rate_limit {requests, interval}`. Every field is optional here.

use imagegate_core::quota::next_midnight;
use imagegate_core::secret::scrub;
use imagegate_core::{Error, ErrorKind};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::classify::{PROVIDER, one_line};

/// The key's credit and tier facts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key's label. OpenRouter labels keys with a shortened key (`sk-or-v1-au7...890`), so it
    /// is scrubbed of anything key-shaped before it is kept.
    pub label: Option<String>,
    /// The credit limit in US dollars; `None` means unlimited.
    pub limit: Option<f64>,
    /// Credits left under the limit, as OpenRouter reported it.
    pub limit_remaining: Option<f64>,
    /// How often the limit resets: `daily`, `weekly`, `monthly`; `None` means never.
    pub limit_reset: Option<String>,
    /// Credits spent, in US dollars (all time).
    pub usage: Option<f64>,
    /// Credits spent today (UTC).
    pub usage_daily: Option<f64>,
    /// Credits spent this week (UTC).
    pub usage_weekly: Option<f64>,
    /// Credits spent this month (UTC).
    pub usage_monthly: Option<f64>,
    /// True when the account never bought credits: free models are then capped lower per day.
    pub is_free_tier: Option<bool>,
    /// True for a management (provisioning) key, which cannot generate.
    pub is_management_key: Option<bool>,
    /// When the key expires.
    pub expires_at: Option<Timestamp>,
    /// The deprecated request rate limit, when reported.
    pub rate_limit: Option<KeyRateLimit>,
}

/// The `rate_limit` object: `requests` per `interval` (e.g. 50 per `10s`). Deprecated upstream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeyRateLimit {
    /// Requests allowed per interval.
    pub requests: Option<u64>,
    /// The interval as OpenRouter wrote it (`10s`, `1h`).
    pub interval: Option<String>,
}

impl KeyInfo {
    /// Credits left: `limit_remaining` when reported, else `limit - usage`; `None` when the key
    /// has no limit.
    pub fn credits_remaining(&self) -> Option<f64> {
        self.limit_remaining.or_else(|| {
            let limit = self.limit?;
            Some((limit - self.usage.unwrap_or(0.0)).max(0.0))
        })
    }

    /// True when the key can spend nothing more (a limit with nothing left).
    pub fn is_exhausted(&self) -> bool {
        self.credits_remaining().is_some_and(|left| left <= 0.0)
    }

    /// When the credit limit next resets, after `now`. OpenRouter resets limits at midnight
    /// UTC: every day, on Mondays, or on the first of the month. `None` when the limit never
    /// resets.
    pub fn next_limit_reset(&self, now: Timestamp) -> Option<Timestamp> {
        let utc = TimeZone::UTC;
        let tomorrow = next_midnight(now, &utc);
        match self
            .limit_reset
            .as_deref()?
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "daily" => Some(tomorrow),
            "weekly" => {
                let day = tomorrow.to_zoned(utc.clone());
                let ahead = (8 - day.weekday().to_monday_one_offset()) % 7;
                day.checked_add(i64::from(ahead).days())
                    .ok()
                    .map(|z| z.timestamp())
            }
            "monthly" => {
                let today = now.to_zoned(utc.clone()).date();
                today
                    .first_of_month()
                    .checked_add(1.month())
                    .ok()
                    .and_then(|d| d.to_zoned(utc).ok())
                    .map(|z| z.timestamp())
            }
            _ => None,
        }
    }
}

/// Parses the body of `GET /api/v1/key` (either shape).
///
/// # Errors
/// [`ErrorKind::InvalidResponse`] when the body is not JSON or has no `data` object.
pub fn parse_key_info(body: &[u8]) -> Result<KeyInfo, Error> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(format!(
            "the key endpoint's answer is not JSON ({} bytes): {e}; starts with: {}",
            body.len(),
            one_line(&String::from_utf8_lossy(&body[..body.len().min(80)]))
        ))
    })?;
    let data = value
        .get("data")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("the key endpoint's answer has no `data` object"))?;
    let number = |key: &str| data.get(key).and_then(Value::as_f64);
    let flag = |key: &str| data.get(key).and_then(Value::as_bool);
    let text = |key: &str| {
        data.get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .filter(|s| !s.is_empty())
    };
    let rate_limit = data
        .get("rate_limit")
        .and_then(Value::as_object)
        .map(|r| KeyRateLimit {
            requests: r.get("requests").and_then(Value::as_u64),
            interval: r.get("interval").and_then(Value::as_str).map(str::to_owned),
        });
    Ok(KeyInfo {
        label: text("label").map(|l| scrub(&l)),
        limit: number("limit"),
        limit_remaining: number("limit_remaining"),
        limit_reset: text("limit_reset"),
        usage: number("usage"),
        usage_daily: number("usage_daily"),
        usage_weekly: number("usage_weekly"),
        usage_monthly: number("usage_monthly"),
        is_free_tier: flag("is_free_tier"),
        is_management_key: flag("is_management_key").or_else(|| flag("is_provisioning_key")),
        expires_at: text("expires_at").and_then(|t| t.parse().ok()),
        rate_limit,
    })
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidResponse, message).with_provider(PROVIDER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn limit_resets_fall_on_utc_midnights() {
        let mut info = KeyInfo {
            limit_reset: Some("daily".into()),
            ..KeyInfo::default()
        };
        // 2026-11-23 is a Monday.
        let now = at("2026-11-23T10:00:00Z");
        assert_eq!(info.next_limit_reset(now), Some(at("2026-11-24T00:00:00Z")));
        info.limit_reset = Some("weekly".into());
        assert_eq!(info.next_limit_reset(now), Some(at("2026-11-30T00:00:00Z")));
        assert_eq!(
            info.next_limit_reset(at("2026-11-29T23:59:00Z")),
            Some(at("2026-11-30T00:00:00Z"))
        );
        info.limit_reset = Some("monthly".into());
        assert_eq!(info.next_limit_reset(now), Some(at("2026-12-01T00:00:00Z")));
        assert_eq!(
            info.next_limit_reset(at("2026-12-31T23:00:00Z")),
            Some(at("2027-01-01T00:00:00Z"))
        );
        info.limit_reset = None;
        assert_eq!(info.next_limit_reset(now), None);
    }

    #[test]
    fn credits_remaining_falls_back_to_limit_minus_usage() {
        let info = KeyInfo {
            limit: Some(5.0),
            usage: Some(5.5),
            ..KeyInfo::default()
        };
        assert_eq!(info.credits_remaining(), Some(0.0));
        assert!(info.is_exhausted());
        assert_eq!(KeyInfo::default().credits_remaining(), None);
    }

    #[test]
    fn bodies_without_data_are_invalid() {
        for body in [&b"<html>"[..], b"{}", b"{\"data\":[]}"] {
            assert_eq!(
                parse_key_info(body).unwrap_err().kind(),
                ErrorKind::InvalidResponse
            );
        }
    }
}

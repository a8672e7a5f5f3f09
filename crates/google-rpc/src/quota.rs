//! Quota violations, gathered from every place a Google 429 names them, and read by structure.
//!
//! A 429 can name its quotas in a `QuotaFailure` (current), in an `ErrorInfo`'s metadata
//! (legacy, 2024 to early 2025) or only in the message text (the "limit: 0" variant puts the
//! limit there and nowhere else). Quota ids change over time, so the period and the resource are
//! read from the id's words (`PerDay`, `PerMinute`, `Tokens`, `Requests`, `Images`), never by
//! comparing with one exact id.

use imagegate_core::quota::Dimension;

use crate::status::{ErrorInfo, QuotaViolation, Status};

/// One quota the upstream said was exceeded, merged from every source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) quota_id: Option<String>,
    pub(crate) metric: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) value: Option<u64>,
    /// Prose from older `QuotaFailure` forms ("Daily Limit Exceeded"), read for its period.
    pub(crate) description: Option<String>,
}

/// The window a quota counts over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Period {
    Minute,
    Day,
    Unknown,
}

/// What a quota counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resource {
    Requests,
    Tokens,
    Images,
    Unknown,
}

impl Violation {
    /// Per minute or per day, from the id's words first, then the metric's.
    pub(crate) fn period(&self) -> Period {
        [&self.quota_id, &self.metric, &self.description]
            .into_iter()
            .flatten()
            .map(|text| period_of(text))
            .find(|p| *p != Period::Unknown)
            .unwrap_or(Period::Unknown)
    }

    fn resource(&self) -> Resource {
        [&self.quota_id, &self.metric]
            .into_iter()
            .flatten()
            .map(|text| resource_of(text))
            .find(|r| *r != Resource::Unknown)
            .unwrap_or(Resource::Unknown)
    }

    /// The dimension this quota limits; `None` when the words do not say (a tokens-per-day
    /// quota has no dimension in imagegate's model, so it is not forced into one).
    pub(crate) fn dimension(&self) -> Option<Dimension> {
        match (self.period(), self.resource()) {
            (Period::Minute, Resource::Requests) => Some(Dimension::Rpm),
            (Period::Minute, Resource::Tokens) => Some(Dimension::Tpm),
            (Period::Minute, Resource::Images) => Some(Dimension::Ipm),
            (Period::Day, Resource::Requests) => Some(Dimension::Rpd),
            _ => None,
        }
    }
}

/// Lowercase with separators removed, so `PerDay`, `per_day` and `per day` read alike.
fn squash(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn period_of(text: &str) -> Period {
    let t = squash(text);
    if t.contains("perday") || t.contains("daily") {
        Period::Day
    } else if t.contains("perminute") || t.contains("permin") {
        Period::Minute
    } else {
        Period::Unknown
    }
}

fn resource_of(text: &str) -> Resource {
    let t = squash(text);
    // Tokens first: `GenerateContentInputTokensPerModelPerMinute` also says "content".
    if t.contains("token") {
        Resource::Tokens
    } else if t.contains("request") {
        Resource::Requests
    } else if t.contains("image") {
        Resource::Images
    } else {
        Resource::Unknown
    }
}

/// Every violation the body names, in the order: `QuotaFailure` entries, `ErrorInfo` quota
/// metadata, then lines of the message that no structured entry covered. Limits found only in
/// the message ("limit: 0") are attached to the structured entry with the same metric.
pub(crate) fn violations(status: &Status) -> Vec<Violation> {
    let mut out: Vec<Violation> = status.violations().map(from_quota_failure).collect();
    out.extend(status.error_infos().filter_map(from_error_info));
    let mut filled = vec![false; out.len()];
    for line in message_lines(&status.message) {
        let slot = (0..out.len()).find(|&i| {
            !filled[i]
                && out[i].value.is_none()
                && (line.metric.is_none() || out[i].metric == line.metric)
        });
        match slot {
            Some(i) => {
                filled[i] = true;
                out[i].value = line.value;
                if out[i].model.is_none() {
                    out[i].model = line.model;
                }
            }
            None if !covered(&out, &line) => {
                out.push(line);
                filled.push(true);
            }
            None => {}
        }
    }
    out
}

/// A message line repeating what a structured entry already said (same metric and value).
fn covered(out: &[Violation], line: &Violation) -> bool {
    out.iter()
        .any(|v| v.metric == line.metric && v.value == line.value)
}

fn from_quota_failure(v: &QuotaViolation) -> Violation {
    Violation {
        quota_id: v.quota_id.clone(),
        metric: v.quota_metric.clone(),
        model: v.quota_dimensions.get("model").cloned(),
        value: v.quota_value,
        description: v.description.clone(),
    }
}

/// The legacy variant: `ErrorInfo.metadata.{quota_limit, quota_metric, quota_limit_value}`.
/// Keys are matched without case or separators (`quota_limit` and `quotaLimit` alike).
fn from_error_info(info: &ErrorInfo) -> Option<Violation> {
    let get = |name: &str| {
        info.metadata
            .iter()
            .find(|(k, _)| squash(k) == name)
            .map(|(_, v)| v.clone())
    };
    let quota_id = get("quotalimit");
    let metric = get("quotametric");
    if quota_id.is_none() && metric.is_none() {
        return None;
    }
    Some(Violation {
        quota_id,
        metric,
        model: get("model"),
        value: get("quotalimitvalue").and_then(|v| v.trim().parse().ok()),
        description: None,
    })
}

/// Lines like `* Quota exceeded for metric: <metric>, limit: 0, model: <model>`.
fn message_lines(message: &str) -> Vec<Violation> {
    message
        .lines()
        .filter_map(|line| {
            let value = field(line, "limit:").and_then(|v| v.parse().ok());
            value?;
            Some(Violation {
                quota_id: None,
                metric: field(line, "metric:").map(str::to_owned),
                model: field(line, "model:").map(str::to_owned),
                value,
                description: None,
            })
        })
        .collect()
}

/// The text after `label` up to the next comma (or the end of the line), trimmed.
fn field<'a>(line: &'a str, label: &str) -> Option<&'a str> {
    let start = line.find(label)? + label.len();
    let rest = &line[start..];
    let end = rest.find(',').unwrap_or(rest.len());
    let value = rest[..end].trim().trim_end_matches('.');
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(id: &str, metric: &str) -> Violation {
        Violation {
            quota_id: Some(id.to_owned()),
            metric: Some(metric.to_owned()),
            ..Violation::default()
        }
    }

    #[test]
    fn dimensions_follow_the_words_not_exact_ids() {
        let cases = [
            (
                "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                "x/generate_content_free_tier_requests",
                Some(Dimension::Rpd),
            ),
            (
                "GenerateContentInputTokensPerModelPerMinute-FreeTier",
                "x/generate_content_free_tier_input_token_count",
                Some(Dimension::Tpm),
            ),
            (
                "GenerateRequestsPerMinutePerProjectPerModel",
                "x/generate_content_requests",
                Some(Dimension::Rpm),
            ),
            (
                "ImagesPerMinutePerProjectPerModel-PaidTier2",
                "x/generate_content_output_images",
                Some(Dimension::Ipm),
            ),
            (
                "generate_requests_per_day_paid",
                "x/whatever",
                Some(Dimension::Rpd),
            ),
            ("TokensPerDay", "x/token_count", None),
            ("SomethingNew", "x/new_metric", None),
        ];
        let older = Violation {
            metric: Some("x/requests".into()),
            description: Some("Daily Limit Exceeded".into()),
            ..Violation::default()
        };
        assert_eq!(older.dimension(), Some(Dimension::Rpd));
        for (id, metric, want) in cases {
            assert_eq!(v(id, metric).dimension(), want, "{id}");
        }
    }

    #[test]
    fn message_limits_attach_to_matching_structured_entries() {
        let status = crate::parse_status(
            br#"{"error":{"code":429,"message":"Over.\n* Quota exceeded for metric: a/tokens, limit: 0, model: m1\n* Quota exceeded for metric: a/requests, limit: 0, model: m1\n* Quota exceeded for metric: a/requests, limit: 0, model: m1\nPlease retry in 1s.","details":[
            {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[
              {"quotaMetric":"a/tokens","quotaId":"TokensPerMinute"},
              {"quotaMetric":"a/requests","quotaId":"RequestsPerMinute"},
              {"quotaMetric":"a/requests","quotaId":"RequestsPerDay"}]}]}}"#,
        )
        .unwrap();
        let all = violations(&status);
        assert_eq!(all.len(), 3);
        assert!(all.iter().all(|v| v.value == Some(0)));
        assert!(all.iter().all(|v| v.model.as_deref() == Some("m1")));
    }

    #[test]
    fn message_only_limits_become_violations() {
        let status = crate::parse_status(
            br#"{"error":{"code":429,"message":"* Quota exceeded for metric: a/requests, limit: 0, model: gemini-3-pro-image"}}"#,
        )
        .unwrap();
        let all = violations(&status);
        assert_eq!(
            all,
            [Violation {
                quota_id: None,
                metric: Some("a/requests".into()),
                model: Some("gemini-3-pro-image".into()),
                value: Some(0),
                description: None,
            }]
        );
    }
}

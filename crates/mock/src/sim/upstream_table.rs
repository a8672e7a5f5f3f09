//! The `[upstream]` table of a scenario file, read by `imagegate simulate` (imagegate-sim) and
//! by `imagegate emulate` (imagegate-emulator), which takes a scenario file as is: one schema,
//! one set of checks and one wording of errors, so a pool setting is added once and a scenario
//! means the same upstream to both (docs/simulate.md, docs/emulate.md).
//!
//! Read in two steps, like the files it is part of: serde checks the shape ([`RawUpstream`],
//! unknown keys refused with their line), then [`RawUpstream::check`] checks the meaning
//! (durations, ranges, providers, that each model is in one pool of its project), each error a
//! [`TableError`] naming the key and what was expected; the front end adds its file name.
//!
//! Two parts of the table are the emulator's alone, `[[upstream.key]]` and the `faults`
//! tables: they are the type parameters `K` and `F`, deserialized by the front end's own type
//! and handed back unchecked in [`UpstreamTable::keys`], [`UpstreamTable::faults`] and
//! [`PoolTable::faults`]. The simulator passes a type that refuses them with its reason.
//!
//! ```
//! use std::time::Duration;
//!
//! use imagegate_mock::sim::upstream_table::{RawUpstream, UpstreamTable};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // What serde (here toml) reads from the file; `()` stands for the parts this caller refuses.
//! let raw: RawUpstream<(), ()> = serde_json::from_value(serde_json::json!({
//!     "latency": "8s..30s",
//!     "pool": [{ "provider": "gemini", "project": "proj-a", "models": ["m"], "rpm": 10 }],
//! }))?;
//! let table: UpstreamTable<(), ()> = raw.check()?;
//! assert_eq!(table.latency.map(|l| l.max), Some(Duration::from_secs(30)));
//! assert_eq!(table.pools[0].pool.limits.rpm, Some(10));
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use imagegate_core::quota::Limits;
use serde::Deserialize;

use super::wire::UpstreamKind;
use super::{Latency, TruePool, Window};

/// How long a rejection (429, 402, 404, 503) takes to arrive when `reject_latency` is not set.
pub const DEFAULT_REJECT_LATENCY: Duration = Duration::from_millis(500);

/// A value of the table that could not be used: the key and what was expected; the front end
/// maps it into its own error, adding the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableError {
    /// The key (`upstream.pool[1].rpm`), or the line and column for a syntax error.
    pub key: String,
    /// What was expected, and what was found.
    pub expected: String,
}

impl TableError {
    /// An error at `key`.
    pub fn new(key: impl Into<String>, expected: impl Into<String>) -> Self {
        TableError {
            key: key.into(),
            expected: expected.into(),
        }
    }

    /// A TOML syntax or shape error of the file `text`, located by the parser's byte `span`:
    /// the key names the line, the column and the line's text, so a user finds it without
    /// counting (a line naming a key only up to its `=`); without a span, the key is `(file)`.
    pub fn syntax(text: &str, span: Option<Range<usize>>, message: &str) -> Self {
        let Some(span) = span else {
            return TableError::new("(file)", message.trim());
        };
        let before = text.get(..span.start.min(text.len())).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        let at = text.lines().nth(line - 1).unwrap_or_default().trim();
        // An emulator file holds API keys (`[[upstream.key]]`): a line naming one is quoted
        // up to its `=` only, so an unclosed quote never echoes the key.
        let snippet = match at.split_once('=') {
            Some((name, _)) if at.to_ascii_lowercase().contains("key") => {
                format!("{} = ...", name.trim())
            }
            _ => at.to_owned(),
        };
        TableError::new(
            format!("line {line}, column {column}: {snippet}"),
            message.trim(),
        )
    }
}

/// The text of the scenario or configuration file at `path`.
///
/// # Errors
/// A [`TableError`] at `(file)` saying why it could not be read.
pub fn read_file(path: &Path) -> Result<String, TableError> {
    std::fs::read_to_string(path)
        .map_err(|e| TableError::new("(file)", format!("expected a readable TOML file ({e})")))
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key, self.expected)
    }
}

impl std::error::Error for TableError {}

/// A duration such as `"20s"`, `"500ms"` or `"48h"` at `key`.
///
/// # Errors
/// A [`TableError`] at `key` quoting `text`.
pub fn duration(key: &str, text: &str) -> Result<Duration, TableError> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        TableError::new(
            key,
            format!("expected a duration such as \"20s\" or \"48h\", found \"{text}\" ({e})"),
        )
    })
}

/// A latency at `key`: a range `"8s..30s"` (uniform over it) or one duration `"20s"`.
///
/// # Errors
/// A [`TableError`] at `key` for a bad duration or a range whose low end is above its high.
pub fn latency(key: &str, text: &str) -> Result<Latency, TableError> {
    match text.split_once("..") {
        Some((lo, hi)) => {
            let min = duration(key, lo)?;
            let max = duration(key, hi)?;
            if min > max {
                return Err(TableError::new(
                    key,
                    format!("expected a range low..high with low <= high, found \"{text}\""),
                ));
            }
            Ok(Latency { min, max })
        }
        None => Ok(Latency::fixed(duration(key, text)?)),
    }
}

/// The provider named `text` at `key` (`"gemini"`, `"openrouter"`, `"openai"`, `"vertex"`, in
/// any case).
///
/// # Errors
/// A [`TableError`] at `key` listing the names.
pub fn kind(key: &str, text: &str) -> Result<UpstreamKind, TableError> {
    let name = text.trim();
    UpstreamKind::ALL
        .into_iter()
        .find(|kind| kind.as_str().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let names: Vec<String> = UpstreamKind::ALL
                .iter()
                .map(|k| format!("\"{}\"", k.as_str()))
                .collect();
            let list = match names.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                _ => names.concat(),
            };
            TableError::new(key, format!("expected {list}, found \"{text}\""))
        })
}

fn window(key: &str, text: &str) -> Result<Window, TableError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "sliding" => Ok(Window::Sliding),
        "fixed" => Ok(Window::Fixed),
        _ => Err(TableError::new(
            key,
            format!("expected \"sliding\" or \"fixed\", found \"{text}\""),
        )),
    }
}

/// The `[upstream]` table as written. `K` is one `[[upstream.key]]` entry and `F` one `faults`
/// table, both the emulator's (see the module's documentation).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream<K, F> {
    #[serde(default)]
    latency: Option<String>,
    #[serde(default)]
    overload_rate: f64,
    #[serde(default)]
    window: Option<String>,
    #[serde(default)]
    reject_latency: Option<String>,
    #[serde(default = "Vec::new")]
    pool: Vec<RawPool<F>>,
    #[serde(default = "Vec::new")]
    key: Vec<K>,
    #[serde(default = "Option::default")]
    faults: Option<F>,
}

/// One `[[upstream.pool]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool<F> {
    provider: String,
    project: String,
    models: Vec<String>,
    rpm: Option<u64>,
    rpd: Option<u64>,
    ipm: Option<u64>,
    tpm: Option<u64>,
    window: Option<String>,
    batch_turnaround: Option<String>,
    batch_enqueued_tokens: Option<u64>,
    #[serde(default = "Option::default")]
    faults: Option<F>,
}

/// The checked `[upstream]` table.
#[derive(Clone, Debug)]
pub struct UpstreamTable<K, F> {
    /// `latency`, how long an image takes; `None` when unset (the front end decides whether it
    /// has a default).
    pub latency: Option<Latency>,
    /// `reject_latency`, or [`DEFAULT_REJECT_LATENCY`].
    pub reject_latency: Duration,
    /// `overload_rate`: the share of admissible requests answered 503, in 0.0..1.0.
    pub overload_rate: f64,
    /// The pools, in file order (at least one).
    pub pools: Vec<PoolTable<F>>,
    /// The `[[upstream.key]]` entries as written, unchecked.
    pub keys: Vec<K>,
    /// `[upstream.faults]` as written, unchecked.
    pub faults: Option<F>,
}

/// One checked `[[upstream.pool]]`.
#[derive(Clone, Debug)]
pub struct PoolTable<F> {
    /// Whose pool: its wire shapes and the zone of its day.
    pub kind: UpstreamKind,
    /// The project (Gemini, Vertex AI), account (OpenRouter) or organization (OpenAI).
    pub project: String,
    /// The pool as the upstream enforces it: models, limits, window, day zone.
    pub pool: TruePool,
    /// Its Batch API (`batch_turnaround`, `batch_enqueued_tokens`), if it has one.
    pub batch: Option<BatchApi>,
    /// Its `faults` table as written, unchecked.
    pub faults: Option<F>,
}

/// A pool's Batch API (Gemini's): a turnaround and its own quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchApi {
    /// How long a batch job takes, from creation to its results (uniform over the range).
    pub turnaround: Latency,
    /// The most tokens enqueued at once in unfinished jobs; `None`: no limit.
    pub enqueued_tokens: Option<u64>,
}

impl<K, F> UpstreamTable<K, F> {
    /// True when some pool of `kind`'s `project` has `model`.
    pub fn serves(&self, kind: UpstreamKind, project: &str, model: &str) -> bool {
        self.pools.iter().any(|p| {
            p.kind == kind && p.project == project && p.pool.models.iter().any(|m| m == model)
        })
    }
}

impl<K, F> RawUpstream<K, F> {
    /// Checks the meaning of the table.
    ///
    /// # Errors
    /// The first [`TableError`] met, in file order.
    pub fn check(self) -> Result<UpstreamTable<K, F>, TableError> {
        if !(0.0..1.0).contains(&self.overload_rate) {
            return Err(TableError::new(
                "upstream.overload_rate",
                format!(
                    "expected a share in 0.0..1.0 (e.g. 0.02), found {}",
                    self.overload_rate
                ),
            ));
        }
        let default_window = match &self.window {
            Some(text) => window("upstream.window", text)?,
            None => Window::Sliding,
        };
        if self.pool.is_empty() {
            return Err(TableError::new(
                "upstream.pool",
                "expected at least one [[upstream.pool]]",
            ));
        }
        let mut pools = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, p) in self.pool.into_iter().enumerate() {
            pools.push(p.check(i, default_window, &mut seen)?);
        }
        Ok(UpstreamTable {
            latency: match &self.latency {
                Some(text) => Some(latency("upstream.latency", text)?),
                None => None,
            },
            reject_latency: match &self.reject_latency {
                Some(text) => duration("upstream.reject_latency", text)?,
                None => DEFAULT_REJECT_LATENCY,
            },
            overload_rate: self.overload_rate,
            pools,
            keys: self.key,
            faults: self.faults,
        })
    }
}

impl<F> RawPool<F> {
    /// Checks pool `i`; `seen` holds the (provider, project, model) of the pools before it.
    fn check(
        self,
        i: usize,
        default_window: Window,
        seen: &mut BTreeSet<(UpstreamKind, String, String)>,
    ) -> Result<PoolTable<F>, TableError> {
        let key = |k: &str| format!("upstream.pool[{i}].{k}");
        let kind = kind(&key("provider"), &self.provider)?;
        if self.project.trim().is_empty() {
            return Err(TableError::new(
                key("project"),
                "expected a project name, found \"\"",
            ));
        }
        if self.models.is_empty() {
            return Err(TableError::new(
                key("models"),
                "expected at least one model",
            ));
        }
        for model in &self.models {
            if model.trim().is_empty() {
                return Err(TableError::new(
                    key("models"),
                    "expected model names, found \"\"",
                ));
            }
            if !seen.insert((kind, self.project.clone(), model.clone())) {
                return Err(TableError::new(
                    key("models"),
                    format!(
                        "expected each model in one pool per project, found `{model}` of {}/{} twice",
                        kind.as_str(),
                        self.project
                    ),
                ));
            }
        }
        let pool_window = match &self.window {
            Some(text) => window(&key("window"), text)?,
            None => default_window,
        };
        let limits = Limits {
            rpm: self.rpm,
            rpd: self.rpd,
            tpm: self.tpm,
            ipm: self.ipm,
        };
        let batch = match (self.batch_turnaround.as_deref(), self.batch_enqueued_tokens) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(TableError::new(
                    key("batch_enqueued_tokens"),
                    "expected it with a `batch_turnaround` (a pool without a batch API has no batch quota)",
                ));
            }
            (Some(_), _) if kind != UpstreamKind::Gemini => {
                return Err(TableError::new(
                    key("batch_turnaround"),
                    format!(
                        "expected a batch API on a \"gemini\" pool only (the Batch API is Gemini's), found one on \"{}\"",
                        kind.as_str()
                    ),
                ));
            }
            (Some(_), Some(0)) => {
                return Err(TableError::new(
                    key("batch_enqueued_tokens"),
                    "expected at least 1, found 0",
                ));
            }
            (Some(text), tokens) => Some(BatchApi {
                turnaround: latency(&key("batch_turnaround"), text)?,
                enqueued_tokens: tokens,
            }),
        };
        Ok(PoolTable {
            kind,
            project: self.project,
            pool: TruePool::new(self.models, limits, kind.day_zone()).with_window(pool_window),
            batch,
            faults: self.faults,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: &str = r#"{
        "latency": "2s..5s",
        "window": "fixed",
        "reject_latency": "200ms",
        "overload_rate": 0.02,
        "pool": [
            { "provider": "Gemini", "project": "proj-a", "models": ["m1", "m2"],
              "rpm": 10, "rpd": 250, "ipm": 5, "tpm": 4000000,
              "batch_turnaround": "2m..10m", "batch_enqueued_tokens": 5000 },
            { "provider": "openrouter", "project": "acct", "models": ["google/m"],
              "rpd": 0, "window": "sliding" }
        ]
    }"#;

    fn check(text: &str) -> Result<UpstreamTable<(), ()>, TableError> {
        let raw: RawUpstream<(), ()> =
            serde_json::from_str(text).map_err(|e| TableError::new("(shape)", e.to_string()))?;
        raw.check()
    }

    fn with(replace: &str, by: &str) -> String {
        assert!(POOL.contains(replace), "{replace}");
        POOL.replace(replace, by)
    }

    #[test]
    fn a_good_table_parses_into_the_pools_it_means() {
        let t = check(POOL).unwrap();
        assert_eq!(
            t.latency,
            Some(Latency {
                min: Duration::from_secs(2),
                max: Duration::from_secs(5)
            })
        );
        assert_eq!(t.reject_latency, Duration::from_millis(200));
        assert_eq!(t.overload_rate, 0.02);
        let gemini = &t.pools[0];
        assert_eq!(gemini.kind, UpstreamKind::Gemini);
        assert_eq!(gemini.project, "proj-a");
        let limits = Limits {
            rpm: Some(10),
            rpd: Some(250),
            ipm: Some(5),
            tpm: Some(4_000_000),
        };
        let expected = TruePool::new(
            vec!["m1".into(), "m2".into()],
            limits,
            imagegate_core::quota::PACIFIC.clone(),
        )
        .with_window(Window::Fixed);
        assert_eq!(gemini.pool.models, expected.models);
        assert_eq!(gemini.pool.limits, expected.limits);
        assert_eq!(gemini.pool.window, Window::Fixed, "the table's window");
        assert_eq!(gemini.pool.day_zone, expected.day_zone);
        assert_eq!(
            gemini.batch,
            Some(BatchApi {
                turnaround: Latency {
                    min: Duration::from_secs(120),
                    max: Duration::from_secs(600)
                },
                enqueued_tokens: Some(5_000),
            })
        );
        let openrouter = &t.pools[1];
        assert_eq!(openrouter.pool.limits.rpd, Some(0));
        assert_eq!(openrouter.pool.window, Window::Sliding, "its own window");
        assert_eq!(openrouter.pool.day_zone, jiff::tz::TimeZone::UTC);
        assert_eq!(openrouter.batch, None);
        assert!(t.serves(UpstreamKind::Gemini, "proj-a", "m2"));
        assert!(!t.serves(UpstreamKind::Gemini, "acct", "google/m"));
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let t = check(r#"{ "pool": [{ "provider": "openai", "project": "o", "models": ["m"] }] }"#)
            .unwrap();
        assert_eq!(t.latency, None);
        assert_eq!(t.reject_latency, DEFAULT_REJECT_LATENCY);
        assert_eq!(t.overload_rate, 0.0);
        assert_eq!(t.pools[0].pool.window, Window::Sliding);
        assert_eq!(t.pools[0].pool.limits, Limits::NONE);
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let cases = [
            (
                with("\"2s..5s\"", "\"soon\""),
                "upstream.latency",
                "\"soon\"",
            ),
            (
                with("\"2s..5s\"", "\"5s..2s\""),
                "upstream.latency",
                "low <= high",
            ),
            (
                with("\"200ms\"", "\"1 fortnight\""),
                "upstream.reject_latency",
                "expected a duration",
            ),
            (with("0.02", "1.0"), "upstream.overload_rate", "0.0..1.0"),
            (
                with("\"window\": \"fixed\"", "\"window\": \"hourly\""),
                "upstream.window",
                "\"sliding\" or \"fixed\"",
            ),
            (
                with("\"window\": \"sliding\"", "\"window\": \"daily\""),
                "upstream.pool[1].window",
                "\"daily\"",
            ),
            (
                with("\"Gemini\"", "\"gemni\""),
                "upstream.pool[0].provider",
                "expected \"gemini\", \"openrouter\", \"openai\" or \"vertex\", found \"gemni\"",
            ),
            (
                with("\"acct\"", "\" \""),
                "upstream.pool[1].project",
                "project name",
            ),
            (
                with("[\"google/m\"]", "[]"),
                "upstream.pool[1].models",
                "at least one model",
            ),
            (
                with("[\"m1\", \"m2\"]", "[\"m1\", \"m1\"]"),
                "upstream.pool[0].models",
                "`m1` of gemini/proj-a twice",
            ),
            (
                with("\"2m..10m\"", "\"10m..2m\""),
                "upstream.pool[0].batch_turnaround",
                "low <= high",
            ),
            (
                with("5000", "0"),
                "upstream.pool[0].batch_enqueued_tokens",
                "at least 1",
            ),
            (
                with("\"batch_turnaround\": \"2m..10m\", ", ""),
                "upstream.pool[0].batch_enqueued_tokens",
                "with a `batch_turnaround`",
            ),
            (
                with("\"rpd\": 0,", "\"rpd\": 0, \"batch_turnaround\": \"2m\","),
                "upstream.pool[1].batch_turnaround",
                "Gemini's",
            ),
        ];
        for (text, key, said) in cases {
            let e = check(&text).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.expected.contains(said), "{e}");
            assert!(
                e.to_string().starts_with(&format!("`{key}`: expected")),
                "{e}"
            );
        }
        let e = check(r#"{ "latency": "1s" }"#).unwrap_err();
        assert_eq!(e.key, "upstream.pool");
    }

    #[test]
    fn unknown_keys_are_refused_by_shape() {
        let e = check(&with("\"rpm\": 10", "\"rmp\": 10")).unwrap_err();
        assert!(e.expected.contains("unknown field `rmp`"), "{e}");
        let e = check(&with("\"latency\"", "\"latncy\"")).unwrap_err();
        assert!(e.expected.contains("unknown field `latncy`"), "{e}");
    }

    #[test]
    fn an_unreadable_file_is_named_as_the_file() {
        let e = read_file(Path::new("no/such/scenario.toml")).unwrap_err();
        assert_eq!(e.key, "(file)");
        assert!(
            e.expected.starts_with("expected a readable TOML file ("),
            "{e}"
        );
    }

    #[test]
    fn a_syntax_error_names_its_line_and_column() {
        let text = "a = 1\n  b = [\nc = 3\n";
        let e = TableError::syntax(text, Some(8..9), " invalid array\n");
        assert_eq!(e.key, "line 2, column 3: b = [");
        assert_eq!(e.expected, "invalid array");
        let keyed = "[[upstream.key]]\nkey = \"sk-held-7QzX\nproject = \"p\"\n";
        let e = TableError::syntax(keyed, Some(23..24), "invalid basic string");
        assert_eq!(e.key, "line 2, column 7: key = ...");
        let e = TableError::syntax(keyed, Some(3..4), "invalid table header");
        assert_eq!(e.key, "line 1, column 4: [[upstream.key]]");
        let e = TableError::syntax(text, None, "no span");
        assert_eq!(e.key, "(file)");
        let e = TableError::syntax(text, Some(500..501), "past the end");
        assert_eq!(e.key, "line 4, column 1: ");
    }
}

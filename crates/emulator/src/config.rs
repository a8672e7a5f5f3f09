//! The emulator's configuration: a TOML file whose `[upstream]` table has the schema of a
//! simulator scenario's (docs/simulate.md), so a scenario file works as is, plus optional
//! `[[upstream.key]]` entries saying which key belongs to which project. Every other table of
//! the file (`[workload]`, `[client]`, ...) is ignored; a top-level `seed` is used when present.
//!
//! Read in two steps, like a scenario and by the same reader for the `[upstream]` table
//! (`imagegate_mock::sim::upstream_table`, so both read one schema with one wording): serde
//! checks the shape (unknown keys inside `[upstream]`, wrong types, with the line), then the
//! shared reader checks the pools (durations, rates, providers) and
//! [`EmulatorConfig::from_raw`] what is the emulator's own (that every key names a project, the
//! faults), each error naming the file, the key and what was expected.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use imagegate_mock::sim::upstream_table::{self, RawUpstream, TableError};
use imagegate_mock::sim::{Latency, TruePool, wire::UpstreamKind};
use serde::Deserialize;

use crate::batch::BatchPool;
use crate::faults::{FaultConfig, RawFaults};

/// The time a rejection takes to arrive when `reject_latency` is not set: the simulator's
/// default, so a scenario behaves the same in both.
pub const DEFAULT_REJECT_LATENCY: Duration = upstream_table::DEFAULT_REJECT_LATENCY;

/// A configuration file that could not be used: which file, which key, what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// The key (`upstream.key[1].project`), or the line for a syntax error.
    pub key: String,
    /// What was expected, and what was found.
    pub expected: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: `{}`: {}",
            self.file.display(),
            self.key,
            self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

/// One true pool, and whose it is.
#[derive(Clone, Debug)]
pub struct PoolEntry {
    /// Whose wire shapes and day zone.
    pub kind: UpstreamKind,
    /// The project (Gemini, Vertex AI), account (OpenRouter) or organization (OpenAI).
    pub project: String,
    /// The pool, as the emulator enforces it.
    pub pool: TruePool,
    /// Its Batch API (`batch_turnaround`, `batch_enqueued_tokens`); `None`: batch jobs for its
    /// models are refused.
    pub batch: Option<BatchPool>,
    /// Its own `[upstream.pool.faults]`, replacing the global table for its requests.
    pub faults: Option<FaultConfig>,
}

/// One API key and the project it belongs to.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyEntry {
    /// Which provider's key.
    pub kind: UpstreamKind,
    /// The project it draws on (keys of one project share its pools).
    pub project: String,
    /// The key itself (any string; never printed by `Debug`).
    pub key: String,
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("kind", &self.kind)
            .field("project", &self.project)
            .field("key", &"***")
            .finish()
    }
}

/// Everything the emulator serves.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// The seed of the latency and overload draws (0 when the file has none).
    pub seed: u64,
    /// How long an image takes.
    pub latency: Latency,
    /// How long a rejection (429, 402, 404, 503) takes to arrive.
    pub reject_latency: Duration,
    /// The share of admissible requests answered 503.
    pub overload_rate: f64,
    /// The true pools, in file order.
    pub pools: Vec<PoolEntry>,
    /// The keys; a provider with none accepts any non-empty key for its first project.
    pub keys: Vec<KeyEntry>,
    /// `[upstream.faults]`: the faults injected into every pool without its own table.
    pub faults: Option<FaultConfig>,
}

/// The file: its `[upstream]` table is a scenario's, read by the simulator's reader, with
/// this crate's own `[[upstream.key]]` entries and `faults` tables in it.
#[derive(Debug, Deserialize)]
struct RawFile {
    seed: Option<u64>,
    upstream: Option<RawUpstream<RawKey, RawFaults>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    provider: String,
    project: String,
    key: String,
}

impl fmt::Debug for RawKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawKey")
            .field("provider", &self.provider)
            .field("project", &self.project)
            .finish_non_exhaustive()
    }
}

struct Checker<'a> {
    file: &'a Path,
}

impl Checker<'_> {
    fn err(&self, key: impl Into<String>, expected: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            key: key.into(),
            expected: expected.into(),
        }
    }

    /// The shared `[upstream]` reader's error, in this file.
    fn table(&self, e: TableError) -> ConfigError {
        self.err(e.key, e.expected)
    }
}

impl EmulatorConfig {
    /// Reads and checks a configuration (or scenario) file.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file, the key and what was expected.
    pub fn load(path: &Path) -> Result<EmulatorConfig, ConfigError> {
        let text = upstream_table::read_file(path).map_err(|e| Checker { file: path }.table(e))?;
        EmulatorConfig::parse(path, &text)
    }

    /// Parses and checks configuration `text`; `file` only names it in errors.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file, the key and what was expected.
    pub fn parse(file: &Path, text: &str) -> Result<EmulatorConfig, ConfigError> {
        let raw: RawFile = toml::from_str(text)
            .map_err(|e| Checker { file }.table(TableError::syntax(text, e.span(), e.message())))?;
        EmulatorConfig::from_raw(file, raw)
    }

    fn from_raw(file: &Path, raw: RawFile) -> Result<EmulatorConfig, ConfigError> {
        let c = Checker { file };
        let Some(u) = raw.upstream else {
            return Err(c.err(
                "upstream",
                "expected an [upstream] table with at least one [[upstream.pool]]",
            ));
        };
        let u = u.check().map_err(|e| c.table(e))?;
        let mut pools = Vec::new();
        for (i, p) in u.pools.into_iter().enumerate() {
            let faults = match p.faults {
                Some(raw) => Some(raw.check(file, &format!("upstream.pool[{i}].faults"))?),
                None => None,
            };
            pools.push(PoolEntry {
                kind: p.kind,
                project: p.project,
                pool: p.pool,
                batch: p.batch.map(|b| BatchPool {
                    turnaround: b.turnaround,
                    enqueued_tokens: b.enqueued_tokens,
                }),
                faults,
            });
        }
        let projects: BTreeSet<(UpstreamKind, &str)> =
            pools.iter().map(|p| (p.kind, p.project.as_str())).collect();
        let mut keys = Vec::new();
        let mut owners: BTreeMap<(UpstreamKind, String), String> = BTreeMap::new();
        for (i, k) in u.keys.into_iter().enumerate() {
            let key = |name: &str| format!("upstream.key[{i}].{name}");
            let kind =
                upstream_table::kind(&key("provider"), &k.provider).map_err(|e| c.table(e))?;
            if kind == UpstreamKind::Vertex {
                return Err(c.err(
                    key("provider"),
                    "expected no [[upstream.key]] for vertex: Vertex AI takes any access token and the project from the path",
                ));
            }
            if k.key.trim().is_empty() {
                return Err(c.err(key("key"), "expected a non-empty key"));
            }
            if !projects.contains(&(kind, k.project.as_str())) {
                return Err(c.err(
                    key("project"),
                    format!(
                        "expected the project of an [[upstream.pool]] of {}, found `{}`",
                        kind.as_str(),
                        k.project
                    ),
                ));
            }
            match owners.get(&(kind, k.key.clone())) {
                Some(owner) if *owner != k.project => {
                    return Err(c.err(
                        key("key"),
                        format!(
                            "expected each key in one project, found it in `{owner}` and `{}`",
                            k.project
                        ),
                    ));
                }
                Some(_) => continue,
                None => {
                    owners.insert((kind, k.key.clone()), k.project.clone());
                }
            }
            keys.push(KeyEntry {
                kind,
                project: k.project,
                key: k.key,
            });
        }
        Ok(EmulatorConfig {
            seed: raw.seed.unwrap_or(0),
            latency: u.latency.unwrap_or(Latency::fixed(Duration::ZERO)),
            reject_latency: u.reject_latency,
            overload_rate: u.overload_rate,
            pools,
            keys,
            faults: match u.faults {
                Some(raw) => Some(raw.check(file, "upstream.faults")?),
                None => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "ignored: the scenario's other tables do not matter"
seed = 7
[workload]
jobs = 10
[upstream]
latency = "0s"
reject_latency = "0s"
[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["m1", "m2"]
rpm = 10
[[upstream.pool]]
provider = "openrouter"
project = "acct"
models = ["google/m"]
rpd = 0
[[upstream.key]]
provider = "gemini"
project = "proj-a"
key = "key-one"
[client]
concurrency = 4
"#;

    fn parse(text: &str) -> Result<EmulatorConfig, ConfigError> {
        EmulatorConfig::parse(Path::new("e.toml"), text)
    }

    #[test]
    fn reads_the_upstream_and_keys_and_ignores_the_rest() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.seed, 7);
        assert_eq!(c.pools.len(), 2);
        assert_eq!(c.pools[0].pool.limits.rpm, Some(10));
        assert_eq!(c.pools[1].kind, UpstreamKind::OpenRouter);
        assert_eq!(c.pools[1].pool.day_zone.iana_name(), Some("UTC"));
        assert_eq!(c.keys.len(), 1);
        assert_eq!(c.reject_latency, Duration::ZERO);
        assert!(!format!("{c:?}").contains("key-one"), "Debug hides keys");
    }

    #[test]
    fn every_shipped_scenario_is_a_valid_configuration() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/scenarios");
        let mut read = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                EmulatorConfig::load(&path).unwrap();
                read += 1;
            }
        }
        assert!(read >= 6, "found {read} scenarios in {}", dir.display());
    }

    #[test]
    fn errors_name_file_key_and_expectation() {
        let e = parse(&GOOD.replace("project = \"proj-a\"\nkey", "project = \"proj-z\"\nkey"))
            .unwrap_err();
        assert_eq!(e.key, "upstream.key[0].project");
        assert!(
            e.to_string()
                .starts_with("e.toml: `upstream.key[0].project`")
        );
        let e = parse(&GOOD.replace("\"0s\"\nreject", "\"soon\"\nreject")).unwrap_err();
        assert_eq!(e.key, "upstream.latency");
        let e = parse(&GOOD.replace("rpm = 10", "rmp = 10")).unwrap_err();
        assert!(e.expected.contains("unknown field `rmp`"), "{e}");
        let e = parse(&GOOD.replace("key = \"key-one\"", "key = \"\"")).unwrap_err();
        assert_eq!(e.key, "upstream.key[0].key");
        let e = parse("seed = 1").unwrap_err();
        assert_eq!(e.key, "upstream");
        let dup = format!(
            "{GOOD}\n[[upstream.key]]\nprovider = \"gemini\"\nproject = \"proj-b\"\nkey = \"key-one\"\n[[upstream.pool]]\nprovider = \"gemini\"\nproject = \"proj-b\"\nmodels = [\"m1\"]\n"
        );
        let e = parse(&dup).unwrap_err();
        assert!(e.expected.contains("one project"), "{e}");
    }

    #[test]
    fn a_syntax_error_on_a_key_line_does_not_quote_the_key() {
        let e = parse(&GOOD.replace("key = \"key-one\"", "key = \"key-one")).unwrap_err();
        assert!(e.key.starts_with("line "), "{e}");
        assert!(e.key.ends_with("key = ..."), "{e}");
        assert!(!e.to_string().contains("key-one"), "{e}");
    }
}

//! Scenarios in TOML: the workload, the true upstream the strategies face, and what the client
//! is configured with. Read in two steps: serde checks the shape (unknown keys, wrong types,
//! with the line), then `Scenario::from_raw` checks the meaning (durations, rates, that every
//! target names a pool), each error naming the file, the key and what was expected.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use imagegate_core::Limits;
use imagegate_mock::sim::{Latency, TruePool, UpstreamKind, Window};
use jiff::Timestamp;
use serde::Deserialize;

/// A scenario file that could not be used: which file, which key, what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file.
    pub file: PathBuf,
    /// The key (`upstream.pool[1].rpm`), or the line for a syntax error.
    pub key: String,
    /// What was expected, and what was found.
    pub expected: String,
}

impl fmt::Display for ScenarioError {
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

impl std::error::Error for ScenarioError {}

/// The most images a scenario may ask for (jobs x images per job).
pub const MAX_IMAGES: u64 = 1_000_000;

/// When jobs arrive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arrival {
    /// All at the start.
    Burst,
    /// One every `interval`, the first at the start.
    Every(Duration),
}

/// The work to do.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// How many jobs.
    pub jobs: u64,
    /// Images each job needs; a job is complete when all arrived.
    pub images_per_job: u32,
    /// When jobs arrive.
    pub arrival: Arrival,
    /// Per job, from its arrival: not done by then means failed.
    pub deadline: Duration,
}

/// One true pool of the upstream.
#[derive(Clone, Debug)]
pub struct Pool {
    /// Whose pool (decides the error shapes and the day's zone).
    pub kind: UpstreamKind,
    /// The project or account.
    pub project: String,
    /// The pool, as the simulated upstream enforces it.
    pub pool: TruePool,
}

/// The truth the strategies face.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// How long an image takes.
    pub latency: Latency,
    /// How long a rejection takes to arrive.
    pub reject_latency: Duration,
    /// Share of admissible requests answered 503.
    pub overload_rate: f64,
    /// The pools.
    pub pools: Vec<Pool>,
}

/// One client target, in preference order.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// Which provider.
    pub kind: UpstreamKind,
    /// Which project or account.
    pub project: String,
    /// Which model.
    pub model: String,
    /// The client's pool name: targets of one project with the same name share it.
    pub pool: Option<String>,
    /// What the client believes the limits are; `None`: it must learn them.
    pub limits: Option<Limits>,
}

/// The client's configuration, shared by every strategy.
#[derive(Clone, Debug, PartialEq)]
pub struct Client {
    /// Jobs in flight at once.
    pub concurrency: usize,
    /// Targets in preference order.
    pub targets: Vec<Target>,
}

/// A whole scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// The simulated wall-clock start.
    pub start: Timestamp,
    /// The seed all randomness derives from.
    pub seed: u64,
    /// The work.
    pub workload: Workload,
    /// The truth.
    pub upstream: Upstream,
    /// The client.
    pub client: Client,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    start: String,
    seed: u64,
    workload: RawWorkload,
    upstream: RawUpstream,
    client: RawClient,
}

fn one() -> u32 {
    1
}

fn burst() -> String {
    "burst".to_owned()
}

fn sliding() -> String {
    "sliding".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    jobs: u64,
    #[serde(default = "one")]
    images_per_job: u32,
    #[serde(default = "burst")]
    arrival: String,
    deadline: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    latency: String,
    #[serde(default)]
    overload_rate: f64,
    #[serde(default = "sliding")]
    window: String,
    #[serde(default)]
    reject_latency: Option<String>,
    pool: Vec<RawPool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    provider: String,
    project: String,
    models: Vec<String>,
    rpm: Option<u64>,
    rpd: Option<u64>,
    ipm: Option<u64>,
    tpm: Option<u64>,
    window: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    concurrency: usize,
    target: Vec<RawTarget>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    provider: String,
    project: String,
    model: String,
    pool: Option<String>,
    limits: Option<Limits>,
}

/// The default time a rejection takes to arrive.
pub const DEFAULT_REJECT_LATENCY: Duration = Duration::from_millis(500);

struct Checker<'a> {
    file: &'a Path,
}

impl Checker<'_> {
    fn err(&self, key: impl Into<String>, expected: impl Into<String>) -> ScenarioError {
        ScenarioError {
            file: self.file.to_owned(),
            key: key.into(),
            expected: expected.into(),
        }
    }

    fn duration(&self, key: &str, text: &str) -> Result<Duration, ScenarioError> {
        humantime::parse_duration(text.trim()).map_err(|e| {
            self.err(
                key,
                format!("expected a duration such as \"20s\" or \"48h\", found \"{text}\" ({e})"),
            )
        })
    }

    fn kind(&self, key: &str, text: &str) -> Result<UpstreamKind, ScenarioError> {
        crate::providers::kind_named(text.trim()).ok_or_else(|| {
            let names: Vec<String> = crate::providers::SIMULATED
                .iter()
                .map(|d| format!("\"{}\"", d.name))
                .collect();
            self.err(
                key,
                format!("expected {}, found \"{text}\"", names.join(" or ")),
            )
        })
    }

    fn window(&self, key: &str, text: &str) -> Result<Window, ScenarioError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "sliding" => Ok(Window::Sliding),
            "fixed" => Ok(Window::Fixed),
            _ => Err(self.err(
                key,
                format!("expected \"sliding\" or \"fixed\", found \"{text}\""),
            )),
        }
    }

    fn latency(&self, key: &str, text: &str) -> Result<Latency, ScenarioError> {
        match text.split_once("..") {
            Some((lo, hi)) => {
                let min = self.duration(key, lo)?;
                let max = self.duration(key, hi)?;
                if min > max {
                    return Err(self.err(
                        key,
                        format!("expected a range low..high with low <= high, found \"{text}\""),
                    ));
                }
                Ok(Latency { min, max })
            }
            None => Ok(Latency::fixed(self.duration(key, text)?)),
        }
    }

    fn arrival(&self, key: &str, text: &str) -> Result<Arrival, ScenarioError> {
        let expected = || {
            self.err(
                key,
                format!(
                    "expected \"burst\" or a rate such as \"30/min\" or \"500/h\", found \"{text}\""
                ),
            )
        };
        let t = text.trim().to_ascii_lowercase();
        if t == "burst" {
            return Ok(Arrival::Burst);
        }
        let (count, unit) = t.split_once('/').ok_or_else(expected)?;
        let count: f64 = count.trim().parse().map_err(|_| expected())?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => 1.0,
            "min" | "m" | "minute" => 60.0,
            "h" | "hour" => 3_600.0,
            "d" | "day" => 86_400.0,
            _ => return Err(expected()),
        };
        if !(count.is_finite() && count > 0.0) {
            return Err(expected());
        }
        Ok(Arrival::Every(Duration::from_secs_f64(per / count)))
    }
}

impl Scenario {
    /// Reads and checks a scenario file.
    ///
    /// # Errors
    /// A [`ScenarioError`] naming the file, the key and what was expected.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: path.to_owned(),
            key: "(file)".to_owned(),
            expected: format!("expected a readable TOML file ({e})"),
        })?;
        Scenario::parse(path, &text)
    }

    /// Parses and checks scenario `text`; `file` is only used to name it in errors.
    ///
    /// # Errors
    /// A [`ScenarioError`] naming the file, the key and what was expected.
    pub fn parse(file: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    (line, column)
                })
                .unwrap_or((0, 0));
            let snippet = text
                .lines()
                .nth(line.saturating_sub(1))
                .unwrap_or_default()
                .trim();
            ScenarioError {
                file: file.to_owned(),
                key: format!("line {line}, column {column}: {snippet}"),
                expected: e.message().trim().to_owned(),
            }
        })?;
        Scenario::from_raw(file, raw)
    }

    fn from_raw(file: &Path, raw: RawScenario) -> Result<Scenario, ScenarioError> {
        let c = Checker { file };
        let start: Timestamp = raw.start.trim().parse().map_err(|e| {
            c.err(
                "start",
                format!("expected an RFC 3339 instant such as \"2026-03-07T18:00:00-08:00\", found \"{}\" ({e})", raw.start),
            )
        })?;
        let w = raw.workload;
        if w.jobs == 0 {
            return Err(c.err("workload.jobs", "expected at least 1 job, found 0"));
        }
        if w.images_per_job == 0 {
            return Err(c.err(
                "workload.images_per_job",
                "expected at least 1 image per job, found 0",
            ));
        }
        // Every job and call is held in memory (a few hundred bytes each): a scenario past
        // this many images would take gigabytes before printing anything.
        let images = w.jobs.saturating_mul(u64::from(w.images_per_job));
        if images > MAX_IMAGES {
            return Err(c.err(
                "workload.jobs",
                format!(
                    "expected at most {MAX_IMAGES} images in all (jobs x images_per_job), found \
                     {images}: the simulation holds every job in memory; simulate a sample and \
                     scale the result"
                ),
            ));
        }
        let workload = Workload {
            jobs: w.jobs,
            images_per_job: w.images_per_job,
            arrival: c.arrival("workload.arrival", &w.arrival)?,
            deadline: c.duration("workload.deadline", &w.deadline)?,
        };

        let u = raw.upstream;
        if !(0.0..1.0).contains(&u.overload_rate) {
            return Err(c.err(
                "upstream.overload_rate",
                format!(
                    "expected a share in 0.0..1.0 (e.g. 0.02), found {}",
                    u.overload_rate
                ),
            ));
        }
        let window = c.window("upstream.window", &u.window)?;
        if u.pool.is_empty() {
            return Err(c.err("upstream.pool", "expected at least one [[upstream.pool]]"));
        }
        let mut pools = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, p) in u.pool.into_iter().enumerate() {
            let key = |k: &str| format!("upstream.pool[{i}].{k}");
            let kind = c.kind(&key("provider"), &p.provider)?;
            if p.models.is_empty() {
                return Err(c.err(key("models"), "expected at least one model"));
            }
            for model in &p.models {
                if !seen.insert((kind, p.project.clone(), model.clone())) {
                    return Err(c.err(
                        key("models"),
                        format!(
                            "expected each model in one pool per project, found `{model}` of {}/{} twice",
                            kind.as_str(),
                            p.project
                        ),
                    ));
                }
            }
            let pool_window = match &p.window {
                Some(text) => c.window(&key("window"), text)?,
                None => window,
            };
            let limits = Limits {
                rpm: p.rpm,
                rpd: p.rpd,
                tpm: p.tpm,
                ipm: p.ipm,
            };
            let zone = crate::providers::zone(kind);
            pools.push(Pool {
                kind,
                project: p.project,
                pool: TruePool::new(p.models, limits, zone).with_window(pool_window),
            });
        }
        let upstream = Upstream {
            latency: c.latency("upstream.latency", &u.latency)?,
            reject_latency: match &u.reject_latency {
                Some(text) => c.duration("upstream.reject_latency", text)?,
                None => DEFAULT_REJECT_LATENCY,
            },
            overload_rate: u.overload_rate,
            pools,
        };

        let cl = raw.client;
        if cl.concurrency == 0 {
            return Err(c.err("client.concurrency", "expected at least 1, found 0"));
        }
        if cl.target.is_empty() {
            return Err(c.err("client.target", "expected at least one [[client.target]]"));
        }
        let mut targets = Vec::new();
        for (i, t) in cl.target.into_iter().enumerate() {
            let kind = c.kind(&format!("client.target[{i}].provider"), &t.provider)?;
            if !seen.contains(&(kind, t.project.clone(), t.model.clone())) {
                return Err(c.err(
                    format!("client.target[{i}].model"),
                    format!(
                        "expected a model of an [[upstream.pool]] of {}/{}, found `{}`",
                        kind.as_str(),
                        t.project,
                        t.model
                    ),
                ));
            }
            targets.push(Target {
                kind,
                project: t.project,
                model: t.model,
                pool: t.pool,
                limits: t.limits,
            });
        }
        Ok(Scenario {
            name: raw.name,
            start,
            seed: raw.seed,
            workload,
            upstream,
            client: Client {
                concurrency: cl.concurrency,
                targets,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
start = "2026-03-07T18:00:00-08:00"
seed = 7
[workload]
jobs = 10
arrival = "30/min"
deadline = "48h"
[upstream]
latency = "8s..30s"
overload_rate = 0.02
[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["m1", "m2"]
rpm = 10
[client]
concurrency = 4
[[client.target]]
provider = "gemini"
project = "proj-a"
model = "m2"
limits = { rpm = 10, rpd = 250 }
"#;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(Path::new("s.toml"), text)
    }

    #[test]
    fn reads_the_documented_shape() {
        let s = parse(GOOD).unwrap();
        assert_eq!(
            s.start,
            "2026-03-08T02:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(s.workload.arrival, Arrival::Every(Duration::from_secs(2)));
        assert_eq!(s.upstream.latency.max, Duration::from_secs(30));
        assert_eq!(s.upstream.pools[0].pool.limits.rpm, Some(10));
        assert_eq!(s.client.targets[0].limits.unwrap().rpd, Some(250));
    }

    #[test]
    fn errors_name_file_key_and_expectation() {
        let e = parse(&GOOD.replace("\"8s..30s\"", "\"fast\"")).unwrap_err();
        assert_eq!(e.key, "upstream.latency");
        assert!(
            e.to_string()
                .starts_with("s.toml: `upstream.latency`: expected a duration")
        );
        let e = parse(&GOOD.replace("model = \"m2\"", "model = \"m3\"")).unwrap_err();
        assert_eq!(e.key, "client.target[0].model");
        let e = parse(&GOOD.replace("\"30/min\"", "\"often\"")).unwrap_err();
        assert_eq!(e.key, "workload.arrival");
        let e = parse(&GOOD.replace("rpm = 10\n", "rmp = 10\n")).unwrap_err();
        assert!(e.key.contains("line"), "{e}");
        assert!(e.expected.contains("unknown field `rmp`"), "{e}");
        let e = parse(&GOOD.replace("seed = 7", "seed = \"x\"")).unwrap_err();
        assert!(e.key.contains("seed"), "{e}");
    }
}

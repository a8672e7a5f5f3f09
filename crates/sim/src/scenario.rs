//! Scenarios in TOML: the workload, the true upstream the strategies face, and what the client
//! is configured with. Read in two steps: serde checks the shape (unknown keys, wrong types,
//! with the line), then `Scenario::from_raw` checks the meaning (durations, rates, that every
//! target names a pool), each error naming the file, the key and what was expected. The
//! `[upstream]` table is read by `imagegate_mock::sim::upstream_table`, the reader the emulator
//! uses too, so a scenario means the same upstream to both.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use imagegate_core::{Priority, quota::Limits};
use imagegate_mock::sim::upstream_table::{self, RawUpstream, TableError};
use imagegate_mock::sim::{Latency, TruePool, wire::UpstreamKind};
use imagegate_router::via::{DEFAULT_BATCH_TURNAROUND, DEFAULT_MIN_DEADLINE};
use jiff::Timestamp;
use serde::{Deserialize, Deserializer, de::Error as _};

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
    /// The classes jobs belong to (`[[workload.class]]`); without any, one class `all` made of
    /// the fields above, so a scenario written before classes existed runs the same jobs.
    pub classes: Vec<Class>,
}

/// One class of jobs: its share of the arrivals, its priority, deadline and size.
#[derive(Clone, Debug, PartialEq)]
pub struct Class {
    /// Its name in the report.
    pub name: String,
    /// Its share of the jobs (relative to the other classes' shares).
    pub share: f64,
    /// The priority its requests carry.
    pub priority: Priority,
    /// Per job, from its arrival.
    pub deadline: Duration,
    /// Images each of its jobs needs.
    pub images_per_job: u32,
}

impl Workload {
    /// The class of job `index`: jobs are dealt to classes in proportion to their shares, by
    /// the deterministic rule of smooth weighted round robin (job `i` goes to the class whose
    /// `share x (i + 1) - jobs dealt so far` is largest, the first on a tie), so a class of a
    /// quarter gets every fourth job rather than a random quarter.
    pub fn deal(&self) -> Vec<usize> {
        let total: f64 = self.classes.iter().map(|c| c.share).sum();
        let mut dealt = vec![0u64; self.classes.len()];
        (0..self.jobs)
            .map(|i| {
                let mut best = 0;
                let mut best_gap = f64::NEG_INFINITY;
                for (k, class) in self.classes.iter().enumerate() {
                    let gap = class.share / total * (i + 1) as f64 - dealt[k] as f64;
                    if gap > best_gap + 1e-9 {
                        best = k;
                        best_gap = gap;
                    }
                }
                if let Some(d) = dealt.get_mut(best) {
                    *d += 1;
                }
                best
            })
            .collect()
    }
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
    /// Its batch API (`batch_turnaround`, `batch_enqueued_tokens`), if it has one.
    pub batch: Option<PoolBatch>,
}

/// A pool's batch API (Gemini's Batch API): its own quota, a turnaround, half the price.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolBatch {
    /// How long a batch job takes, from creation to its results (uniform over the range).
    pub turnaround: Latency,
    /// The most tokens enqueued at once in unfinished jobs; `None`: no limit.
    pub enqueued_tokens: Option<u64>,
}

/// How the client sends work when a target's pool has a batch API (`[client.batch] via`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ViaMode {
    /// The `auto` policy (`imagegate_router::via::plan`) decides per job.
    #[default]
    Auto,
    /// Every job to the batch API (interactively only what its quota refuses).
    Batch,
    /// Never the batch API.
    Interactive,
}

/// The client's side of the batch API (`[client.batch]`), used by the `imagegate` strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientBatch {
    /// How work is sent.
    pub via: ViaMode,
    /// The turnaround the client plans with (a high percentile or the provider's target).
    pub turnaround: Duration,
    /// The shortest deadline sent to the batch API by choice.
    pub min_deadline: Duration,
}

impl Default for ClientBatch {
    fn default() -> Self {
        ClientBatch {
            via: ViaMode::Auto,
            turnaround: DEFAULT_BATCH_TURNAROUND,
            min_deadline: DEFAULT_MIN_DEADLINE,
        }
    }
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
    /// The router's overload knobs (`[client.router]`), for the `imagegate` strategy only:
    /// how policies compare is measured by changing them here, never by editing code.
    pub router: RouterKnobs,
    /// How the `imagegate` strategy uses a pool's batch API (`[client.batch]`); only read when
    /// a target's pool has one.
    pub batch: ClientBatch,
}

/// The router policy knobs a scenario may set (`[client.router]`); unset means the router's
/// default.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RouterKnobs {
    /// Earliest deadline first among waiting requests of one priority (else by start).
    pub earliest_deadline_first: Option<bool>,
    /// The latency percentile feasibility is judged by; `Some(None)`: never shed.
    pub latency_quantile: Option<Option<f64>>,
    /// How long a background request waits before it ranks among interactive ones.
    pub background_aging: Option<Duration>,
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
    upstream: RawUpstream<EmulatorOnly, EmulatorOnly>,
    client: RawClient,
}

/// A part of the `[upstream]` table only `imagegate emulate` reads (`[[upstream.key]]`, the
/// `faults` tables): a scenario with one is refused with that reason, not as an unknown key.
#[derive(Debug)]
enum EmulatorOnly {}

impl<'de> Deserialize<'de> for EmulatorOnly {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(D::Error::custom(
            "expected no `[[upstream.key]]` or `faults` in a scenario: the simulator has no API \
             keys and injects no faults (they are read by `imagegate emulate` only)",
        ))
    }
}

fn one() -> u32 {
    1
}

fn burst() -> String {
    "burst".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    jobs: u64,
    #[serde(default = "one")]
    images_per_job: u32,
    #[serde(default = "burst")]
    arrival: String,
    deadline: Option<String>,
    #[serde(default)]
    class: Vec<RawClass>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClass {
    name: String,
    share: f64,
    #[serde(default)]
    priority: Option<String>,
    deadline: Option<String>,
    images_per_job: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    concurrency: usize,
    target: Vec<RawTarget>,
    #[serde(default)]
    router: Option<RawRouter>,
    #[serde(default)]
    batch: Option<RawClientBatch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientBatch {
    via: Option<String>,
    turnaround: Option<String>,
    min_deadline: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouter {
    earliest_deadline_first: Option<bool>,
    latency_quantile: Option<f64>,
    shed: Option<bool>,
    background_aging: Option<String>,
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

/// The default time a rejection takes to arrive (the one the emulator uses too).
pub const DEFAULT_REJECT_LATENCY: Duration = upstream_table::DEFAULT_REJECT_LATENCY;

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

    /// The shared `[upstream]` reader's error, in this file.
    fn table(&self, e: TableError) -> ScenarioError {
        self.err(e.key, e.expected)
    }

    fn duration(&self, key: &str, text: &str) -> Result<Duration, ScenarioError> {
        upstream_table::duration(key, text).map_err(|e| self.table(e))
    }

    fn kind(&self, key: &str, text: &str) -> Result<UpstreamKind, ScenarioError> {
        upstream_table::kind(key, text).map_err(|e| self.table(e))
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
        let text = upstream_table::read_file(path).map_err(|e| Checker { file: path }.table(e))?;
        Scenario::parse(path, &text)
    }

    /// Parses and checks scenario `text`; `file` is only used to name it in errors.
    ///
    /// # Errors
    /// A [`ScenarioError`] naming the file, the key and what was expected.
    pub fn parse(file: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = toml::from_str(text)
            .map_err(|e| Checker { file }.table(TableError::syntax(text, e.span(), e.message())))?;
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
        let deadline = match &w.deadline {
            Some(text) => Some(c.duration("workload.deadline", text)?),
            None if w.class.is_empty() => {
                return Err(c.err(
                    "workload.deadline",
                    "expected a deadline such as \"6h\" (or one per [[workload.class]])",
                ));
            }
            None => None,
        };
        let mut classes = Vec::new();
        for (i, raw_class) in w.class.iter().enumerate() {
            let key = |k: &str| format!("workload.class[{i}].{k}");
            if !(raw_class.share.is_finite() && raw_class.share > 0.0) {
                return Err(c.err(
                    key("share"),
                    format!(
                        "expected a share above 0 (e.g. 0.75), found {}",
                        raw_class.share
                    ),
                ));
            }
            let priority = match &raw_class.priority {
                None => Priority::Interactive,
                Some(text) => text.parse().map_err(|_| {
                    c.err(
                        key("priority"),
                        format!("expected \"interactive\" or \"background\", found \"{text}\""),
                    )
                })?,
            };
            let class_deadline = match (&raw_class.deadline, deadline) {
                (Some(text), _) => c.duration(&key("deadline"), text)?,
                (None, Some(d)) => d,
                (None, None) => {
                    return Err(c.err(key("deadline"), "expected a deadline here or in [workload]"));
                }
            };
            let images_per_job = raw_class.images_per_job.unwrap_or(w.images_per_job);
            if images_per_job == 0 {
                return Err(c.err(key("images_per_job"), "expected at least 1, found 0"));
            }
            if classes.iter().any(|k: &Class| k.name == raw_class.name) {
                return Err(c.err(
                    key("name"),
                    format!(
                        "expected a name of its own, found `{}` twice",
                        raw_class.name
                    ),
                ));
            }
            classes.push(Class {
                name: raw_class.name.clone(),
                share: raw_class.share,
                priority,
                deadline: class_deadline,
                images_per_job,
            });
        }
        let deadline = match deadline {
            Some(d) => d,
            None => classes.iter().map(|k| k.deadline).max().unwrap_or_default(),
        };
        if classes.is_empty() {
            classes.push(Class {
                name: "all".to_owned(),
                share: 1.0,
                priority: Priority::default(),
                deadline,
                images_per_job: w.images_per_job,
            });
        }
        let largest = classes.iter().map(|k| k.images_per_job).max().unwrap_or(1);
        // Every job and call is held in memory (a few hundred bytes each): a scenario past
        // this many images would take gigabytes before printing anything.
        let images = w.jobs.saturating_mul(u64::from(largest));
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
            deadline,
            classes,
        };

        let table = raw.upstream.check().map_err(|e| c.table(e))?;
        let upstream = Upstream {
            latency: table.latency.ok_or_else(|| {
                c.err(
                    "upstream.latency",
                    "expected how long an image takes, a range such as \"8s..30s\" or one \
                     duration such as \"20s\"",
                )
            })?,
            reject_latency: table.reject_latency,
            overload_rate: table.overload_rate,
            pools: table
                .pools
                .iter()
                .map(|p| Pool {
                    kind: p.kind,
                    project: p.project.clone(),
                    pool: p.pool.clone(),
                    batch: p.batch.map(|b| PoolBatch {
                        turnaround: b.turnaround,
                        enqueued_tokens: b.enqueued_tokens,
                    }),
                })
                .collect(),
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
            if !table.serves(kind, &t.project, &t.model) {
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
        let router = match &cl.router {
            None => RouterKnobs::default(),
            Some(r) => {
                if let Some(q) = r.latency_quantile
                    && !(q.is_finite() && q > 0.0 && q <= 1.0)
                {
                    return Err(c.err(
                        "client.router.latency_quantile",
                        format!("expected a share in 0.0..=1.0 such as 0.95, found {q}"),
                    ));
                }
                RouterKnobs {
                    earliest_deadline_first: r.earliest_deadline_first,
                    latency_quantile: match (r.shed, r.latency_quantile) {
                        (Some(false), _) => Some(None),
                        (_, Some(q)) => Some(Some(q)),
                        _ => None,
                    },
                    background_aging: match &r.background_aging {
                        Some(text) => Some(c.duration("client.router.background_aging", text)?),
                        None => None,
                    },
                }
            }
        };
        let batch = match &cl.batch {
            None => ClientBatch::default(),
            Some(b) => ClientBatch {
                via: match b.via.as_deref().map(|v| v.trim().to_ascii_lowercase()) {
                    None => ViaMode::Auto,
                    Some(v) if v == "auto" => ViaMode::Auto,
                    Some(v) if v == "batch" => ViaMode::Batch,
                    Some(v) if v == "interactive" => ViaMode::Interactive,
                    Some(_) => {
                        return Err(c.err(
                            "client.batch.via",
                            format!(
                                "expected \"auto\", \"batch\" or \"interactive\", found \"{}\"",
                                b.via.as_deref().unwrap_or_default()
                            ),
                        ));
                    }
                },
                turnaround: match &b.turnaround {
                    Some(text) => c.duration("client.batch.turnaround", text)?,
                    None => DEFAULT_BATCH_TURNAROUND,
                },
                min_deadline: match &b.min_deadline {
                    Some(text) => c.duration("client.batch.min_deadline", text)?,
                    None => DEFAULT_MIN_DEADLINE,
                },
            },
        };
        Ok(Scenario {
            name: raw.name,
            start,
            seed: raw.seed,
            workload,
            upstream,
            client: Client {
                concurrency: cl.concurrency,
                targets,
                router,
                batch,
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

    #[test]
    fn the_upstream_table_is_read_by_the_shared_reader_with_the_simulators_rules() {
        // The simulator has no default latency: a scenario says how long an image takes.
        let e = parse(&GOOD.replace("latency = \"8s..30s\"\n", "")).unwrap_err();
        assert_eq!(e.key, "upstream.latency");
        assert!(e.expected.contains("\"8s..30s\""), "{e}");
        // The emulator's own parts are refused with the reason, where they stand.
        let keyed = GOOD.replace(
            "[client]",
            "[[upstream.key]]\nprovider = \"gemini\"\nproject = \"proj-a\"\nkey = \"k\"\n[client]",
        );
        let e = parse(&keyed).unwrap_err();
        assert!(e.key.starts_with("line "), "{e}");
        assert!(e.expected.contains("`imagegate emulate` only"), "{e}");
        assert!(!e.to_string().contains("\"k\""), "{e}");
        let faulty = GOOD.replace("rpm = 10\n", "rpm = 10\nfaults = { html_502 = 0.1 }\n");
        let e = parse(&faulty).unwrap_err();
        assert!(e.expected.contains("`imagegate emulate` only"), "{e}");
        // A bad pool value names its key, in this file.
        let e = parse(&GOOD.replace(
            "provider = \"gemini\"\nproject = \"proj-a\"\nmodels",
            "provider = \"gemni\"\nproject = \"proj-a\"\nmodels",
        ))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "s.toml: `upstream.pool[0].provider`: expected \"gemini\", \"openrouter\", \"openai\" or \"vertex\", found \"gemni\""
        );
    }

    #[test]
    fn classes_are_dealt_by_share_and_a_workload_without_them_is_one_class() {
        let plain = parse(GOOD).unwrap();
        assert_eq!(plain.workload.classes.len(), 1);
        assert_eq!(
            plain.workload.classes[0].deadline,
            Duration::from_secs(48 * 3_600)
        );
        assert!(plain.workload.deal().iter().all(|&c| c == 0));
        let mixed = GOOD.replace(
            "deadline = \"48h\"\n",
            "[[workload.class]]\nname = \"ia\"\nshare = 3\ndeadline = \"2m\"\n\
             [[workload.class]]\nname = \"bg\"\nshare = 1\npriority = \"background\"\n\
             deadline = \"2h\"\nimages_per_job = 2\n",
        );
        let s = parse(&mixed).unwrap();
        assert_eq!(s.workload.classes[1].priority, Priority::Background);
        assert_eq!(s.workload.classes[1].images_per_job, 2);
        // Three interactive jobs to one background, evenly spread: job 2 is the first where
        // the background's gap (3/4 - 0) beats the interactive one's (9/4 - 2); a tie (job 1,
        // job 5) goes to the first class.
        assert_eq!(s.workload.deal(), [0, 0, 1, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(s.workload.deadline, Duration::from_secs(7_200));
    }

    #[test]
    fn a_pool_may_have_a_batch_api_and_the_client_says_how_to_use_it() {
        let plain = parse(GOOD).unwrap();
        assert_eq!(plain.upstream.pools[0].batch, None);
        assert_eq!(plain.client.batch, ClientBatch::default());
        let with = GOOD.replace(
            "rpm = 10\n[client]",
            "rpm = 10\nbatch_turnaround = \"2m..10m\"\nbatch_enqueued_tokens = 5000\n[client]",
        ) + "[client.batch]\nvia = \"interactive\"\nturnaround = \"12h\"\nmin_deadline = \"6h\"\n";
        let s = parse(&with).unwrap();
        let batch = s.upstream.pools[0].batch.unwrap();
        assert_eq!(batch.turnaround.min, Duration::from_secs(120));
        assert_eq!(batch.turnaround.max, Duration::from_secs(600));
        assert_eq!(batch.enqueued_tokens, Some(5_000));
        assert_eq!(
            s.client.batch,
            ClientBatch {
                via: ViaMode::Interactive,
                turnaround: Duration::from_secs(12 * 3_600),
                min_deadline: Duration::from_secs(6 * 3_600),
            }
        );
    }

    #[test]
    fn a_bad_batch_setting_names_its_key() {
        let quota_only = GOOD.replace(
            "rpm = 10\n[client]",
            "rpm = 10\nbatch_enqueued_tokens = 5\n[client]",
        );
        assert_eq!(
            parse(&quota_only).unwrap_err().key,
            "upstream.pool[0].batch_enqueued_tokens"
        );
        let bad_range = GOOD.replace(
            "rpm = 10\n[client]",
            "rpm = 10\nbatch_turnaround = \"10m..2m\"\n[client]",
        );
        assert_eq!(
            parse(&bad_range).unwrap_err().key,
            "upstream.pool[0].batch_turnaround"
        );
        let openrouter = GOOD
            .replace("provider = \"gemini\"", "provider = \"openrouter\"")
            .replace(
                "rpm = 10\n[client]",
                "rpm = 10\nbatch_turnaround = \"2m\"\n[client]",
            );
        let e = parse(&openrouter).unwrap_err();
        assert_eq!(e.key, "upstream.pool[0].batch_turnaround");
        assert!(e.expected.contains("Gemini's"), "{e}");
        let via = GOOD.to_owned() + "[client.batch]\nvia = \"sometimes\"\n";
        let e = parse(&via).unwrap_err();
        assert_eq!(e.key, "client.batch.via");
        assert!(e.expected.contains("\"sometimes\""), "{e}");
    }

    #[test]
    fn a_bad_class_names_its_key() {
        let bad = GOOD.replace(
            "deadline = \"48h\"\n",
            "deadline = \"48h\"\n[[workload.class]]\nname = \"ia\"\nshare = 0\n",
        );
        assert_eq!(parse(&bad).unwrap_err().key, "workload.class[0].share");
        let bad = GOOD.replace(
            "deadline = \"48h\"\n",
            "deadline = \"48h\"\n[[workload.class]]\nname = \"ia\"\nshare = 1\npriority = \"urgent\"\n",
        );
        assert_eq!(parse(&bad).unwrap_err().key, "workload.class[0].priority");
        let bad = GOOD.replace("deadline = \"48h\"\n", "");
        assert_eq!(parse(&bad).unwrap_err().key, "workload.deadline");
    }
}

//! Configuration: built-in defaults < TOML file < `IMAGEGATE_*` environment variables, plus the
//! providers' conventional variables (each registry entry's key and base-URL variables:
//! `GEMINI_API_KEY`, `GEMINI_BASE_URL`, `OPENROUTER_API_KEY`, `OPENROUTER_BASE_URL`). The
//! format is documented in docs/configuration.md; keep the two in step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use imagegate_core::quota::{PriceTable, PriceTableConfig, ProviderQuotaConfig};
use imagegate_core::registry::{ProviderDescriptor, ProviderSettings};
use serde::{Deserialize, Deserializer};

use crate::failure::Failure;
use crate::providers::{PROVIDERS, descriptor, names, needs_no_configuration};

/// The file read when neither `--config` nor `IMAGEGATE_CONFIG` names one (if it exists).
pub(crate) const DEFAULT_FILE: &str = "imagegate.toml";

/// A kind of provider imagegate can build: an entry of the registry
/// ([`crate::providers::PROVIDERS`]), named in configuration by its `name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProviderKind(&'static ProviderDescriptor);

impl ProviderKind {
    /// The kind a provider named `name` has when its configuration does not say.
    fn for_name(name: &str) -> Option<Self> {
        descriptor(name).map(ProviderKind)
    }

    /// The registry entry.
    pub(crate) fn descriptor(self) -> &'static ProviderDescriptor {
        self.0
    }

    /// The model a provider of this kind uses when nothing names one.
    pub(crate) fn default_model(self) -> &'static str {
        self.0.default_model
    }

    /// Whether this kind of provider has a Batch API imagegate can use (Gemini's).
    pub(crate) fn has_batch_api(self) -> bool {
        self.0.name == imagegate_gemini::DESCRIPTOR.name
    }

    /// The environment variable holding the key when `api_key_env` does not name one.
    pub(crate) fn default_key_env(self) -> Option<&'static str> {
        self.0.key_vars.first().copied()
    }
}

impl<'de> Deserialize<'de> for ProviderKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        ProviderKind::for_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown provider kind `{name}`: expected one of {}",
                names().join(", ")
            ))
        })
    }
}

/// The whole configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// The provider `generate` uses when `--provider` is not given.
    #[serde(default)]
    pub default_provider: Option<String>,
    /// Providers by the name commands refer to them with.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// The route `generate` uses when neither `--route` nor `--provider` is given.
    #[serde(default)]
    pub default_route: Option<String>,
    /// Routes: ordered lists of targets the router tries (`[routes.NAME]`).
    #[serde(default)]
    pub routes: BTreeMap<String, RouteConfig>,
    /// Price overrides merged over the built-in table (docs/quota-model.md, "Costs").
    #[serde(default)]
    pub prices: Option<PriceTableConfig>,
    /// Where imagegate keeps quota state between runs (default: the XDG state directory).
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Where quota state is shared (`[state]`): the state directory's file unless it names
    /// a Redis server.
    #[serde(default)]
    pub state: Option<crate::state::StateConfig>,
    /// The gateway (`imagegate serve`): docs/gateway.md.
    #[serde(default)]
    pub server: Option<imagegate_server::ServerConfig>,
    /// How `imagegate batch` uses the Gemini Batch API (`[batch]`, docs/batch.md).
    #[serde(default)]
    pub batch: BatchConfig,
    /// Where the configuration came from, for messages (not a key in the file).
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

/// One route (`[routes.NAME]`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteConfig {
    /// Targets in preference order: a provider's name (its default model), or
    /// `provider:model` for another model of that provider.
    pub targets: Vec<String>,
    /// Upstream calls in flight across the route's targets (default 4).
    #[serde(default)]
    pub concurrency: Option<usize>,
}

impl Config {
    /// The route a command sends through: `--route`, else `default_route` unless `--provider`
    /// names a provider to call directly. `generate` and `batch` decide alike through this.
    pub(crate) fn route_for(&self, route: Option<&str>, provider: Option<&str>) -> Option<String> {
        route.map(str::to_owned).or_else(|| {
            provider
                .is_none()
                .then(|| self.default_route.clone())
                .flatten()
        })
    }

    /// The price table: every registered provider's figures with `[prices]` on top.
    pub(crate) fn price_table(&self) -> PriceTable {
        let table = imagegate_core::registry::price_table(PROVIDERS);
        match self.prices.clone() {
            Some(prices) => table.with_overrides(prices),
            None => table,
        }
    }
}

/// One provider's configuration (`[providers.NAME]`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProviderConfig {
    /// A registry name (gemini, openrouter, mock); defaults to the provider's name when that
    /// is one of them.
    #[serde(default)]
    pub kind: Option<ProviderKind>,
    /// The environment variable that holds the key (keys never go in files).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Scheme, host and optional path prefix before the API's own path.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The project (Gemini) or account (OpenRouter) the key belongs to; quotas are per project.
    #[serde(default)]
    pub project: Option<String>,
    /// The model used when a command does not name one.
    #[serde(default)]
    pub model: Option<String>,
    /// How long one upstream call may take, e.g. "120s" or "2m".
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// The largest answer accepted from the upstream, in bytes (default 64 MiB).
    #[serde(default)]
    pub max_response_bytes: Option<u64>,
    /// Quota limits, tier and day zone for this provider's pools (docs/quota-model.md).
    #[serde(default)]
    pub quota: Option<ProviderQuotaConfig>,
    /// Whether `imagegate batch` may send this provider's work through the Gemini Batch API
    /// (half price, results within 24 h). Default: on for Gemini providers; a relay that does
    /// not serve the batch endpoints sets `batch = false`. Only Gemini providers accept `true`.
    #[serde(default)]
    pub batch: Option<bool>,
    /// Never accepted: present only to reject it with a message that says what to do instead.
    #[serde(default)]
    pub api_key: Option<serde::de::IgnoredAny>,
}

/// `[batch]`: when and how `imagegate batch` uses the Gemini Batch API (docs/batch.md). Every
/// field has a default, so the section is optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchConfig {
    /// `--via auto` is the default only when `--deadline` is at least this long (default 24 h,
    /// the Batch API's target turnaround).
    #[serde(default, with = "humantime_serde")]
    pub min_deadline: Option<Duration>,
    /// How long a batch job is assumed to take when planning (a high percentile; default
    /// 24 h). Work whose deadline is nearer than this goes interactively under `auto`.
    #[serde(default, with = "humantime_serde")]
    pub turnaround: Option<Duration>,
    /// The first wait between two polls of a batch job (default 30 s); it grows by half each
    /// poll up to `max_poll_interval`.
    #[serde(default, with = "humantime_serde")]
    pub poll_interval: Option<Duration>,
    /// The longest wait between two polls (default 5 min).
    #[serde(default, with = "humantime_serde")]
    pub max_poll_interval: Option<Duration>,
    /// Requests (images) per batch job (default 500): smaller jobs finish and are fetched
    /// sooner, larger ones mean fewer jobs to poll.
    #[serde(default)]
    pub job_size: Option<usize>,
    /// The largest result (in bytes, estimated from the image sizes, counted twice as the
    /// Operation carries it twice) a job may return inline in a poll; a larger job uploads its
    /// requests as a JSONL file and downloads a responses file (default 16 MiB; 0: always a
    /// file).
    #[serde(default)]
    pub inline_max_result_bytes: Option<u64>,
}

/// The Batch API's target turnaround, and so the default of `min_deadline` and `turnaround`.
pub(crate) const DEFAULT_BATCH_TURNAROUND: Duration = Duration::from_secs(24 * 3600);

impl BatchConfig {
    /// `min_deadline`, or 24 h.
    pub(crate) fn min_deadline(&self) -> Duration {
        self.min_deadline.unwrap_or(DEFAULT_BATCH_TURNAROUND)
    }

    /// `turnaround`, or 24 h.
    pub(crate) fn turnaround(&self) -> Duration {
        self.turnaround.unwrap_or(DEFAULT_BATCH_TURNAROUND)
    }

    /// `poll_interval`, or 30 s.
    pub(crate) fn poll_interval(&self) -> Duration {
        self.poll_interval.unwrap_or(Duration::from_secs(30))
    }

    /// `max_poll_interval`, or 5 min (never below `poll_interval`).
    pub(crate) fn max_poll_interval(&self) -> Duration {
        self.max_poll_interval
            .unwrap_or(Duration::from_secs(300))
            .max(self.poll_interval())
    }

    /// `job_size`, or 500.
    pub(crate) fn job_size(&self) -> usize {
        self.job_size.unwrap_or(500).max(1)
    }
}

impl ProviderConfig {
    /// The provider's kind, from `kind` or its name.
    pub(crate) fn kind_for(&self, name: &str) -> Option<ProviderKind> {
        self.kind.or_else(|| ProviderKind::for_name(name))
    }

    /// The quota configuration, or the defaults (the provider's tier presets and day zone).
    pub(crate) fn quota_or_default(&self) -> ProviderQuotaConfig {
        self.quota.clone().unwrap_or_default()
    }

    /// Whether `imagegate batch` may use the Gemini Batch API through this provider: a Gemini
    /// provider unless it says `batch = false`.
    pub(crate) fn batch_enabled(&self, name: &str) -> bool {
        self.batch.unwrap_or(true) && self.kind_for(name).is_some_and(ProviderKind::has_batch_api)
    }

    /// The environment variable holding this provider's key.
    pub(crate) fn key_env(&self, name: &str) -> Option<String> {
        self.api_key_env.clone().or_else(|| {
            self.kind_for(name)
                .and_then(ProviderKind::default_key_env)
                .map(str::to_owned)
        })
    }

    /// What the registry entry's `build` takes: this configuration under `name`.
    pub(crate) fn settings(&self, name: &str) -> ProviderSettings {
        ProviderSettings::new(name)
            .with_key_env(self.key_env(name))
            .with_base_url(self.base_url.clone())
            .with_project(self.project.clone())
            .with_model(self.model.clone())
            .with_timeout(self.timeout)
            .with_max_response_bytes(self.max_response_bytes)
    }
}

/// Which file to read: `--config`, else `IMAGEGATE_CONFIG`, else `./imagegate.toml` if present.
/// An explicitly named file must exist; the implicit default may be absent.
fn config_file(explicit: Option<&Path>) -> Result<Option<PathBuf>, Failure> {
    let named = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("IMAGEGATE_CONFIG").map(PathBuf::from));
    match named {
        Some(path) => {
            if let Err(e) = std::fs::metadata(&path) {
                return Err(Failure::usage(format!(
                    "cannot read configuration file {}: {e}",
                    path.display()
                )));
            }
            Ok(Some(path))
        }
        None => {
            let default = PathBuf::from(DEFAULT_FILE);
            Ok(default.is_file().then_some(default))
        }
    }
}

/// The conventional provider variables of every registry entry, as two configuration layers.
///
/// A key in `GEMINI_API_KEY` makes a provider named `gemini` exist when the configuration does
/// not define one (the first layer, joined under everything else); a base URL variable points
/// that provider elsewhere (the second, merged over everything). The key itself is not copied
/// anywhere: the provider reads it from the environment when it is built.
fn conventional_env(mut figment: Figment) -> Figment {
    for provider in PROVIDERS {
        let name = provider.name;
        if let Some(key_var) = provider.key_vars.first()
            && std::env::var_os(key_var).is_some_and(|v| !v.is_empty())
        {
            figment = figment.join(Serialized::default(&format!("providers.{name}.kind"), name));
        }
        if let Some(url_var) = provider.base_url_var
            && let Ok(url) = std::env::var(url_var)
            && !url.is_empty()
        {
            figment = figment.merge(Serialized::default(
                &format!("providers.{name}.base_url"),
                url,
            ));
        }
    }
    figment
}

/// The top-level configuration keys an `IMAGEGATE_*` variable may set (`IMAGEGATE_STATE_DIR`,
/// `IMAGEGATE_PROVIDERS__GEMINI__MODEL`, ...): the fields of [`Config`].
const ENV_KEYS: [&str; 9] = [
    "batch",
    "default_provider",
    "providers",
    "default_route",
    "routes",
    "prices",
    "state_dir",
    "state",
    "server",
];

/// Variables with the prefix that are not configuration: the file's name, the log filter, and
/// the ones the project's own test suites read (the Python interpreter for the SDK suites, the
/// switches that turn a skipped real-server test into a failure, the Redis benchmark address).
const ENV_NOT_KEYS: [&str; 7] = [
    "CONFIG",
    "LOG",
    "PYTHON",
    "REQUIRE_PYTHON_SDKS",
    "REQUIRE_REDIS",
    "REQUIRE_CHROMIUM",
    "BENCH_REDIS",
];

/// The `IMAGEGATE_*` layer. A variable that names no configuration key (one a wrapper script
/// set, say) is a warning naming it, not a failure of every command.
fn env_layer() -> Env {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if let Some(rest) = name.strip_prefix("IMAGEGATE_")
            && !ENV_NOT_KEYS.contains(&rest)
            && !env_key_known(rest)
        {
            tracing::warn!(
                "ignoring the environment variable {name}: it sets no configuration key"
            );
        }
    }
    Env::prefixed("IMAGEGATE_")
        .ignore(&ENV_NOT_KEYS)
        .filter(|key| env_key_known(key.as_str()))
        .split("__")
}

/// Whether the part of a variable's name after `IMAGEGATE_` starts with a configuration key.
fn env_key_known(rest: &str) -> bool {
    let top = rest.split("__").next().unwrap_or_default();
    ENV_KEYS.iter().any(|key| key.eq_ignore_ascii_case(top))
}

/// Loads the configuration from every layer.
///
/// # Errors
/// [`Failure::Usage`] naming the key, the file and what was expected.
pub(crate) fn load(explicit: Option<&Path>) -> Result<Config, Failure> {
    let file = config_file(explicit)?;
    let mut figment = Figment::new();
    if let Some(path) = &file {
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(env_layer());
    figment = conventional_env(figment);
    let mut config: Config = figment
        .extract()
        .map_err(|e| describe(e, file.as_deref()))?;
    config.file = file;
    validate(&config)?;
    Ok(config)
}

/// figment's errors name the key and the source; say which file and what to do.
fn describe(error: figment::Error, file: Option<&Path>) -> Failure {
    let mut lines = Vec::new();
    for e in error {
        let key = e.path.join(".");
        let source = e
            .metadata
            .as_ref()
            .and_then(|m| m.source.as_ref())
            .map(ToString::to_string)
            .or_else(|| e.metadata.as_ref().map(|m| m.name.to_string()))
            .unwrap_or_else(|| "configuration".to_owned());
        let key = if key.is_empty() {
            String::new()
        } else {
            format!("key `{key}` ")
        };
        // A value under an `api_key` is a key, whatever the error: a type error would quote it
        // (`[providers]` then `api_key = "..."` reads it as a provider; the `config` fuzz target
        // found it, docs/testing.md).
        let what = if e.path.iter().any(|segment| segment == "api_key") {
            "API keys do not belong in configuration; put the key in an environment variable \
             and name it with `api_key_env`"
                .to_owned()
        } else {
            without_quoted_source(&e.kind.to_string())
        };
        lines.push(format!("invalid configuration: {key}in {source}: {what}"));
    }
    if lines.is_empty() {
        let file = file.map_or("configuration".to_owned(), |f| f.display().to_string());
        lines.push(format!("invalid configuration in {file}"));
    }
    Failure::usage(lines.join("\n"))
}

/// A TOML syntax error as figment words it, without the excerpt of the file it quotes (the
/// `12 | text` and `| ^` lines): the line at fault may hold a secret, such as a key pasted
/// into the file by mistake (`api_key = "...` with no closing quote), and the message goes to
/// stderr and CI logs. The position and the reason stay. (The `config` fuzz target found it;
/// docs/testing.md.)
fn without_quoted_source(message: &str) -> String {
    let is_excerpt = |line: &str| {
        line.trim_start()
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start()
            .starts_with('|')
    };
    message
        .lines()
        .filter(|line| !is_excerpt(line))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

/// Checks what serde cannot: keys in files, unknown provider kinds, the default provider.
fn validate(config: &Config) -> Result<(), Failure> {
    let source = config
        .file
        .as_ref()
        .map_or("the environment".to_owned(), |f| f.display().to_string());
    for (name, provider) in &config.providers {
        if provider.api_key.is_some() {
            return Err(Failure::usage(format!(
                "invalid configuration: key `providers.{name}.api_key` in {source}: API keys do \
                 not belong in configuration; put the key in an environment variable and name \
                 it with `api_key_env`"
            )));
        }
        if let Some(problem) = crate::config_checks::provider_problem(
            name,
            provider.api_key_env.as_deref(),
            provider.timeout,
            &source,
        ) {
            return Err(Failure::usage(problem));
        }
        if provider.batch == Some(true)
            && !provider
                .kind_for(name)
                .is_some_and(ProviderKind::has_batch_api)
        {
            return Err(Failure::usage(format!(
                "invalid configuration: key `providers.{name}.batch` in {source}: only Gemini \
                 providers have a Batch API; remove the key"
            )));
        }
        if provider.kind_for(name).is_none() {
            return Err(Failure::usage(format!(
                "invalid configuration: key `providers.{name}.kind` in {source}: expected one \
                 of {} (needed because `{name}` is not a provider name)",
                names().join(", ")
            )));
        }
        if let Some(quota) = &provider.quota
            && let Err(e) = quota.validate()
        {
            return Err(Failure::usage(format!(
                "invalid configuration: key `providers.{name}.quota` in {source}: {}",
                e.message()
            )));
        }
        if let Some(url) = &provider.base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(Failure::usage(format!(
                "invalid configuration: key `providers.{name}.base_url` in {source}: expected \
                 an http:// or https:// URL, found {url:?}"
            )));
        }
    }
    if config.batch.job_size == Some(0) {
        return Err(Failure::usage(format!(
            "invalid configuration: key `batch.job_size` in {source}: expected at least 1 \
             request per batch job"
        )));
    }
    if config.batch.poll_interval.is_some_and(|d| d.is_zero()) {
        return Err(Failure::usage(format!(
            "invalid configuration: key `batch.poll_interval` in {source}: expected a duration \
             above zero, e.g. \"30s\""
        )));
    }
    for (route, route_config) in &config.routes {
        if route_config.targets.is_empty() {
            return Err(Failure::usage(format!(
                "invalid configuration: key `routes.{route}.targets` in {source}: expected at \
                 least one target"
            )));
        }
        for target in &route_config.targets {
            let provider = target.split_once(':').map_or(target.as_str(), |(p, _)| p);
            if !needs_no_configuration(provider) && !config.providers.contains_key(provider) {
                return Err(Failure::usage(format!(
                    "invalid configuration: key `routes.{route}.targets` in {source}: no \
                     provider named `{provider}` is configured (target `{target}`)"
                )));
            }
        }
    }
    if let Some(default) = &config.default_route
        && !config.routes.contains_key(default)
    {
        return Err(Failure::usage(format!(
            "invalid configuration: key `default_route` in {source}: no route named \
             `{default}` is configured"
        )));
    }
    if let Some(default) = &config.default_provider
        && !needs_no_configuration(default)
        && !config.providers.contains_key(default)
    {
        return Err(Failure::usage(format!(
            "invalid configuration: key `default_provider` in {source}: no provider named \
             `{default}` is configured"
        )));
    }
    Ok(())
}

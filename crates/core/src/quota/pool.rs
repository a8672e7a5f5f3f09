//! What a quota belongs to ([`PoolId`]), how big it is ([`Limits`]) and when its day ends
//! ([`PoolConfig`]).

use std::fmt;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::Dimension;
use crate::error::Error;

/// One quota bucket: (provider, project or account, pool name).
///
/// Quotas belong to a project, not to an API key: ten keys of one project share one `PoolId`,
/// keys of two projects have two. The pool name is the model unless configuration puts several
/// models in one pool (free tiers have been seen to share one pool across image models).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PoolId {
    /// `gemini`, `openrouter`, ...
    pub provider: String,
    /// The project (Gemini) or account (OpenRouter) whose quota this is.
    pub project: String,
    /// The model, or the name of a configured shared pool.
    pub pool: String,
}

impl PoolId {
    /// A pool id.
    pub fn new(
        provider: impl Into<String>,
        project: impl Into<String>,
        pool: impl Into<String>,
    ) -> Self {
        PoolId {
            provider: provider.into(),
            project: project.into(),
            pool: pool.into(),
        }
    }

    /// True when `other` is another pool of the same provider and project: the only pools a
    /// 429 could reveal as shared with this one.
    pub fn same_project(&self, other: &PoolId) -> bool {
        self.provider == other.provider && self.project == other.project
    }
}

impl fmt::Display for PoolId {
    /// `provider/project/pool`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.provider, self.project, self.pool)
    }
}

/// The four limits of a pool; `None` means "no known limit on this dimension".
///
/// In configuration each is a plain number (`rpm = 500`); `0` is allowed and means the pool may
/// never be used on that dimension (the upstream's "limit: 0": no entitlement).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per sliding 60 seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Requests per calendar day in the pool's zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpd: Option<u64>,
    /// Tokens (input + output) per sliding 60 seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Images per sliding 60 seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipm: Option<u64>,
}

impl Limits {
    /// No limit on any dimension.
    pub const NONE: Limits = Limits {
        rpm: None,
        rpd: None,
        tpm: None,
        ipm: None,
    };

    /// The limit on `dimension`.
    pub const fn get(&self, dimension: Dimension) -> Option<u64> {
        match dimension {
            Dimension::Rpm => self.rpm,
            Dimension::Rpd => self.rpd,
            Dimension::Tpm => self.tpm,
            Dimension::Ipm => self.ipm,
        }
    }

    /// Sets the limit on `dimension`.
    pub fn set(&mut self, dimension: Dimension, limit: Option<u64>) {
        match dimension {
            Dimension::Rpm => self.rpm = limit,
            Dimension::Rpd => self.rpd = limit,
            Dimension::Tpm => self.tpm = limit,
            Dimension::Ipm => self.ipm = limit,
        }
    }

    /// These limits with every limit `over` sets replacing ours: how configuration layers a
    /// per-model override on a tier preset.
    #[must_use]
    pub fn overridden_by(self, over: Limits) -> Limits {
        Limits {
            rpm: over.rpm.or(self.rpm),
            rpd: over.rpd.or(self.rpd),
            tpm: over.tpm.or(self.tpm),
            ipm: over.ipm.or(self.ipm),
        }
    }

    /// True when no dimension is limited.
    pub fn is_empty(&self) -> bool {
        *self == Limits::NONE
    }
}

/// Everything the quota model needs to know about one pool.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Which pool.
    pub id: PoolId,
    /// The limits configuration (or a tier preset) gives; learning can override them later.
    pub limits: Limits,
    /// The zone whose midnight ends the pool's day (RPD): America/Los_Angeles for Gemini, UTC
    /// for OpenRouter.
    pub day_zone: TimeZone,
    /// The models that draw on this pool (one, unless it is a configured shared pool). Shown in
    /// status; the mapping from model to pool is configuration's job.
    pub models: Vec<String>,
    /// True when the limits are not known up front (a tiered provider with no tier
    /// configured): each dimension without a configured limit is learned from the upstream's
    /// first 429, and status shows it as "unknown (learning)" until then.
    pub learning: bool,
}

impl PoolConfig {
    /// A pool with `limits` whose day ends at midnight in `day_zone`, used by the one model the
    /// pool is named after.
    pub fn new(id: PoolId, limits: Limits, day_zone: TimeZone) -> Self {
        let models = vec![id.pool.clone()];
        PoolConfig {
            id,
            limits,
            day_zone,
            models,
            learning: false,
        }
    }

    /// Marks the pool's unconfigured limits as unknown, to be learned (see
    /// [`learning`](Self::learning)).
    #[must_use]
    pub fn with_learning(mut self, learning: bool) -> Self {
        self.learning = learning;
        self
    }

    /// Replaces the list of models drawing on this pool.
    #[must_use]
    pub fn with_models(mut self, models: Vec<String>) -> Self {
        self.models = models;
        self
    }
}

/// Looks up an IANA zone name (`America/Los_Angeles`, `UTC`) in the bundled tz database.
///
/// # Errors
/// [`ErrorKind::ConfigInvalid`](crate::ErrorKind::ConfigInvalid) naming the zone when the
/// database does not know it (fixed offsets such as `-08:00` are refused on purpose: they get
/// daylight saving wrong).
pub fn zone_named(name: &str) -> Result<TimeZone, Error> {
    TimeZone::get(name.trim()).map_err(|e| {
        Error::config(format!(
            "unknown time zone `{name}` ({e}): use an IANA name such as America/Los_Angeles or UTC"
        ))
    })
}

/// The IANA name of `zone`, or its offset when it has none (for status output).
pub fn zone_name(zone: &TimeZone) -> String {
    match zone.iana_name() {
        Some(name) => name.to_owned(),
        None => zone
            .to_fixed_offset()
            .map(|o| o.to_string())
            .unwrap_or_else(|_| "custom".to_owned()),
    }
}

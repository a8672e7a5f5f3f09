//! How a [`RedisQuotaStore`](crate::RedisQuotaStore) connects and behaves: the address, the
//! password (never in the address), the key prefix, what to do when Redis fails.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use imagegate_core::Error;

/// What an operation does when Redis cannot be reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnStoreError {
    /// Fail closed: after retrying for [`RedisStoreOptions::unavailable_wait`], the operation
    /// returns an [`Unavailable`](imagegate_core::ErrorKind::Unavailable) error naming the
    /// store. Nothing is sent that the shared quota did not admit.
    #[default]
    Fail,
    /// Fall back to an in-process ledger (with a warning, counted by
    /// [`RedisQuotaStore::local_admissions`](crate::RedisQuotaStore::local_admissions)) and
    /// rejoin Redis as soon as it answers again. Instances then share nothing until Redis
    /// returns: each may use the whole quota.
    Local,
}

impl FromStr for OnStoreError {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim() {
            "fail" => Ok(OnStoreError::Fail),
            "local" => Ok(OnStoreError::Local),
            other => Err(Error::config(format!(
                "unknown on_store_error `{other}`: expected \"fail\" or \"local\""
            ))),
        }
    }
}

/// Whose clock decides admissions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RedisClock {
    /// Redis's own (`TIME` in every script): what production uses, so that instances whose
    /// clocks disagree still share one timeline. The `now` callers pass is ignored.
    #[default]
    Server,
    /// The `now` each caller passes, as the memory store uses it: for tests and simulations
    /// that drive time themselves. Never for instances on several machines.
    Caller,
}

/// Everything [`RedisQuotaStore::new`](crate::RedisQuotaStore::new) needs.
#[derive(Clone)]
pub struct RedisStoreOptions {
    /// `redis://HOST:PORT/DB` or `rediss://HOST:PORT/DB` (TLS, rustls); a user name may be
    /// given, a password may not (use [`password`](Self::password)).
    pub url: String,
    /// The password, read by the caller from wherever secrets live (an environment variable).
    pub password: Option<String>,
    /// Prefix of every key, so several deployments can share one Redis (default `imagegate`).
    pub key_prefix: String,
    /// What happens when Redis cannot be reached.
    pub on_store_error: OnStoreError,
    /// How long an operation keeps retrying an unreachable Redis before failing (default 2 s).
    pub unavailable_wait: Duration,
    /// Whose clock decides.
    pub clock: RedisClock,
    /// The length of the per-minute windows: 60 s, as the upstreams count. Shorter only for
    /// drills and tests that need several windows in a few seconds.
    pub window: Duration,
}

impl RedisStoreOptions {
    /// Options for `url` with every default.
    pub fn new(url: impl Into<String>) -> Self {
        RedisStoreOptions {
            url: url.into(),
            password: None,
            key_prefix: "imagegate".to_owned(),
            on_store_error: OnStoreError::Fail,
            unavailable_wait: Duration::from_secs(2),
            clock: RedisClock::Server,
            window: Duration::from_secs(60),
        }
    }

    /// With a password.
    #[must_use]
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// With a key prefix.
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// With a behaviour on failure.
    #[must_use]
    pub fn with_on_store_error(mut self, on: OnStoreError) -> Self {
        self.on_store_error = on;
        self
    }

    /// With a retry budget for an unreachable Redis.
    #[must_use]
    pub fn with_unavailable_wait(mut self, wait: Duration) -> Self {
        self.unavailable_wait = wait;
        self
    }

    /// With a clock.
    #[must_use]
    pub fn with_clock(mut self, clock: RedisClock) -> Self {
        self.clock = clock;
        self
    }

    /// With a window length (see [`window`](Self::window)).
    #[must_use]
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }
}

impl fmt::Debug for RedisStoreOptions {
    /// The password is never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreOptions")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("key_prefix", &self.key_prefix)
            .field("on_store_error", &self.on_store_error)
            .field("unavailable_wait", &self.unavailable_wait)
            .field("clock", &self.clock)
            .field("window", &self.window)
            .finish()
    }
}

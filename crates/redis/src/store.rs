//! [`RedisQuotaStore`]: the quota ledger in Redis, one Lua script per operation.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use imagegate_core::quota::{
    Admission, Cost, Exhausted, MemoryQuotaStore, PoolConfig, PoolId, PoolStatus, QuotaStore,
    RateLimitSnapshot, Reservation, SharedPoolSuspicion, Usage, zone_name,
};
use imagegate_core::{Error, ErrorKind, Result, hints, quota::Dimension};
use jiff::Timestamp;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, IntoConnectionInfo, RedisError, Script};

use crate::days::midnights;
use crate::keys::PoolKeys;
use crate::options::{OnStoreError, RedisClock, RedisStoreOptions};
use crate::reply::{malformed, opt_dim, opt_ts, opt_u64, us};
use crate::script::Scripts;

/// Reservations made by the in-process fallback carry this bit, so they are settled and
/// released where they were made (Redis's own sequence numbers stay far below it).
const LOCAL: u64 = 1 << 62;
/// How long an idle pool's keys live: longer than the longest day and any upstream hint, so
/// nothing still counting expires, and nothing grows without bound.
const IDLE_TTL_MS: u64 = 3 * 24 * 3_600 * 1_000;
/// While Redis is down with [`OnStoreError::Local`], how often an operation tries it again.
const REJOIN_EVERY: Duration = Duration::from_millis(500);

/// Quota state in Redis, shared by every instance that names the same server and key prefix.
///
/// Same semantics as [`MemoryQuotaStore`] (the same behaviour tests run against both), with the
/// instant taken from Redis ([`RedisClock::Server`]). Pools are configured per instance (each
/// instance's configuration is written to Redis; the last writer's limits apply); counts,
/// learned limits, blocks and suspicions are shared. `statuses` lists the pools this instance
/// configured. Create it inside a Tokio runtime.
pub struct RedisQuotaStore {
    name: String,
    manager: ConnectionManager,
    scripts: Scripts,
    options: RedisStoreOptions,
    configs: RwLock<HashMap<PoolId, PoolConfig>>,
    /// When each pool last answered from Redis: finding one missing within a window of that
    /// means Redis lost counts that still matter.
    seen: RwLock<HashMap<PoolId, Instant>>,
    local: MemoryQuotaStore,
    /// The midnights last sent per zone: reused while the instant stays a day inside them.
    days: Mutex<HashMap<String, Arc<Vec<i64>>>>,
    /// Redis's clock minus ours, in microseconds, from the latest reply.
    offset_us: AtomicI64,
    degraded: AtomicBool,
    /// While degraded: when to try Redis again (ms since `epoch`).
    retry_at_ms: AtomicU64,
    epoch: Instant,
    local_admissions: AtomicU64,
}

impl fmt::Debug for RedisQuotaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQuotaStore")
            .field("store", &self.name)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A failed round trip: the connection (retry, then unavailable) or anything else.
enum Trip {
    Connection(RedisError),
    Other(Error),
}

/// The store's name for people: the address without credentials.
fn display_name(url: &str) -> Result<(String, redis::ConnectionInfo)> {
    let info = url.into_connection_info().map_err(|e| {
        Error::config(format!(
            "the quota store address is not a redis:// or rediss:// URL ({})",
            e.kind_description()
        ))
    })?;
    if info.redis_settings().password().is_some() {
        return Err(Error::config(
            "the quota store address carries a password: name an environment variable holding it instead",
        ));
    }
    let scheme = match info.addr() {
        redis::ConnectionAddr::TcpTls { .. } => "rediss",
        redis::ConnectionAddr::Unix(_) => "redis+unix",
        _ => "redis",
    };
    let name = format!("{scheme}://{}/{}", info.addr(), info.redis_settings().db());
    Ok((name, info))
}

trait KindDescription {
    fn kind_description(&self) -> String;
}

impl KindDescription for RedisError {
    fn kind_description(&self) -> String {
        format!("{:?}", self.kind())
    }
}

impl RedisQuotaStore {
    /// A store on the Redis `options` name. Connects lazily: an unreachable Redis is found by
    /// the first operation, which then behaves as [`OnStoreError`] says.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`] for an address that is not a Redis URL, one that carries a
    /// password, or a call outside a Tokio runtime.
    pub fn new(options: RedisStoreOptions) -> Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::config(
                "the Redis quota store must be created inside a Tokio runtime",
            ));
        }
        let (name, mut info) = display_name(&options.url)?;
        if let Some(password) = &options.password {
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        let client = Client::open(info)
            .map_err(|e| Error::config(format!("the quota store {name}: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| Error::config(format!("the quota store {name}: {e}")))?;
        // The local fallback counts with the shared store's window, guard included.
        let local = MemoryQuotaStore::new().with_window(options.window);
        Ok(RedisQuotaStore {
            name,
            manager,
            scripts: Scripts::new(),
            options,
            configs: RwLock::new(HashMap::new()),
            seen: RwLock::new(HashMap::new()),
            local,
            days: Mutex::new(HashMap::new()),
            offset_us: AtomicI64::new(0),
            degraded: AtomicBool::new(false),
            retry_at_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            local_admissions: AtomicU64::new(0),
        })
    }

    /// The store's address without credentials, as errors name it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many admissions the in-process fallback answered ([`OnStoreError::Local`]): the
    /// metric of time spent without the shared quota.
    pub fn local_admissions(&self) -> u64 {
        self.local_admissions.load(Ordering::Relaxed)
    }

    /// True while Redis is unreachable and the fallback answers.
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    /// Forgets every block of `pool` (billing, daily, delay) for every instance. Returns
    /// whether there was one.
    ///
    /// # Errors
    /// As [`QuotaStore::status`].
    pub async fn clear_blocks(&self, pool: &PoolId) -> Result<bool> {
        let config = self.config(pool)?;
        let fields = self.status_fields(&config, Timestamp::now(), true).await?;
        Ok(fields.get("had").is_some_and(|v| v == "1"))
    }

    /// [`QuotaStore::admit`] under the caller's own admission id: asked again with the same
    /// id (a caller retrying after a lost reply), Redis answers the reservation it already
    /// made instead of making a second one. [`admit`](QuotaStore::admit) draws a fresh
    /// random id per call and retries lost connections with it.
    ///
    /// # Errors
    /// As [`QuotaStore::admit`].
    pub async fn admit_as(
        &self,
        pool: &PoolId,
        cost: Cost,
        now: Timestamp,
        request: &str,
    ) -> Result<Admission> {
        if request.is_empty()
            || request == "-"
            || request.len() > 128
            || request.chars().any(char::is_whitespace)
        {
            return Err(Error::config(format!(
                "an admission id must be 1 to 128 characters without spaces (and not `-`), not {request:?}"
            )));
        }
        let config = self.config(pool)?;
        if self.try_redis() {
            let keys = self.keys(pool);
            let all = keys.base();
            let args = [
                cost.requests.to_string(),
                cost.tokens.to_string(),
                cost.images.to_string(),
                request.to_owned(),
            ];
            match self
                .run(&self.scripts.admit, &all, &config, now, &args)
                .await
            {
                Ok(reply) => {
                    self.rejoined();
                    return self.parse_admission(&config, cost, &reply);
                }
                Err(trip) => {
                    if let Some(error) = self.failed(trip) {
                        return Err(error);
                    }
                }
            }
        }
        self.local_admissions.fetch_add(1, Ordering::Relaxed);
        let admission = self.local.admit_now(pool, cost, now)?;
        Ok(match admission {
            Admission::Go(r) => Admission::Go(local_reservation(r)),
            other => other,
        })
    }

    fn config(&self, pool: &PoolId) -> Result<PoolConfig> {
        let configs = self.configs.read().unwrap_or_else(PoisonError::into_inner);
        configs.get(pool).cloned().ok_or_else(|| {
            Error::config(format!(
                "no quota pool `{pool}` is configured: configure it before admitting requests"
            ))
        })
    }

    fn keys(&self, pool: &PoolId) -> PoolKeys {
        PoolKeys::new(&self.options.key_prefix, pool)
    }

    fn unavailable(&self, e: &RedisError) -> Error {
        Error::new(
            ErrorKind::Unavailable,
            format!("the quota store {} is unreachable: {e}", self.name),
        )
        .with_provider("redis")
    }

    /// The instant a script should bracket with midnights: the caller's in
    /// [`RedisClock::Caller`], else our estimate of Redis's clock.
    fn estimate(&self, now: Timestamp) -> Timestamp {
        match self.options.clock {
            RedisClock::Caller => now,
            RedisClock::Server => {
                let offset = self.offset_us.load(Ordering::Relaxed);
                Timestamp::from_microsecond(Timestamp::now().as_microsecond() + offset)
                    .unwrap_or(now)
            }
        }
    }

    fn learn_offset(&self, redis_us: i64) {
        if self.options.clock == RedisClock::Server {
            let offset = redis_us - Timestamp::now().as_microsecond();
            self.offset_us.store(offset, Ordering::Relaxed);
        }
    }

    /// Runs one script once: the shared arguments (clock, window, TTL, midnights around
    /// `around`), then `args`.
    async fn run_once(
        &self,
        script: &Script,
        keys: &[String],
        config: &PoolConfig,
        now: Timestamp,
        around: Timestamp,
        args: &[String],
    ) -> std::result::Result<Vec<String>, Trip> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        let caller = match self.options.clock {
            RedisClock::Caller => us(now).to_string(),
            RedisClock::Server => String::new(),
        };
        let window = i64::try_from(self.options.window.as_micros()).unwrap_or(i64::MAX);
        let days = self.midnights(around, config);
        invocation
            .arg(caller)
            .arg(window)
            .arg(IDLE_TTL_MS)
            .arg(days.len());
        for m in days.iter() {
            invocation.arg(*m);
        }
        for a in args {
            invocation.arg(a);
        }
        let mut connection = self.manager.clone();
        match invocation
            .invoke_async::<Vec<String>>(&mut connection)
            .await
        {
            Ok(reply) => Ok(reply),
            Err(e)
                if e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout() =>
            {
                Err(Trip::Connection(e))
            }
            Err(e) => Err(Trip::Other(Error::new(
                ErrorKind::Unavailable,
                format!("the quota store {} refused an operation: {e}", self.name),
            ))),
        }
    }

    /// Runs a script until it answers: configures the pool again if Redis forgot it (its
    /// keys expired, or Redis restarted empty), resends midnights around Redis's own instant
    /// when ours missed, retries a lost connection for up to `unavailable_wait` (the scripts
    /// are safe to repeat: admissions by their id, releases by their mark).
    async fn run(
        &self,
        script: &Script,
        keys: &[String],
        config: &PoolConfig,
        now: Timestamp,
        args: &[String],
    ) -> std::result::Result<Vec<String>, Trip> {
        let started = Instant::now();
        let mut around = self.estimate(now);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match self.run_once(script, keys, config, now, around, args).await {
                Ok(reply) => match reply.first().map(String::as_str) {
                    Some("days") if attempts < 4 => {
                        let redis_now = reply.get(1).and_then(|s| opt_ts(s));
                        around = redis_now.unwrap_or(around);
                        if let Some(t) = redis_now {
                            self.learn_offset(us(t));
                        }
                    }
                    Some("noconfig") if attempts < 4 => {
                        self.configure_redis(config, now).await?;
                    }
                    _ => {
                        self.saw(&config.id);
                        return Ok(reply);
                    }
                },
                Err(Trip::Connection(e)) => {
                    if started.elapsed() >= self.options.unavailable_wait {
                        return Err(Trip::Connection(e));
                    }
                    let pause = Duration::from_millis(20u64 << attempts.min(4));
                    tokio::time::sleep(pause.min(self.options.unavailable_wait)).await;
                }
                Err(other) => return Err(other),
            }
        }
    }

    async fn configure_redis(
        &self,
        config: &PoolConfig,
        now: Timestamp,
    ) -> std::result::Result<(), Trip> {
        let limit = |d: Dimension| {
            config
                .limits
                .get(d)
                .map(|v| v.to_string())
                .unwrap_or_default()
        };
        let models = serde_json::to_string(&config.models).unwrap_or_else(|_| "[]".to_owned());
        let args = [
            zone_name(&config.day_zone),
            if config.learning { "1" } else { "0" }.to_owned(),
            limit(Dimension::Rpm),
            limit(Dimension::Rpd),
            limit(Dimension::Tpm),
            limit(Dimension::Ipm),
            models,
            if self.seen(&config.id) { "1" } else { "0" }.to_owned(),
        ];
        let keys = self.keys(&config.id).base();
        let around = self.estimate(now);
        self.run_once(&self.scripts.configure, &keys, config, now, around, &args)
            .await?;
        self.saw(&config.id);
        Ok(())
    }

    /// [`midnights`] around `around` in the pool's zone, from the cache while `around` is at
    /// least a day from either end of what was computed.
    fn midnights(&self, around: Timestamp, config: &PoolConfig) -> Arc<Vec<i64>> {
        let zone = zone_name(&config.day_zone);
        let t = us(around);
        let mut days = self.days.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = days.get(&zone)
            && cached.len() == 5
            && t >= cached[1]
            && t < cached[3]
        {
            return Arc::clone(cached);
        }
        let fresh = Arc::new(midnights(around, &config.day_zone));
        days.insert(zone, Arc::clone(&fresh));
        fresh
    }

    /// The outcome of settling or releasing a Redis reservation. Failing leaves the estimate
    /// counted in Redis until it leaves the window, which errs on the safe side: with
    /// [`OnStoreError::Local`] that is a warning, not an error for the request.
    fn given_back(&self, outcome: std::result::Result<Vec<String>, Trip>) -> Result<()> {
        let error = match outcome {
            Ok(_) => return Ok(()),
            Err(Trip::Connection(e)) => self.unavailable(&e),
            Err(Trip::Other(e)) => e,
        };
        if self.options.on_store_error == OnStoreError::Local {
            tracing::warn!(
                store = %self.name,
                error = %error.message(),
                "could not record a reservation's outcome: its estimate stays counted"
            );
            return Ok(());
        }
        Err(error)
    }

    /// True when `pool` answered from Redis less than a window ago: if Redis has lost it, it
    /// lost uses still in the window.
    fn seen(&self, pool: &PoolId) -> bool {
        let seen = self.seen.read().unwrap_or_else(PoisonError::into_inner);
        seen.get(pool)
            .is_some_and(|at| at.elapsed() < self.options.window)
    }

    fn saw(&self, pool: &PoolId) {
        let mut seen = self.seen.write().unwrap_or_else(PoisonError::into_inner);
        seen.insert(pool.clone(), Instant::now());
    }

    /// Whether to try Redis now: always, unless degraded and the next attempt is not due.
    fn try_redis(&self) -> bool {
        if !self.degraded.load(Ordering::Relaxed) {
            return true;
        }
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        now_ms >= self.retry_at_ms.load(Ordering::Relaxed)
    }

    fn rejoined(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            tracing::warn!(store = %self.name, "the quota store answers again: sharing the quota through it");
        }
    }

    /// A failed trip: an error (fail closed), or `None` to fall back to the local ledger.
    fn failed(&self, trip: Trip) -> Option<Error> {
        let error = match trip {
            Trip::Connection(e) => self.unavailable(&e),
            Trip::Other(e) => e,
        };
        if self.options.on_store_error == OnStoreError::Fail {
            return Some(error);
        }
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                store = %self.name,
                error = %error.message(),
                "the quota store failed: admitting from this process's own ledger until it returns (instances no longer share the quota)"
            );
        }
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = now_ms.saturating_add(u64::try_from(REJOIN_EVERY.as_millis()).unwrap_or(0));
        self.retry_at_ms.store(next, Ordering::Relaxed);
        None
    }

    fn parse_admission(
        &self,
        config: &PoolConfig,
        cost: Cost,
        reply: &[String],
    ) -> Result<Admission> {
        let field = |i: usize| reply.get(i).map(String::as_str).unwrap_or("");
        let bad = || malformed(&self.name, reply);
        match field(0) {
            "go" => {
                let id = opt_u64(field(1)).ok_or_else(bad)?;
                let at = opt_ts(field(2)).ok_or_else(bad)?;
                let day_start = opt_ts(field(3)).ok_or_else(bad)?;
                self.learn_offset(us(at));
                Ok(Admission::Go(Reservation::new(
                    config.id.clone(),
                    id,
                    at,
                    day_start,
                    cost,
                )))
            }
            "wait" => Ok(Admission::WaitUntil {
                at: opt_ts(field(1)).ok_or_else(bad)?,
                dimension: opt_dim(field(2)),
            }),
            "exhausted" => {
                let reason = match field(1) {
                    "billing" => Exhausted::BillingRequired {
                        advice: field(6).to_owned(),
                    },
                    "toolarge" => Exhausted::TooLarge {
                        dimension: opt_dim(field(3)).ok_or_else(bad)?,
                        cost: opt_u64(field(4)).ok_or_else(bad)?,
                        limit: opt_u64(field(5)).ok_or_else(bad)?,
                    },
                    "quota" => Exhausted::Quota {
                        dimension: opt_dim(field(3)).unwrap_or(Dimension::Rpd),
                    },
                    _ => return Err(bad()),
                };
                Ok(Admission::ExhaustedUntil {
                    at: opt_ts(field(2)),
                    reason,
                })
            }
            _ => Err(bad()),
        }
    }

    async fn status_fields(
        &self,
        config: &PoolConfig,
        now: Timestamp,
        clear: bool,
    ) -> Result<BTreeMap<String, String>> {
        let keys = self.keys(&config.id).base();
        let arg = [if clear { "1" } else { "0" }.to_owned()];
        let reply = match self
            .run(&self.scripts.status, &keys, config, now, &arg)
            .await
        {
            Ok(reply) => reply,
            Err(Trip::Connection(e)) => return Err(self.unavailable(&e)),
            Err(Trip::Other(e)) => return Err(e),
        };
        if reply.first().map(String::as_str) != Some("status") {
            return Err(malformed(&self.name, &reply));
        }
        let fields: BTreeMap<String, String> = reply[1..]
            .chunks(2)
            .filter_map(|pair| match pair {
                [k, v] => Some((k.clone(), v.clone())),
                _ => None,
            })
            .collect();
        Ok(fields)
    }

    /// Records a shared-pool suspicion, merged with the one already stored (counts add up,
    /// partners are united) by compare-and-set, so two instances' suspicions both count.
    async fn suspect(
        &self,
        config: &PoolConfig,
        suspicion: SharedPoolSuspicion,
        now: Timestamp,
    ) -> std::result::Result<(), Trip> {
        let keys = self.keys(&config.id).base();
        let mut seen = String::new();
        for _ in 0..8 {
            let old: Option<SharedPoolSuspicion> = serde_json::from_str(&seen).ok();
            let merged = merge(old, suspicion.clone());
            let json = serde_json::to_string(&merged)
                .map_err(|e| Trip::Other(Error::new(ErrorKind::Unexpected, e.to_string())))?;
            let reply = self
                .run(
                    &self.scripts.suspect,
                    &keys,
                    config,
                    now,
                    &[seen.clone(), json],
                )
                .await?;
            match reply.first().map(String::as_str) {
                Some("retry") => seen = reply.get(1).cloned().unwrap_or_default(),
                _ => return Ok(()),
            }
        }
        Ok(())
    }
}

/// [`PoolLedger::suspect_shared`](imagegate_core::quota::PoolLedger::suspect_shared)'s merge.
fn merge(
    old: Option<SharedPoolSuspicion>,
    mut suspicion: SharedPoolSuspicion,
) -> SharedPoolSuspicion {
    if let Some(old) = old {
        suspicion.count = old.count.saturating_add(suspicion.count);
        for p in &old.partners {
            if !suspicion.partners.contains(p) {
                suspicion.partners.push(p.clone());
            }
        }
        if suspicion.quota_model.is_none() {
            suspicion.quota_model.clone_from(&old.quota_model);
        }
    }
    suspicion
}

fn local_reservation(r: Reservation) -> Reservation {
    Reservation::new(
        r.pool().clone(),
        r.id() | LOCAL,
        r.at(),
        r.day_start(),
        r.cost(),
    )
}

fn unmark(r: &Reservation) -> Reservation {
    Reservation::new(
        r.pool().clone(),
        r.id() & !LOCAL,
        r.at(),
        r.day_start(),
        r.cost(),
    )
}

fn request_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

#[async_trait]
impl QuotaStore for RedisQuotaStore {
    async fn configure(&self, pool: PoolConfig, now: Timestamp) -> Result<()> {
        self.local.configure_now(pool.clone(), now);
        {
            let mut configs = self.configs.write().unwrap_or_else(PoisonError::into_inner);
            configs.insert(pool.id.clone(), pool.clone());
        }
        if !self.try_redis() {
            return Ok(());
        }
        match self.configure_redis(&pool, now).await {
            Ok(()) => {
                self.rejoined();
                Ok(())
            }
            // Configuring is retried by the first operation that finds the pool missing.
            Err(trip) => self.failed(trip).map_or(Ok(()), |_| Ok(())),
        }
    }

    async fn admit(&self, pool: &PoolId, cost: Cost, now: Timestamp) -> Result<Admission> {
        self.admit_as(pool, cost, now, &request_id()).await
    }
    async fn settle(&self, reservation: Reservation, usage: Usage) -> Result<()> {
        if reservation.id() & LOCAL != 0 {
            return self.local.settle_now(unmark(&reservation), usage);
        }
        let config = self.config(reservation.pool())?;
        let keys = self.keys(reservation.pool()).base();
        let args = [
            reservation.id().to_string(),
            us(reservation.at()).to_string(),
            usage.tokens.map(|v| v.to_string()).unwrap_or_default(),
            usage.images.map(|v| v.to_string()).unwrap_or_default(),
        ];
        let now = reservation.at();
        let outcome = self
            .run(&self.scripts.settle, &keys, &config, now, &args)
            .await;
        self.given_back(outcome)
    }

    async fn release(&self, reservation: Reservation) -> Result<()> {
        if reservation.id() & LOCAL != 0 {
            return self.local.release_now(unmark(&reservation));
        }
        let config = self.config(reservation.pool())?;
        let pool_keys = self.keys(reservation.pool());
        let mut keys = pool_keys.base().to_vec();
        keys.push(pool_keys.released(reservation.id(), us(reservation.at())));
        let args = [
            reservation.id().to_string(),
            us(reservation.at()).to_string(),
            us(reservation.day_start()).to_string(),
            reservation.cost().requests.to_string(),
        ];
        let now = reservation.at();
        let outcome = self
            .run(&self.scripts.release, &keys, &config, now, &args)
            .await;
        self.given_back(outcome)
    }

    async fn observe_error(&self, pool: &PoolId, error: &Error, now: Timestamp) -> Result<()> {
        let config = self.config(pool)?;
        // The learning also goes to the local ledger, which answers if Redis fails.
        self.local.observe_error_now(pool, error, now)?;
        if !self.try_redis() {
            return Ok(());
        }
        let facts = error.quota();
        let kind = error.kind();
        let quota_error = matches!(kind, ErrorKind::RateLimited | ErrorKind::QuotaExhausted);
        let billing = if kind == ErrorKind::BillingRequired {
            error.advice()
        } else if quota_error && facts.quota_value == Some(0) {
            error.clone().with_kind(ErrorKind::BillingRequired).advice()
        } else {
            String::new()
        };
        let daily =
            kind == ErrorKind::QuotaExhausted || facts.dimension.is_some_and(Dimension::is_daily);
        let dimension = facts.dimension.or(daily.then_some(Dimension::Rpd));
        let max_hint = i64::try_from(hints::MAX_RETRY_HINT.as_micros()).unwrap_or(i64::MAX);
        let args = [
            billing,
            if quota_error { "1" } else { "0" }.to_owned(),
            if daily { "1" } else { "0" }.to_owned(),
            dimension.map(|d| d.as_str().to_owned()).unwrap_or_default(),
            facts.quota_value.map(|v| v.to_string()).unwrap_or_default(),
            facts
                .reset_at
                .map(|t| us(t).to_string())
                .unwrap_or_default(),
            error
                .retry_after()
                .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX).to_string())
                .unwrap_or_default(),
            max_hint.to_string(),
        ];
        let keys = self.keys(pool).base();
        let reply = match self
            .run(&self.scripts.observe_error, &keys, &config, now, &args)
            .await
        {
            Ok(reply) => reply,
            Err(trip) => return self.failed(trip).map_or(Ok(()), Err),
        };
        self.rejoined();
        if reply.first().map(String::as_str) != Some("room") {
            return Ok(());
        }
        let field = |i: usize| reply.get(i).map(String::as_str).unwrap_or("");
        let (Some(dim), Some(used), Some(limit)) =
            (opt_dim(field(1)), opt_u64(field(2)), opt_u64(field(3)))
        else {
            return Err(malformed(&self.name, &reply));
        };
        // Which other pools of the same project were busy on that dimension: the likely
        // partners, each read on its own (they live under other hash tags).
        let others: Vec<PoolConfig> = {
            let configs = self.configs.read().unwrap_or_else(PoisonError::into_inner);
            configs
                .values()
                .filter(|c| c.id != *pool && c.id.same_project(pool))
                .cloned()
                .collect()
        };
        let mut partners = Vec::new();
        for other in others {
            let fields = self.status_fields(&other, now, false).await?;
            let key = if dim.is_daily() {
                "day_count".to_owned()
            } else {
                format!("u_{dim}")
            };
            if fields.get(&key).and_then(|v| opt_u64(v)).unwrap_or(0) > 0 {
                partners.push(other.id.clone());
            }
        }
        partners.sort();
        let at = self.estimate(now);
        let suspicion = SharedPoolSuspicion {
            dimension: dim,
            used,
            limit,
            last_seen: match self.options.clock {
                RedisClock::Caller => now,
                RedisClock::Server => at,
            },
            count: 1,
            quota_model: facts.model.clone(),
            quota_id: facts.quota_id.clone(),
            partners,
        };
        match self.suspect(&config, suspicion, now).await {
            Ok(()) => Ok(()),
            Err(trip) => self.failed(trip).map_or(Ok(()), Err),
        }
    }

    async fn observe_success(
        &self,
        pool: &PoolId,
        snapshot: &RateLimitSnapshot,
        now: Timestamp,
    ) -> Result<()> {
        let config = self.config(pool)?;
        self.local.observe_success_now(pool, snapshot, now)?;
        if !self.try_redis() {
            return Ok(());
        }
        let args = [
            snapshot.dimension.as_str().to_owned(),
            snapshot.limit.map(|v| v.to_string()).unwrap_or_default(),
            snapshot
                .remaining
                .map(|v| v.to_string())
                .unwrap_or_default(),
            snapshot
                .reset_at
                .map(|t| us(t).to_string())
                .unwrap_or_default(),
        ];
        let keys = self.keys(pool).base();
        match self
            .run(&self.scripts.observe_success, &keys, &config, now, &args)
            .await
        {
            Ok(_) => {
                self.rejoined();
                Ok(())
            }
            Err(trip) => self.failed(trip).map_or(Ok(()), Err),
        }
    }

    async fn status(&self, pool: &PoolId, now: Timestamp) -> Result<PoolStatus> {
        let config = self.config(pool)?;
        if !self.try_redis() {
            return self.local.status_now(pool, now);
        }
        match self.status_fields(&config, now, false).await {
            Ok(fields) => {
                self.rejoined();
                crate::status::build(&self.name, &config, &fields)
            }
            Err(e) if self.options.on_store_error == OnStoreError::Local => {
                let _ = self.failed(Trip::Other(e));
                self.local.status_now(pool, now)
            }
            Err(e) => Err(e),
        }
    }

    async fn statuses(&self, now: Timestamp) -> Result<Vec<PoolStatus>> {
        let mut ids: Vec<PoolId> = {
            let configs = self.configs.read().unwrap_or_else(PoisonError::into_inner);
            configs.keys().cloned().collect()
        };
        ids.sort();
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            out.push(self.status(id, now).await?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(url: &str) -> Result<String> {
        display_name(url).map(|(name, _)| name)
    }

    #[test]
    fn the_store_is_named_without_credentials_and_a_password_in_the_address_is_refused() {
        assert_eq!(
            name("redis://10.0.0.5:6380/2").unwrap(),
            "redis://10.0.0.5:6380/2"
        );
        assert_eq!(
            name("rediss://cache.example:6379/0").unwrap(),
            "rediss://cache.example:6379/0"
        );
        assert_eq!(
            name("redis://alice@10.0.0.5:6379/0").unwrap(),
            "redis://10.0.0.5:6379/0"
        );
        for bad in [
            "redis://:hunter2@10.0.0.5/0",
            "redis://bob:hunter2@10.0.0.5/0",
        ] {
            let e = name(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
        let e = name("http://10.0.0.5/").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid, "{e}");
    }
}

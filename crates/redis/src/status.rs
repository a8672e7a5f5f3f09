//! A pool's status from the fields the status script returns: limits configured here and
//! learned by any instance, use in the window and the day, blocks, the shared-pool suspicion.

use std::collections::BTreeMap;

use imagegate_core::quota::{
    Block, BlockReason, DimensionStatus, PoolConfig, PoolStatus, zone_name,
};
use imagegate_core::{Result, quota::Dimension};

use crate::reply::{malformed, opt_dim, opt_ts, opt_u64};

/// The status of `config`'s pool; `store` names the store in errors.
pub(crate) fn build(
    store: &str,
    config: &PoolConfig,
    fields: &BTreeMap<String, String>,
) -> Result<PoolStatus> {
    let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
    let at = opt_ts(get("now")).ok_or_else(|| malformed(store, &[get("now").into()]))?;
    let dimensions = Dimension::ALL
        .into_iter()
        .map(|d| {
            let learned = opt_u64(get(&format!("l_{d}")));
            let configured = config.limits.get(d);
            let limit = learned.or(configured);
            let used = if d.is_daily() {
                opt_u64(get("day_count")).unwrap_or(0)
            } else {
                opt_u64(get(&format!("u_{d}"))).unwrap_or(0)
            };
            let resets_at = if d.is_daily() {
                opt_ts(get("day_end"))
            } else {
                opt_ts(get(&format!("first_{d}")))
            };
            DimensionStatus {
                dimension: d,
                configured,
                learned,
                limit,
                learning: config.learning && limit.is_none(),
                used,
                remaining: limit.map(|l| l.saturating_sub(used)),
                resets_at,
            }
        })
        .collect();
    let billing = get("billing");
    let daily = opt_ts(get("daily_until")).filter(|t| *t > at);
    let wait = opt_ts(get("wait_until")).filter(|t| *t > at);
    let blocked = if !billing.is_empty() {
        Some(Block {
            until: None,
            reason: BlockReason::BillingRequired,
            dimension: None,
            advice: Some(billing.to_owned()),
        })
    } else if let Some(until) = daily {
        Some(Block {
            until: Some(until),
            reason: BlockReason::DailyQuota,
            dimension: opt_dim(get("daily_dim")),
            advice: None,
        })
    } else {
        wait.map(|until| Block {
            until: Some(until),
            reason: BlockReason::RetryDelay,
            dimension: opt_dim(get("wait_dim")),
            advice: None,
        })
    };
    let shared = get("shared");
    let shared_pool_suspected = if shared.is_empty() {
        None
    } else {
        serde_json::from_str(shared).ok()
    };
    Ok(PoolStatus {
        id: config.id.clone(),
        models: config.models.clone(),
        day_zone: zone_name(&config.day_zone),
        at,
        dimensions,
        blocked,
        shared_pool_suspected,
    })
}

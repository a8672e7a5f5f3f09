//! Serving one request: the route, the cache, and splitting a request for more images than one
//! call returns into calls whose responses are merged.
//!
//! Each call runs `call`'s loop: scan the route in preference order and send to the first
//! target whose pool admits it (`admit`), wait for the earliest capacity when none does, or
//! fail at once when that is beyond the deadline or the maximum wait (`wait`), and act on every
//! error by the decision rules (`rules`, applied in `send`). `docs/router.md` describes it.

use imagegate_core::clock::add;
use imagegate_core::{Error, ErrorKind, GenerateRequest, GenerateResponse, Result, TokenUsage};

use crate::cache::Cache;
use crate::call::call;
use crate::ctx::Ctx;
use crate::events::Event;
use crate::inner::Inner;
use crate::options::RequestOptions;

/// The name of the route made of every target in the order they were added.
pub const DEFAULT_ROUTE: &str = "default";

/// Serves one request on `route_name`.
pub(crate) async fn serve(
    inner: &Inner,
    route_name: &str,
    request: &GenerateRequest,
    options: RequestOptions,
) -> Result<GenerateResponse> {
    request.validate()?;
    let route = inner.routes.get(route_name).ok_or_else(|| {
        Error::config(format!(
            "unknown route `{route_name}`: configure it or use `{DEFAULT_ROUTE}`"
        ))
    })?;
    inner.ensure_configured().await?;
    let id = inner.next_request_id();
    let cache = inner
        .cache
        .as_ref()
        .filter(|_| options.cache.unwrap_or(true));
    let key = cache.map(|_| Cache::key(route_name, request));
    if let (Some(cache), Some(key)) = (cache, &key)
        && let Some(mut hit) = cache.get(key, inner.clock.now()).await
    {
        hit.attempts.clear();
        hit.cost_usd = Some(0.0);
        inner.events.emit(Event::CacheHit {
            request: id,
            key: key.clone(),
        });
        return Ok(hit);
    }
    let start = inner.clock.now();
    let deadline = request
        .deadline
        .or_else(|| inner.policy.max_queue_wait.map(|w| add(start, w)));
    let max_wait = options.max_wait.unwrap_or(inner.policy.max_wait);
    let mut ctx = Ctx::new(id, route_name, route.len(), deadline, max_wait, start);
    ctx.stop = options.stop;
    let mut combined: Option<GenerateResponse> = None;
    let mut remaining = request.count;
    while remaining > 0 {
        let done = request.count - remaining;
        let response = call(inner, route, request, remaining, done, &mut ctx).await?;
        remaining =
            remaining.saturating_sub(u32::try_from(response.images.len()).unwrap_or(u32::MAX));
        combined = Some(match combined {
            None => response,
            Some(mut all) => {
                merge(&mut all, response);
                all
            }
        });
    }
    let mut response = combined.ok_or_else(|| {
        Error::new(ErrorKind::Unexpected, "no call was made").with_provider("router")
    })?;
    response.attempts = std::mem::take(&mut ctx.attempts);
    response.cost_usd = Some(response.attempts.iter().map(|a| a.cost_usd).sum());
    if let (Some(cache), Some(key)) = (cache, &key) {
        cache.put(key, inner.clock.now(), &response).await;
    }
    Ok(response)
}

/// Appends a later call's response to the first.
fn merge(all: &mut GenerateResponse, next: GenerateResponse) {
    all.images.extend(next.images);
    all.usage = match (all.usage, next.usage) {
        (Some(a), Some(b)) => {
            let mut sum = TokenUsage::default();
            sum.input_tokens = a.input_tokens + b.input_tokens;
            sum.output_tokens = a.output_tokens + b.output_tokens;
            sum.image_tokens = match (a.image_tokens, b.image_tokens) {
                (Some(x), Some(y)) => Some(x + y),
                (x, y) => x.or(y),
            };
            Some(sum)
        }
        (a, b) => a.or(b),
    };
    all.served_by = next.served_by;
    if next.request_id.is_some() {
        all.request_id = next.request_id;
    }
    if all.note.is_none() {
        all.note = next.note;
    }
}

//! `imagegate diagnose`: paste an upstream error body, learn what happened and what to do.
//!
//! It classifies with the very `parse_error` the providers use (each registry entry's), so what
//! it says is what the router would have decided.

use std::io::Read as _;
use std::path::PathBuf;

use http::{HeaderMap, StatusCode};
use imagegate_core::registry::{ParseErrorFn, ProviderDescriptor};
use imagegate_core::{Error, human_duration};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;

use crate::failure::Failure;
use crate::providers::{PROVIDERS, descriptor};
use crate::report::ErrorReport;

/// The `--provider` choices: every registry entry with a wire format, and `auto`.
fn envelope_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        PROVIDERS
            .iter()
            .filter(|d| d.parse_error.is_some())
            .map(|d| d.name)
            .chain(["auto"]),
    )
}

/// Arguments of `imagegate diagnose`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The file holding the error body; `-` or nothing reads standard input.
    #[arg(value_name = "FILE|-")]
    input: Option<PathBuf>,

    /// Whose error it is (a provider's name), or `auto` to tell by the body's structure.
    #[arg(long, default_value = "auto", value_parser = envelope_names())]
    provider: String,

    /// The HTTP status the body came with (default: the body's own `code`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(100..=599))]
    status: Option<u16>,

    /// A response header that came with the body, as `Name: value` (repeatable): OpenRouter
    /// and proxies put rate-limit resets and `Retry-After` there.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(http::HeaderName, http::HeaderValue)>,

    /// Print exactly one JSON object instead of text.
    #[arg(long)]
    json: bool,

    /// The instant to classify at (reset times depend on it); for reproducible output.
    #[arg(long, hide = true, value_name = "RFC3339")]
    now: Option<Timestamp>,
}

/// Runs the command.
///
/// # Errors
/// [`Failure::Usage`] when the input cannot be read or is not an error body it understands.
pub(crate) fn run(args: &Args) -> Result<(), Failure> {
    let body = read_input(args.input.as_ref())?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        Failure::usage(format!(
            "the input is not JSON ({e}); paste the upstream's error body as it was received"
        ))
    })?;
    let Some(envelope) = error_object(&value) else {
        return Err(Failure::usage(
            "the input is JSON but not an error body: expected an object with `error` (or an \
             error object with `code` and `message`)",
        ));
    };
    let (provider, parse) = match args.provider.as_str() {
        "auto" => detect(envelope)
            .ok_or_else(|| Failure::usage("no provider with an error format is registered"))?,
        name => descriptor(name)
            .and_then(|d| d.parse_error.map(|p| (d, p)))
            .ok_or_else(|| Failure::usage(format!("`{name}` has no error format to diagnose")))?,
    };
    let status = match args.status {
        Some(code) => code,
        None => envelope
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .ok_or_else(|| {
                Failure::usage(
                    "the body has no numeric `code` to take the HTTP status from; give it with \
                     --status N",
                )
            })?,
    };
    let status = StatusCode::from_u16(status)
        .map_err(|_| Failure::usage(format!("{status} is not an HTTP status")))?;
    let now = args.now.unwrap_or_else(Timestamp::now);
    let mut headers = HeaderMap::new();
    for (name, value) in &args.headers {
        headers.append(name.clone(), value.clone());
    }
    let error = parse(status, &headers, &body, now);
    if args.json {
        let mut report = ErrorReport::from(&error);
        report.message = shortened(&report.message);
        let text = serde_json::to_string(&report)
            .map_err(|e| Failure::io(format!("cannot render JSON: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", explain(&error, provider, now));
    }
    Ok(())
}

fn parse_header(text: &str) -> Result<(http::HeaderName, http::HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("expected `Name: value`, found {text:?}"))?;
    let name = http::HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("{:?} is not a header name", name.trim()))?;
    let value = http::HeaderValue::from_str(value.trim())
        .map_err(|_| format!("the value of {name} is not a valid header value"))?;
    Ok((name, value))
}

fn read_input(path: Option<&PathBuf>) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    match path {
        Some(path) if path.as_os_str() != "-" => {
            body = std::fs::read(path)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
        }
        _ => {
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(|e| Failure::usage(format!("cannot read standard input: {e}")))?;
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Failure::usage("the input is empty; paste an error body"));
    }
    Ok(body)
}

/// The error object in a body: `{"error": {...}}`, `[{"error": {...}}]` (Google sometimes
/// wraps it in an array), or a bare `{code, message}` as OpenRouter streams it.
fn error_object(value: &Value) -> Option<&Value> {
    let value = match value {
        Value::Array(items) => items.first()?,
        other => other,
    };
    if let Some(error) = value.get("error").filter(|e| e.is_object()) {
        return Some(error);
    }
    (value.get("code").is_some() && value.get("message").is_some()).then_some(value)
}

/// The first registry entry that recognises the envelope (Google's carries a canonical
/// `status` string or typed `details`; OpenRouter's `metadata` and a numeric code only), else
/// the first with a wire format.
fn detect(error: &Value) -> Option<(&'static ProviderDescriptor, ParseErrorFn)> {
    let with_format = || {
        PROVIDERS
            .iter()
            .copied()
            .filter_map(|d| d.parse_error.map(|p| (d, p)))
    };
    with_format()
        .find(|(d, _)| d.recognises.is_some_and(|r| r(error)))
        .or_else(|| with_format().next())
}

/// The longest message shown whole; an upstream (or a paste) can hold megabytes.
const MAX_MESSAGE_BYTES: usize = 2000;

/// `message`, cut at [`MAX_MESSAGE_BYTES`] (on a character boundary) with a note saying how
/// much was left out.
fn shortened(message: &str) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message.to_owned();
    }
    let mut cut = MAX_MESSAGE_BYTES;
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}... ({} more bytes not shown)",
        &message[..cut],
        message.len() - cut
    )
}

/// The human explanation: cause, quota facts, fix.
fn explain(error: &Error, provider: &ProviderDescriptor, now: Timestamp) -> String {
    let who = provider.label;
    let mut out = String::new();
    let status = error
        .http_status()
        .map_or_else(String::new, |s| format!("HTTP {s} "));
    // OpenRouter's code is the status again; Google's is the canonical name worth showing.
    let code = error
        .upstream_code()
        .filter(|c| c.parse::<u16>().ok() != error.http_status())
        .unwrap_or_default();
    out.push_str(&format!(
        "{}: {} ({})\n",
        error.kind(),
        error.kind().describe(),
        if error.is_temporary() {
            "temporary"
        } else {
            "permanent: retrying will not help"
        }
    ));
    out.push_str(&format!(
        "upstream: {}\n",
        format!("{who} {status}{code}").trim_end()
    ));
    out.push_str(&format!("message:  {}\n", shortened(error.message())));
    let quota = error.quota();
    let mut facts = Vec::new();
    if let Some(d) = quota.dimension {
        facts.push(format!("dimension {d}"));
    }
    if let Some(v) = quota.quota_value {
        facts.push(format!("limit {v}"));
    }
    if let Some(m) = &quota.model {
        facts.push(format!("model {m}"));
    }
    if let Some(id) = &quota.quota_id {
        facts.push(format!("quota id {id}"));
    }
    if let Some(metric) = &quota.quota_metric {
        facts.push(format!("metric {metric}"));
    }
    if !facts.is_empty() {
        out.push_str(&format!("quota:    {}\n", facts.join(", ")));
    }
    // A daily reset says the same as its delay, better: show one of them.
    if let Some(delay) = error
        .retry_after()
        .filter(|d| !d.is_zero() && quota.reset_at.is_none())
    {
        out.push_str(&format!("retry:    after {}\n", human_duration(delay)));
    }
    if let Some(reset) = quota.reset_at {
        // A provider whose day ends elsewhere (Gemini's is a Pacific day): show the reset
        // where it happens too.
        let zone = provider.zone();
        let when = if zone == TimeZone::UTC {
            reset.strftime("%Y-%m-%d %H:%M UTC").to_string()
        } else {
            format!(
                "{} ({} in {})",
                reset.strftime("%Y-%m-%d %H:%M UTC"),
                reset.to_zoned(zone).strftime("%Y-%m-%d %H:%M %Z"),
                provider.day_zone,
            )
        };
        let wait = match std::time::Duration::try_from(reset.duration_since(now)) {
            Ok(wait) if !wait.is_zero() => format!("in {}", human_duration(wait)),
            _ => "already passed".to_owned(),
        };
        out.push_str(&format!("resets:   {when}, {wait}\n"));
        if reset <= now {
            // The advice would say "until then" or "wait": not next to "already passed".
            out.push_str(
                "fix:      The reset it names has already passed: the quota should be \
                 available again, so retry; if it is refused again, the upstream's counter has \
                 not reset yet.\n",
            );
            return out;
        }
    }
    out.push_str(&format!("fix:      {}\n", error.advice()));
    out
}

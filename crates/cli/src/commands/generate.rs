//! `imagegate generate PROMPT`: one prompt to image files.
//!
//! Images are written as they arrive, so when a later call fails the images already made are
//! on disk and named in the output: work done is never lost.

use std::path::{Path, PathBuf};
use std::time::Duration;

use imagegate_core::{
    AspectRatio, GenerateRequest, GenerateResponse, ImageProvider, ImageSize, TokenUsage,
};
use imagegate_router::{Budget, MaxWait, RequestOptions};
use serde::Serialize;

use crate::config::Config;
use crate::failure::Failure;
use crate::output::{Destination, check_destination, slug};
use crate::routes::{announce_waits, max_wait, routed};

/// How long `generate` waits for capacity by default: a per-minute window, not a day.
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(120);

/// Arguments of `imagegate generate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// What to draw.
    prompt: String,

    /// Where to write: a file (`out.png`; with -n, `out-1.png`, ...) or a directory (`out/`).
    #[arg(short, long, value_name = "FILE|DIR")]
    output: Option<PathBuf>,

    /// How many images.
    #[arg(short = 'n', long = "count", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    count: u32,

    /// The provider, by its configured name (default: configuration, else an available key,
    /// else the built-in mock).
    #[arg(long, value_name = "NAME")]
    provider: Option<String>,

    /// A configured route: the router tries its targets in order, throttled by their quotas
    /// (default: `default_route` when no --provider is given).
    #[arg(long, value_name = "NAME", conflicts_with = "provider")]
    route: Option<String>,

    /// The model (default: the provider's).
    #[arg(long, value_name = "MODEL")]
    model: Option<String>,

    /// Aspect ratio, e.g. 16:9.
    #[arg(long, value_name = "W:H", value_parser = parse_aspect_ratio)]
    aspect_ratio: Option<AspectRatio>,

    /// Image size: 0.5K, 1K, 2K or 4K.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    size: Option<ImageSize>,

    /// Seed, for providers that take one.
    #[arg(long)]
    seed: Option<u64>,

    /// A reference image to edit or draw from (repeatable).
    #[arg(long = "reference", value_name = "FILE")]
    references: Vec<PathBuf>,

    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    json: bool,

    /// The longest wait for capacity (a per-minute window, a daily reset): beyond it, fail at
    /// once saying when capacity returns (default 2m).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    max_wait: Option<Duration>,
}

fn parse_aspect_ratio(text: &str) -> Result<AspectRatio, String> {
    text.parse()
        .map_err(|e: imagegate_core::Error| e.message().to_owned())
}

fn parse_size(text: &str) -> Result<ImageSize, String> {
    text.parse()
        .map_err(|e: imagegate_core::Error| e.message().to_owned())
}

/// One written image, as `--json` reports it.
#[derive(Debug, Serialize)]
struct WrittenImage {
    path: PathBuf,
    mime_type: String,
    width: Option<u32>,
    height: Option<u32>,
    bytes: usize,
}

/// What `--json` prints on success.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    provider: &'a str,
    model: String,
    project: Option<String>,
    images: Vec<WrittenImage>,
    /// From the price table, before anything was sent (null when the model has no price).
    estimated_cost_usd: Option<f64>,
    usage: Option<TokenUsage>,
    cost_usd: Option<f64>,
    request_ids: Vec<String>,
    notes: Vec<String>,
}

/// Runs the command.
///
/// # Errors
/// A [`Failure`] with the exit code that fits: usage for bad input, upstream for a provider
/// error (after writing every image already made).
pub(crate) async fn run(config: &Config, args: Args) -> Result<(), Failure> {
    let mut request = GenerateRequest::new(args.prompt.clone());
    if let Some(ratio) = args.aspect_ratio {
        request = request.with_aspect_ratio(ratio);
    }
    if let Some(size) = args.size {
        request = request.with_size(size);
    }
    if let Some(seed) = args.seed {
        request = request.with_seed(seed);
    }
    if let Some(model) = &args.model {
        request = request.with_model(model.clone());
    }
    for path in &args.references {
        let image = crate::references::read(path)
            .await
            .map_err(Failure::usage)?;
        request = request.with_reference_image(image);
    }
    request
        .validate()
        .map_err(|e| Failure::usage(e.message().to_owned()))?;

    // One path: a route, or a provider as a one-target route, through the same router over
    // the same quota state.
    let route = config.route_for(args.route.as_deref(), args.provider.as_deref());
    let routed = routed(
        config,
        route.as_deref(),
        args.provider.as_deref(),
        args.model.as_deref(),
        Budget::default(),
    )?;
    let router = &routed.router;
    let name = routed.label.clone();
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| router.default_model().to_owned());
    let capabilities = router.capabilities(Some(&model));
    let probe = request.clone().with_count(1);
    capabilities
        .check(&probe)
        .map_err(|why| Failure::usage(format!("provider `{name}` model `{model}` {why}")))?;
    let per_call = routed.per_call;
    let options = RequestOptions::default()
        .with_max_wait(max_wait(args.max_wait, MaxWait::UpTo(DEFAULT_MAX_WAIT)));

    let estimated_cost_usd =
        config
            .price_table()
            .estimate(&request.clone().with_count(args.count), &model, false);
    if let Some(cost) = estimated_cost_usd
        && !args.json
    {
        eprintln!(
            "imagegate: estimated cost ${cost:.3} for {} image(s) of {model}",
            args.count
        );
    }

    // Before paying: a destination that cannot take the images is found now, not after.
    let destination = Destination::from_arg(args.output.as_deref());
    check_destination(&destination)?;

    let stem = slug(&args.prompt);
    let total = args.count as usize;
    let mut summary = Summary {
        provider: &name,
        model: model.clone(),
        project: routed.project.clone(),
        images: Vec::new(),
        estimated_cost_usd,
        usage: None,
        cost_usd: None,
        request_ids: Vec::new(),
        notes: Vec::new(),
    };

    while summary.images.len() < total {
        let wanted = u32::try_from(total - summary.images.len())
            .unwrap_or(u32::MAX)
            .min(per_call);
        let mut call = request.clone().with_count(wanted);
        // Later calls move the seed on by the images already made, so a seeded run of N
        // images is N different pictures (as the router does when it splits a request).
        if let Some(seed) = request.seed {
            let done = u64::try_from(summary.images.len()).unwrap_or(u64::MAX);
            call = call.with_seed(seed.wrapping_add(done));
        }
        tracing::info!(provider = %name, model = %model, images = wanted, "calling provider");
        let waits = announce_waits(router);
        let outcome = router
            .generate_with(&routed.route, &call, options.clone())
            .await;
        waits.abort();
        let response = match outcome {
            Ok(response) => response,
            Err(error) => {
                if !summary.images.is_empty() {
                    eprintln!(
                        "imagegate: {} of {total} image(s) were written before the failure",
                        summary.images.len()
                    );
                }
                if let Some(note) = routed.block_note(&error) {
                    eprintln!("imagegate: {note}");
                }
                return Err(Failure::Upstream {
                    error,
                    json: args.json,
                });
            }
        };
        record(&mut summary, &response);
        for image in &response.images {
            if summary.images.len() == total {
                break;
            }
            let path = match destination.write(&stem, summary.images.len(), total, image) {
                Ok(path) => path,
                Err(e) => {
                    if !summary.images.is_empty() {
                        eprintln!(
                            "imagegate: {} of {total} image(s) were written before the failure",
                            summary.images.len()
                        );
                    }
                    return Err(rescue(config, &stem, image, &e));
                }
            };
            warn_on_extension_mismatch(&path, image.extension());
            if !args.json {
                println!(
                    "wrote {} ({}, {}) from {}/{}",
                    path.display(),
                    image.mime_type,
                    match (image.width, image.height) {
                        (Some(w), Some(h)) => format!("{w}x{h}"),
                        _ => "size unknown".to_owned(),
                    },
                    name,
                    response.served_by.model
                );
            }
            summary.images.push(WrittenImage {
                path,
                mime_type: image.mime_type.clone(),
                width: image.width,
                height: image.height,
                bytes: image.bytes.len(),
            });
        }
        if response.images.is_empty() {
            // A provider that answers with no image and no error would loop forever.
            return Err(Failure::io(format!(
                "provider `{name}` returned no image and no error"
            )));
        }
    }

    if args.json {
        let text = serde_json::to_string(&summary)
            .map_err(|e| Failure::io(format!("cannot render JSON: {e}")))?;
        println!("{text}");
    }
    Ok(())
}

fn record(summary: &mut Summary<'_>, response: &GenerateResponse) {
    summary.model.clone_from(&response.served_by.model);
    if let Some(usage) = &response.usage {
        let total = summary.usage.get_or_insert_with(TokenUsage::default);
        total.input_tokens += usage.input_tokens;
        total.output_tokens += usage.output_tokens;
        if let Some(image_tokens) = usage.image_tokens {
            *total.image_tokens.get_or_insert(0) += image_tokens;
        }
    }
    if let Some(cost) = response.cost_usd {
        *summary.cost_usd.get_or_insert(0.0) += cost;
    }
    summary.request_ids.extend(response.request_id.clone());
    summary.notes.extend(response.note.clone());
}

/// A paid image whose destination failed: kept in the recovery place, named in the error.
fn rescue(
    config: &Config,
    stem: &str,
    image: &imagegate_core::Image,
    failed: &crate::output::WriteError,
) -> Failure {
    let name = format!("{stem}.{}", image.extension());
    match crate::recovery::save(&crate::recovery::dir(config), &name, &image.bytes) {
        Ok(kept) => Failure::io(format!(
            "{failed}; the image (already paid for) is kept at {}",
            kept.display()
        )),
        Err(also) => Failure::io(format!(
            "{failed}; the image (already paid for) could not be kept either: {also}"
        )),
    }
}

/// The bytes are written as the provider sent them; if the name says otherwise, say so.
fn warn_on_extension_mismatch(path: &Path, actual: &str) {
    if let Some(extension) = path.extension().and_then(|e| e.to_str()) {
        let extension = extension.to_ascii_lowercase();
        let same = extension == actual || (extension == "jpeg" && actual == "jpg");
        if !same {
            eprintln!(
                "imagegate: note: {} holds {actual} data (the provider chose the format)",
                path.display()
            );
        }
    }
}

//! Generates images through the Gemini Batch API (half the price, results within 24 hours) and
//! writes one file per prompt into a directory.
//!
//! ```text
//! GEMINI_API_KEY=... cargo run -p imagegate-gemini --example gemini_batch -- OUT_DIR "a red fox" "a blue heron"
//! ```
//!
//! `GEMINI_BASE_URL` points it at a stand-in server (CI runs it against `imagegate emulate`,
//! whose `batch_turnaround = "0s"` finishes a job at its first poll). It polls every
//! `GEMINI_BATCH_POLL_SECS` seconds (default 60). This sketch keeps nothing on disk: a job
//! interrupted here is found again with `batch_find` by its display name, never created twice
//! (`imagegate batch` does that, with a journal).

use std::error::Error;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use imagegate_core::GenerateRequest;
use imagegate_gemini::batch::BatchRequest;
use imagegate_gemini::{DEFAULT_MODEL, GeminiProvider};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gemini_batch: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().ok_or("usage: gemini_batch OUT_DIR PROMPT...")?;
    let prompts: Vec<String> = args.collect();
    if prompts.is_empty() {
        return Err("usage: gemini_batch OUT_DIR PROMPT...".into());
    }
    let poll = std::env::var("GEMINI_BATCH_POLL_SECS")
        .ok()
        .map(|s| s.parse::<u64>())
        .transpose()
        .map_err(|e| format!("GEMINI_BATCH_POLL_SECS: {e}"))?
        .unwrap_or(60);
    std::fs::create_dir_all(&out)?;

    let gemini = GeminiProvider::from_env()?;
    let requests: Vec<BatchRequest> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| BatchRequest::new(format!("image-{i:04}"), GenerateRequest::new(p.clone())))
        .collect();
    // A unique display name: the key to find this job again after an interruption.
    let display_name = format!("gemini-batch-example-{}", std::process::id());
    let mut job = gemini
        .batch_create(DEFAULT_MODEL, &display_name, &requests)
        .await?;
    println!("{}: {} ({} requests)", job.name, job.state, requests.len());
    while !job.is_finished() {
        tokio::time::sleep(Duration::from_secs(poll)).await;
        job = gemini.batch_get(&job.name).await?;
        println!(
            "{}: {} ({}/{} done)",
            job.name,
            job.state,
            job.stats.done(),
            job.stats.requests
        );
    }
    let mut written = 0;
    for result in gemini.batch_results(&job).await? {
        match result.outcome {
            Ok(response) => {
                for (n, image) in response.images.iter().enumerate() {
                    let ext = imagegate_core::extension_for(&image.mime_type);
                    let path = Path::new(&out).join(format!("{}-{n}.{ext}", result.key));
                    std::fs::write(&path, &image.bytes)?;
                    written += 1;
                }
            }
            Err(error) => eprintln!("{}: {error}", result.key),
        }
    }
    println!("{written} image(s) in {out}");
    if written == 0 {
        return Err(format!("job {} ({}) delivered no image", job.name, job.state).into());
    }
    Ok(())
}

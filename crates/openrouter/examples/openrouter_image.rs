//! Generates one image with OpenRouter and writes it to a file.
//!
//! ```text
//! OPENROUTER_API_KEY=... cargo run -p imagegate-openrouter --example openrouter_image -- "a lighthouse at dusk" lighthouse.png
//! ```
//!
//! `OPENROUTER_BASE_URL` points it at a relay or a stand-in server (CI runs it against
//! `imagegate emulate`). One call, one request: no retries; a 429 is printed with its advice.

use std::error::Error;
use std::process::ExitCode;

use imagegate_core::{GenerateRequest, ImageProvider};
use imagegate_openrouter::OpenRouterProvider;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // imagegate errors print as one line: the kind, the quota facts and what to do.
            eprintln!("openrouter_image: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(prompt), Some(out)) = (args.next(), args.next()) else {
        return Err("usage: openrouter_image PROMPT OUT_FILE".into());
    };

    // Reads OPENROUTER_API_KEY (required) and OPENROUTER_BASE_URL (optional).
    let provider = OpenRouterProvider::from_env()?;
    let response = provider.generate(&GenerateRequest::new(prompt)).await?;
    let image = response.images.first().ok_or("the answer held no image")?;
    std::fs::write(&out, &image.bytes)?;
    println!(
        "{out}: {} bytes of {} from {}",
        image.bytes.len(),
        image.mime_type,
        response.served_by.model
    );
    Ok(())
}

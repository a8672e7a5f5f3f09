//! Generates one image with Gemini and writes it to a file.
//!
//! ```text
//! GEMINI_API_KEY=... cargo run -p imagegate-gemini --example gemini_image -- "a lighthouse at dusk" lighthouse.png
//! ```
//!
//! `GEMINI_BASE_URL` points it at a relay or a stand-in server (CI runs it against
//! `imagegate emulate`). One call, one request: no retries; a 429 is printed with its advice.

use std::error::Error;
use std::process::ExitCode;

use imagegate_core::{GenerateRequest, ImageProvider};
use imagegate_gemini::GeminiProvider;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // imagegate errors print as one line: the kind, the quota facts and what to do.
            eprintln!("gemini_image: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(prompt), Some(out)) = (args.next(), args.next()) else {
        return Err("usage: gemini_image PROMPT OUT_FILE".into());
    };

    // Reads GEMINI_API_KEY (required) and GEMINI_BASE_URL (optional).
    let provider = GeminiProvider::from_env()?;
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

//! Renders mock images to disk and times them, to look at the patterns and check render speed.
//!
//! ```text
//! cargo run --release -p imagegate-mock --example render -- OUT_DIR [SIZE] [PROMPT ...]
//! ```
//! SIZE is 0.5K, 1K (default), 2K or 4K. Each prompt is written as `OUT_DIR/<n>.png`.

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use imagegate_core::{GenerateRequest, ImageSize};
use imagegate_mock::{DEFAULT_MODEL, render};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(
        args.next()
            .ok_or("usage: render OUT_DIR [SIZE] [PROMPT ...]")?,
    );
    let size: ImageSize = args.next().as_deref().unwrap_or("1K").parse()?;
    let mut prompts: Vec<String> = args.collect();
    if prompts.is_empty() {
        prompts = [
            "a lighthouse at dusk",
            "a lighthouse at dawn",
            "a red fox",
            "a blue whale",
        ]
        .map(str::to_owned)
        .to_vec();
    }
    std::fs::create_dir_all(&out)?;
    for (n, prompt) in prompts.iter().enumerate() {
        let request = GenerateRequest::new(prompt.as_str()).with_size(size);
        let started = Instant::now();
        let image = render::render_image(DEFAULT_MODEL, &request, 0)?;
        let took = started.elapsed();
        let path = out.join(format!("{n}.png"));
        std::fs::write(&path, &image.bytes)?;
        println!(
            "{}: {}x{} {} bytes in {:.1} ms ({prompt})",
            path.display(),
            image.width.unwrap_or(0),
            image.height.unwrap_or(0),
            image.bytes.len(),
            took.as_secs_f64() * 1000.0
        );
    }
    Ok(())
}

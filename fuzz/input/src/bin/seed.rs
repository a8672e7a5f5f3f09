//! Builds the fuzz targets' seed corpora from the repository: `seed <repo root> <corpus dir>`.
//!
//! - upstream answers: every `fixtures/<provider>/**/*.json`'s `response` (status, headers,
//!   body) as an [`Exchange`], once as recorded and once with the held key echoed in the body;
//! - google-rpc statuses and the OpenRouter key endpoint: those
//!   fixtures' bodies as raw bytes;
//! - retry hints: every `retry-after*` header, `retryDelay` and "retry in" message found in
//!   the fixtures;
//! - gateway requests: every fixture's `request.body_json` as a client would send it to the
//!   gateway's endpoint for that dialect, plus multipart image edits built here;
//! - configuration, scenarios and emulator files: `fixtures/scenarios/*.toml`,
//!   `.ci/*.toml` and every ```toml block under docs/ and README.md;
//! - batch input and journals: lines in each format, written here (docs/batch.md documents
//!   them; no fixture holds one).
//!
//! Files are named by the hash of their content, like libFuzzer's own, so rerunning adds
//! nothing twice.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use imagegate_fuzz_input::{Exchange, GatewayRequest, KeyPlace, TextFile};
use serde_json::Value;

type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, out] = args.as_slice() else {
        return Err("usage: seed <repository root> <corpus dir>".into());
    };
    let mut seeds = Seeds {
        out: PathBuf::from(out),
        written: 0,
    };
    let root = Path::new(root);
    let mut fixtures = Vec::new();
    walk(&root.join("fixtures"), &mut fixtures)?;
    fixtures.sort();
    for path in &fixtures {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => fixture(&mut seeds, root, path)?,
            Some("toml") => {
                let text = std::fs::read(path)?;
                seeds.text("scenario", &text)?;
                seeds.text("config", &text)?;
            }
            _ => {}
        }
    }
    let mut docs = vec![root.join("README.md")];
    walk(&root.join("docs"), &mut docs)?;
    docs.sort();
    for doc in docs
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
    {
        let text = std::fs::read_to_string(doc)?;
        for block in toml_blocks(&text) {
            seeds.text("config", block.as_bytes())?;
            seeds.text("scenario", block.as_bytes())?;
            seeds.text("emulator_config", block.as_bytes())?;
        }
    }
    if let Ok(entries) = std::fs::read_dir(root.join(".ci")) {
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read(&path)?;
                seeds.text("emulator_config", &text)?;
                seeds.text("config", &text)?;
            }
        }
    }
    handwritten(&mut seeds)?;
    eprintln!("{} seed files under {}", seeds.written, seeds.out.display());
    Ok(())
}

struct Seeds {
    out: PathBuf,
    written: usize,
}

impl Seeds {
    fn raw(&mut self, target: &str, bytes: &[u8]) -> Result<(), Failure> {
        let dir = self.out.join(target);
        std::fs::create_dir_all(&dir)?;
        let mut hasher = DefaultHasher::new();
        bytes.hash(&mut hasher);
        let path = dir.join(format!("seed-{:016x}", hasher.finish()));
        if !path.exists() {
            std::fs::write(path, bytes)?;
            self.written += 1;
        }
        Ok(())
    }

    /// A text file target's seed: once as is, once with the secret line inserted.
    fn text(&mut self, target: &str, text: &[u8]) -> Result<(), Failure> {
        for key in [KeyPlace::default(), KeyPlace { mode: 1, at: 1 }] {
            let file = TextFile {
                key,
                text: text.to_vec(),
            };
            self.raw(target, &file.encode())?;
        }
        Ok(())
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Failure> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn toml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_start().starts_with("```toml") => current = Some(String::new()),
            Some(block) if line.trim_start().starts_with("```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

fn body_of(message: &Value) -> Result<Vec<u8>, Failure> {
    if let Some(json) = message.get("body_json") {
        return Ok(serde_json::to_vec(json)?);
    }
    if let Some(text) = message.get("body_text").and_then(Value::as_str) {
        return Ok(text.as_bytes().to_vec());
    }
    if let Some(b64) = message.get("body_base64").and_then(Value::as_str) {
        return Ok(base64::engine::general_purpose::STANDARD.decode(b64)?);
    }
    Ok(Vec::new())
}

fn headers_of(message: &Value) -> Vec<(Vec<u8>, Vec<u8>)> {
    message
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.as_bytes().to_vec(), v.as_str()?.as_bytes().to_vec())))
                .collect()
        })
        .unwrap_or_default()
}

fn fixture(seeds: &mut Seeds, root: &Path, path: &Path) -> Result<(), Failure> {
    let rel = path.strip_prefix(root.join("fixtures"))?;
    let provider = rel
        .components()
        .next()
        .and_then(|c| c.as_os_str().to_str())
        .unwrap_or_default()
        .to_owned();
    let endpoint = rel
        .components()
        .nth(1)
        .and_then(|c| c.as_os_str().to_str())
        .unwrap_or_default()
        .to_owned();
    let value: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    if let Some(response) = value.get("response") {
        let body = body_of(response)?;
        let headers = headers_of(response);
        let status = response
            .get("status")
            .and_then(Value::as_u64)
            .unwrap_or(200) as u16;
        let target = match (provider.as_str(), endpoint.as_str()) {
            ("openrouter", "key") => {
                seeds.raw("openrouter_key", &body)?;
                None
            }
            ("gemini" | "vertex", _) => Some(format!("{provider}_response")),
            ("openrouter" | "openai", _) => Some(format!("{provider}_response")),
            _ => None,
        };
        if let Some(target) = target {
            // status - 100 is the layout's raw status for this code (the target adds 100).
            let raw_status = status.saturating_sub(100);
            for key in [KeyPlace::default(), KeyPlace { mode: 1, at: 40 }] {
                let exchange = Exchange {
                    status: raw_status,
                    headers: headers.clone(),
                    key,
                    body: body.clone(),
                };
                seeds.raw(&target, &exchange.encode())?;
            }
            if matches!(provider.as_str(), "gemini" | "vertex") {
                seeds.raw("google_rpc_status", &body)?;
            }
        }
        for (name, v) in &headers {
            if name.to_ascii_lowercase().starts_with(b"retry-after")
                || name.to_ascii_lowercase().starts_with(b"x-ratelimit")
            {
                seeds.raw("hints", v)?;
            }
        }
        hint_strings(seeds, &serde_json::from_slice(&body).unwrap_or(Value::Null))?;
    }
    if let Some(request) = value
        .get("request")
        .and_then(|r| r.get("body_json"))
        .filter(|b| b.is_object())
    {
        let endpoint = match (provider.as_str(), endpoint.as_str()) {
            ("openai", "images-generations") => Some(0),
            ("gemini" | "vertex", "generate-content") => Some(2),
            ("gemini" | "vertex", "predict") => Some(3),
            ("openrouter", "chat-completions") => Some(4),
            _ => None,
        };
        if let Some(endpoint) = endpoint {
            let mut body = request.clone();
            // The gateway reads the model from the body (OpenAI dialects) or the path; a
            // fixture's request is partial, so give the prompt a model and text to work on.
            if endpoint == 0 || endpoint == 4 {
                body.as_object_mut()
                    .map(|o| o.entry("model").or_insert(Value::from("gpt-image-1")));
            }
            seeds.raw(
                "gateway_request",
                &GatewayRequest {
                    endpoint,
                    headers: vec![(b"content-type".to_vec(), b"application/json".to_vec())],
                    query: Vec::new(),
                    // Bearer KEY, and the gateway knows that client: the parser runs.
                    key: KeyPlace { mode: 4 | 1, at: 0 },
                    body: serde_json::to_vec(&body)?,
                }
                .encode(),
            )?;
        }
    }
    Ok(())
}

/// `retryDelay` values and `message`s that mention a retry, anywhere in a body.
fn hint_strings(seeds: &mut Seeds, value: &Value) -> Result<(), Failure> {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if let Some(text) = v.as_str()
                    && (k == "retryDelay" || text.to_ascii_lowercase().contains("retry in"))
                {
                    seeds.raw("hints", text.as_bytes())?;
                }
                hint_strings(seeds, v)?;
            }
        }
        Value::Array(items) => {
            for v in items {
                hint_strings(seeds, v)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Seeds no fixture holds: multipart edits, batch input, journals, hint spellings.
fn handwritten(seeds: &mut Seeds) -> Result<(), Failure> {
    let png = base64::engine::general_purpose::STANDARD.decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
    )?;
    // An OpenAI images/edits form as the openai SDK sends it (platform.openai.com/docs/api-reference/images/createEdit).
    let mut form = Vec::new();
    for (name, value) in [
        ("model", &b"gpt-image-1"[..]),
        ("prompt", b"add a hat"),
        ("n", b"1"),
        ("size", b"1024x1024"),
        ("response_format", b"b64_json"),
    ] {
        form.extend_from_slice(
            format!("--X\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
        );
        form.extend_from_slice(value);
        form.extend_from_slice(b"\r\n");
    }
    for name in ["image[]", "image", "mask"] {
        form.extend_from_slice(
            format!(
                "--X\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
        );
        form.extend_from_slice(&png);
        form.extend_from_slice(b"\r\n");
    }
    form.extend_from_slice(b"--X--\r\n");
    for mode in [0, 1, 2, 3, 4 | 1, 8] {
        seeds.raw(
            "gateway_request",
            &GatewayRequest {
                endpoint: 1,
                headers: vec![(
                    b"content-type".to_vec(),
                    b"multipart/form-data; boundary=X".to_vec(),
                )],
                query: Vec::new(),
                key: KeyPlace { mode, at: 0 },
                body: form.clone(),
            }
            .encode(),
        )?;
    }
    seeds.raw(
        "gateway_request",
        &GatewayRequest {
            endpoint: 4,
            headers: vec![
                (b"content-type".to_vec(), b"application/json".to_vec()),
                (b"x-imagegate-max-wait".to_vec(), b"30s".to_vec()),
            ],
            query: b"alt=sse".to_vec(),
            key: KeyPlace { mode: 4 | 1, at: 0 },
            body: br#"{"model":"google/gemini-2.5-flash-image","modalities":["image","text"],"messages":[{"role":"user","content":[{"type":"text","text":"a cat"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}],"image_config":{"aspect_ratio":"16:9"}}"#.to_vec(),
        }
        .encode(),
    )?;

    for text in [
        &b"a lighthouse at dusk\na fox in the snow\n\n# a comment\n"[..],
        b"{\"prompt\": \"a cat\", \"id\": \"cat-01\", \"n\": 2, \"size\": \"2K\", \"aspect_ratio\": \"16:9\"}\n{\"prompt\": \"a dog\", \"id\": 17, \"seed\": 42, \"model\": \"gemini-2.5-flash-image\", \"references\": [\"ref.png\"], \"output\": \"dogs/dog\"}\n",
        b"\xEF\xBB\xBF{\"prompt\": \"bom\"}\n{\"promt\": \"typo\"}\n",
    ] {
        seeds.text("batch_input", text)?;
    }
    let journal = concat!(
        r#"{"at":"2026-01-15T12:00:00Z","event":"planned","job":"cat-01","prompt":"a cat","images":2}"#,
        "\n",
        r#"{"at":"2026-01-15T12:00:01Z","event":"started","job":"cat-01","image":0}"#,
        "\n",
        r#"{"at":"2026-01-15T12:00:09Z","event":"written","job":"cat-01","image":0,"path":"cat-01.png","recovered":false}"#,
        "\n",
        r#"{"at":"2026-01-15T12:00:10Z","event":"rescued","job":"cat-01","image":1,"path":"/tmp/r/cat-01-1.png"}"#,
        "\n",
        r#"{"at":"2026-01-15T12:00:11Z","event":"failed","job":"dog","kind":"rate_limited","message":"m","advice":"a"}"#,
        "\n",
        r#"{"at":"2026-01-15T12:00:12Z","event":"done","job":"cat-01"}"#,
        "\n",
        r#"{"at":"2026-01-15T12:00:13Z","event":"started","job":"cat-01","ima"#,
    );
    seeds.text("batch_journal", journal.as_bytes())?;

    for hint in [
        "10s",
        "15.002899939s",
        "120",
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "1741305600000",
        "6m0s",
        "1h2m3.5s",
        "250ms",
    ] {
        seeds.raw("hints", hint.as_bytes())?;
    }
    Ok(())
}

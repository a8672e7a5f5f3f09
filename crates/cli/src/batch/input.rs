//! The batch input: a text file (one prompt per line) or JSONL (one job object per line).
//!
//! A malformed line is reported with its line number and skipped, so one typo does not cost
//! the rest of the batch; only an input with no valid line at all is an invocation error.
//! The file is read as bytes: a UTF-8 byte-order mark is dropped, and a line that is not
//! UTF-8 is one malformed line, not a reason to refuse the whole file. Every image's file
//! name is unique over the whole input (checked on the names the images will get, not on the
//! jobs' stems), so no job can overwrite another's image.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use imagegate_core::{AspectRatio, ImageSize};
use serde::Deserialize;

use crate::output::slug;

/// The most images one job may ask for (as `generate -n`).
const MAX_IMAGES_PER_JOB: u32 = 64;

/// One job of the batch, validated.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// Stable identity in the journal and the output names: the JSONL `id`, else the line
    /// number (1-based), so rerunning the same input finds the same jobs.
    pub key: String,
    /// The input line it came from (1-based).
    pub line: usize,
    pub prompt: String,
    /// Images wanted (default 1).
    pub n: u32,
    pub size: Option<ImageSize>,
    pub aspect_ratio: Option<AspectRatio>,
    pub model: Option<String>,
    pub seed: Option<u64>,
    /// Reference image paths, resolved against the input file's directory. Read when the job
    /// runs, so an unreadable one fails that job alone.
    pub references: Vec<PathBuf>,
    /// The file-name stem of its images: `output`, else `<key>-<slug of the prompt>`.
    pub stem: String,
}

impl Job {
    /// The stem of image `index` (0-based): the job's stem, with `-1`, `-2`, ... when the job
    /// makes several.
    pub(crate) fn image_stem(&self, index: u32) -> String {
        if self.n > 1 {
            format!("{}-{}", self.stem, index + 1)
        } else {
            self.stem.clone()
        }
    }
}

/// A line that was skipped, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Malformed {
    pub line: usize,
    pub reason: String,
}

/// Every job of the input, and every line that was skipped.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub jobs: Vec<Job>,
    pub malformed: Vec<Malformed>,
}

/// The two formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Jsonl,
}

/// The UTF-8 byte-order mark some editors put first.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The input without a leading byte-order mark.
pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(BOM).unwrap_or(bytes)
}

/// JSONL when the file is named `*.jsonl` or its first non-blank character is `{`.
pub(crate) fn detect(path: &Path, bytes: &[u8]) -> Format {
    let by_name = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl"));
    let by_content = strip_bom(bytes)
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    if by_name || by_content {
        Format::Jsonl
    } else {
        Format::Text
    }
}

/// One JSONL line as written; unknown fields are refused so a typo (`promt`) is reported
/// rather than silently ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    prompt: String,
    #[serde(default)]
    id: Option<RawId>,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    aspect_ratio: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    references: Vec<PathBuf>,
    #[serde(default)]
    output: Option<String>,
}

/// `"id": "cat-01"` or `"id": 17`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawId {
    Text(String),
    Number(u64),
}

/// How references outside the input's directory are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum References {
    /// Only paths inside the input's directory (the default).
    #[default]
    Inside,
    /// Any path (`--allow-outside-references`).
    Anywhere,
}

/// Parses the input; `base` is the directory reference paths are relative to.
pub(crate) fn parse(bytes: &[u8], format: Format, base: &Path, references: References) -> Parsed {
    let mut parsed = Parsed::default();
    let mut keys = BTreeSet::new();
    // Every image's name, lowercased (a case-insensitive file system folds them).
    let mut names = BTreeSet::new();
    let bytes = strip_bom(bytes);
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    for (index, raw_line) in lines.into_iter().enumerate() {
        let line = index + 1;
        let raw_line = raw_line.strip_suffix(b"\r").unwrap_or(raw_line);
        let text = match std::str::from_utf8(raw_line) {
            Ok(text) => text,
            Err(e) => {
                parsed.malformed.push(Malformed {
                    line,
                    reason: format!(
                        "not UTF-8 text (a bad byte at column {})",
                        e.valid_up_to() + 1
                    ),
                });
                continue;
            }
        };
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let result = match format {
            Format::Text => Ok(text_job(line, trimmed)),
            Format::Jsonl => jsonl_job(line, trimmed, base, references),
        };
        let job = match result {
            Ok(job) => job,
            Err(reason) => {
                parsed.malformed.push(Malformed { line, reason });
                continue;
            }
        };
        if keys.contains(&job.key) {
            parsed.malformed.push(Malformed {
                line,
                reason: format!("id `{}` is used by an earlier line", job.key),
            });
            continue;
        }
        let own: Vec<String> = (0..job.n)
            .map(|i| job.image_stem(i).to_lowercase())
            .collect();
        if let Some(clash) = own.iter().find(|name| names.contains(*name)) {
            parsed.malformed.push(Malformed {
                line,
                reason: format!(
                    "its image name `{clash}` is also an image name of an earlier line (set \
                     `output` or `id` to tell them apart)"
                ),
            });
            continue;
        }
        keys.insert(job.key.clone());
        names.extend(own);
        parsed.jobs.push(job);
    }
    parsed
}

fn text_job(line: usize, prompt: &str) -> Job {
    let key = line.to_string();
    Job {
        stem: format!("{key}-{}", slug(prompt)),
        key,
        line,
        prompt: prompt.to_owned(),
        n: 1,
        size: None,
        aspect_ratio: None,
        model: None,
        seed: None,
        references: Vec::new(),
    }
}

fn jsonl_job(line: usize, text: &str, base: &Path, references: References) -> Result<Job, String> {
    let raw: RawJob = serde_json::from_str(text).map_err(|e| format!("not a job object: {e}"))?;
    let prompt = raw.prompt.trim().to_owned();
    if prompt.is_empty() {
        return Err("the prompt is empty".to_owned());
    }
    let key = match raw.id {
        None => line.to_string(),
        Some(RawId::Number(n)) => n.to_string(),
        Some(RawId::Text(id)) => {
            let id = id.trim().to_owned();
            check_name(&id, "id")?;
            id
        }
    };
    let n = raw.n.unwrap_or(1);
    if !(1..=MAX_IMAGES_PER_JOB).contains(&n) {
        return Err(format!("n must be 1 to {MAX_IMAGES_PER_JOB}, not {n}"));
    }
    let size = raw
        .size
        .map(|s| s.parse::<ImageSize>().map_err(|e| e.message().to_owned()))
        .transpose()?;
    let aspect_ratio = raw
        .aspect_ratio
        .map(|s| s.parse::<AspectRatio>().map_err(|e| e.message().to_owned()))
        .transpose()?;
    let stem = match raw.output {
        Some(output) => {
            let output = output.trim();
            // `cat.png` names the stem `cat`: the extension follows the bytes the provider sends.
            let stem = Path::new(output)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            check_name(output, "output")?;
            check_name(&stem, "output")?;
            stem
        }
        None => format!("{key}-{}", slug(&prompt)),
    };
    if references == References::Inside
        && let Some(outside) = raw
            .references
            .iter()
            .find(|r| !crate::references::stays_inside(r))
    {
        return Err(format!(
            "reference `{}` is outside the input file's directory; pass \
             --allow-outside-references to allow it",
            outside.display()
        ));
    }
    Ok(Job {
        key,
        line,
        prompt,
        n,
        size,
        aspect_ratio,
        model: raw.model.filter(|m| !m.trim().is_empty()),
        seed: raw.seed,
        references: raw.references.into_iter().map(|p| base.join(p)).collect(),
        stem,
    })
}

/// Ids and output names become file names in DIR: plain names only, never a path out of it.
fn check_name(name: &str, field: &str) -> Result<(), String> {
    let fine = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if fine {
        Ok(())
    } else {
        Err(format!(
            "{field} `{name}` must be a plain file name (letters, digits, `-`, `_`, `.`; not \
             starting with `.`)"
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn text_lines_skip_blanks_and_comments_and_number_jobs_by_line() {
        let parsed = parse(
            b"a cat\n\n# note\nA Dog!\n",
            Format::Text,
            Path::new("."),
            References::Inside,
        );
        let stems: Vec<_> = parsed.jobs.iter().map(|j| j.stem.as_str()).collect();
        assert_eq!(stems, ["1-a-cat", "4-a-dog"]);
        assert!(parsed.malformed.is_empty());
    }

    #[test]
    fn jsonl_reports_bad_lines_by_number_and_keeps_the_rest() {
        let text = concat!(
            "{\"prompt\": \"a cat\", \"id\": \"c1\", \"n\": 2}\n",
            "{\"prompt\": \"oops\"\n",
            "{\"promt\": \"typo\"}\n",
            "{\"prompt\": \"x\", \"size\": \"9K\"}\n",
            "{\"prompt\": \"y\", \"id\": \"../up\"}\n",
            "{\"prompt\": \"z\", \"output\": \"zed.png\", \"references\": [\"r.png\"]}\n",
        );
        let parsed = parse(
            text.as_bytes(),
            Format::Jsonl,
            Path::new("/in"),
            References::Inside,
        );
        let lines: Vec<_> = parsed.malformed.iter().map(|m| m.line).collect();
        assert_eq!(lines, [2, 3, 4, 5]);
        assert_eq!(parsed.jobs.len(), 2);
        assert_eq!(parsed.jobs[0].image_stem(1), "c1-a-cat-2");
        assert_eq!(parsed.jobs[1].stem, "zed");
        assert_eq!(parsed.jobs[1].references, [PathBuf::from("/in/r.png")]);
    }

    #[test]
    fn duplicate_ids_are_malformed() {
        let text = "{\"prompt\": \"a\", \"id\": 1}\n{\"prompt\": \"b\", \"id\": 1}\n";
        let parsed = parse(
            text.as_bytes(),
            Format::Jsonl,
            Path::new("."),
            References::Inside,
        );
        assert_eq!(parsed.jobs.len(), 1);
        assert_eq!(parsed.malformed[0].line, 2);
    }

    #[test]
    fn detection_by_extension_or_first_character() {
        assert_eq!(detect(Path::new("a.jsonl"), b"x"), Format::Jsonl);
        assert_eq!(
            detect(Path::new("a.txt"), b"\n {\"prompt\":1}"),
            Format::Jsonl
        );
        assert_eq!(detect(Path::new("a.txt"), b"a cat"), Format::Text);
        assert_eq!(
            detect(Path::new("a.txt"), b"\xEF\xBB\xBF{\"prompt\":1}"),
            Format::Jsonl
        );
    }
}

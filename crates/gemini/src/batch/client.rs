//! The Batch API calls, as methods of [`GeminiProvider`]: the same key (in the
//! `x-goog-api-key` header only), base URL, HTTP shell and clock as interactive calls.
//!
//! Each method sends what its name says and nothing more: no retries and no sleeps (a caller
//! polling a job owns the schedule). Every non-success answer is classified by the classifier
//! interactive answers go through, so a 429 on create is handled as any 429.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use imagegate_core::{Error, ErrorKind};
use imagegate_gemini_wire::normalize_model;
use imagegate_http::{Answer, sensitive_header};
use serde_json::json;

use crate::GeminiProvider;
use crate::batch::types::{
    BatchInput, BatchJob, BatchOptions, BatchOutput, BatchPage, BatchRequest, BatchResult,
};
use crate::batch::wire::{
    check_requests, choose_input, file_body, inline_body, inline_results, jsonl_input, parse_list,
    parse_operation, result_from_line,
};
use crate::response::{PROVIDER, parse_error};

/// The MIME type the JSONL input file is uploaded as.
const JSONL_MIME: &str = "application/jsonl";
/// Upload chunks must be multiples of this (the resumable protocol's granularity).
const CHUNK_GRANULARITY: u64 = 256 * 1024;

/// What a call is about, for the 404 message: a job or a file that no longer exists is not a
/// missing model.
#[derive(Clone, Copy)]
enum Target<'a> {
    Model,
    Job(&'a str),
    File(&'a str),
}

impl GeminiProvider {
    /// Uses `options` for the Batch API calls (inline/file thresholds, upload chunk size, list
    /// page size, the responses-file bound).
    #[must_use]
    pub fn with_batch_options(mut self, options: BatchOptions) -> Self {
        self.batch = options;
        self
    }

    /// The Batch API options in use.
    pub fn batch_options(&self) -> &BatchOptions {
        &self.batch
    }

    /// Creates a batch job of `requests` on `model`, named `display_name`.
    ///
    /// Small jobs go inline (see [`crate::batch::choose_input`]); larger ones are written as
    /// JSONL, uploaded through the Files API's resumable protocol (start, chunks, finalize)
    /// and referenced by `input_config.file_name`, so their results come back as a file too.
    ///
    /// Not idempotent: every successful call makes a job that is billed. Record
    /// `display_name` and the keys before calling; after a crash, find the job by listing.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRequest`] before anything is sent (no requests, a duplicate or empty
    /// key, an Imagen model, a request the model cannot serve); otherwise the classified answer
    /// of the upload or create call (a 429 is `rate_limited` or `quota_exhausted` exactly as
    /// for an interactive call).
    pub async fn batch_create(
        &self,
        model: &str,
        display_name: &str,
        requests: &[BatchRequest],
    ) -> Result<BatchJob, Error> {
        let model = imagegate_gemini_wire::check_model(model).map_err(|e| self.tag(e))?;
        check_requests(model, requests).map_err(|e| self.tag(e))?;
        for r in requests {
            self.check(&r.request, model)
                .map_err(|e| self.tag(prefix_key(&r.key, e)))?;
        }
        let body = match choose_input(model, requests, &self.batch) {
            BatchInput::Inline => inline_body(model, display_name, requests),
            BatchInput::File => {
                let file = self
                    .upload_file(display_name, JSONL_MIME, jsonl_input(model, requests))
                    .await?;
                file_body(display_name, &file)
            }
        };
        let url = format!(
            "{}/v1beta/models/{}:batchGenerateContent",
            self.base_url,
            normalize_model(model)
        );
        let answer = self
            .call(
                Method::POST,
                &url,
                Some(body.to_string().into_bytes()),
                Target::Model,
            )
            .await?;
        parse_operation(&answer.body).map_err(|e| self.tag(e))
    }

    /// Polls a job (`batches/...` or its bare id).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRequest`] for a malformed name or a job that does not exist (404);
    /// otherwise the classified answer.
    pub async fn batch_get(&self, name: &str) -> Result<BatchJob, Error> {
        let id = self.job_id(name)?;
        let url = format!("{}/v1beta/batches/{id}", self.base_url);
        let answer = self
            .call(Method::GET, &url, None, Target::Job(name))
            .await?;
        parse_operation(&answer.body).map_err(|e| self.tag(e))
    }

    /// One page of the key's jobs, newest first as the API lists them.
    ///
    /// # Errors
    /// The classified answer, or [`ErrorKind::InvalidResponse`] for an unreadable page.
    pub async fn batch_list_page(&self, page_token: Option<&str>) -> Result<BatchPage, Error> {
        let mut url = reqwest::Url::parse(&format!("{}/v1beta/batches", self.base_url))
            .map_err(|e| self.tag(Error::config(format!("cannot build the list URL: {e}"))))?;
        url.query_pairs_mut()
            .append_pair("pageSize", &self.batch.list_page_size.to_string());
        if let Some(token) = page_token {
            url.query_pairs_mut().append_pair("pageToken", token);
        }
        let answer = self
            .call(Method::GET, url.as_str(), None, Target::Model)
            .await?;
        parse_list(&answer.body).map_err(|e| self.tag(e))
    }

    /// Every job of the key, following `nextPageToken` to the last page.
    ///
    /// # Errors
    /// As [`batch_list_page`](Self::batch_list_page); also when a page repeats a token (an
    /// upstream that would make this loop forever).
    pub async fn batch_list(&self) -> Result<Vec<BatchJob>, Error> {
        let mut jobs = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        loop {
            let page = self.batch_list_page(token.as_deref()).await?;
            jobs.extend(page.jobs);
            match page.next_page_token {
                Some(next) if seen.insert(next.clone()) => token = Some(next),
                Some(next) => {
                    return Err(self.tag(Error::new(
                        ErrorKind::InvalidResponse,
                        format!("the batch list repeated the page token `{next}`: stopped paging"),
                    )));
                }
                None => return Ok(jobs),
            }
        }
    }

    /// The newest job named `display_name`, if any: how a client that recorded the name
    /// before creating finds its job again after a crash (create is not idempotent, so it must
    /// never create again blindly).
    ///
    /// # Errors
    /// As [`batch_list`](Self::batch_list).
    pub async fn batch_find(&self, display_name: &str) -> Result<Option<BatchJob>, Error> {
        let jobs = self.batch_list().await?;
        Ok(jobs
            .into_iter()
            .filter(|j| j.display_name == display_name)
            .max_by_key(|j| j.create_time))
    }

    /// Asks the upstream to cancel a job; requests already answered keep their results.
    ///
    /// # Errors
    /// As [`batch_get`](Self::batch_get).
    pub async fn batch_cancel(&self, name: &str) -> Result<(), Error> {
        let id = self.job_id(name)?;
        let url = format!("{}/v1beta/batches/{id}:cancel", self.base_url);
        self.call(Method::POST, &url, Some(b"{}".to_vec()), Target::Job(name))
            .await
            .map(drop)
    }

    /// Deletes a job (and with it its results): only once they are collected.
    ///
    /// # Errors
    /// As [`batch_get`](Self::batch_get).
    pub async fn batch_delete(&self, name: &str) -> Result<(), Error> {
        let id = self.job_id(name)?;
        let url = format!("{}/v1beta/batches/{id}", self.base_url);
        self.call(Method::DELETE, &url, None, Target::Job(name))
            .await
            .map(drop)
    }

    /// The results of a job, one per key that has one: read from the Operation (inline jobs)
    /// or downloaded (file jobs). A finished job without output (failed, expired, cancelled
    /// before anything ran) has none: every key is unfinished.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRequest`] when the job is still pending or running; otherwise the
    /// classified download answer.
    pub async fn batch_results(&self, job: &BatchJob) -> Result<Vec<BatchResult>, Error> {
        let mut results = Vec::new();
        self.batch_results_each(job, |r| results.push(r)).await?;
        Ok(results)
    }

    /// [`batch_results`](Self::batch_results) one result at a time, as they are read: a
    /// responses file is streamed line by line (never held whole), so a job of thousands of
    /// images can be written out as it downloads. Returns how many results were handed over.
    ///
    /// # Errors
    /// As [`batch_results`](Self::batch_results); a download cut off midway is an error after
    /// the results of its complete lines were handed over (collect those, fetch again for the
    /// rest).
    pub async fn batch_results_each(
        &self,
        job: &BatchJob,
        mut each: impl FnMut(BatchResult) + Send,
    ) -> Result<usize, Error> {
        let now = self.clock.now();
        match &job.output {
            Some(BatchOutput::Inline(items)) => {
                let results = inline_results(items, job.model_id(), now);
                let n = results.len();
                results.into_iter().for_each(each);
                Ok(n)
            }
            Some(BatchOutput::ResponsesFile(file)) => {
                self.stream_results(file, job.model_id(), &mut each).await
            }
            None if job.is_finished() => Ok(0),
            None => Err(self.tag(Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "batch job {} is {}: its results exist once it has finished",
                    job.name, job.state
                ),
            ))),
        }
    }

    /// Uploads `bytes` through the Files API's resumable protocol and returns the file's name
    /// (`files/...`): a start call (which answers the upload URL), then chunks of
    /// [`BatchOptions::upload_chunk_bytes`], the last one finalizing.
    ///
    /// The key is sent to the upload URL only when it is on the base URL's origin; another
    /// origin is refused. A failed chunk fails the upload (nothing is billed for uploads, so
    /// creating again is safe).
    ///
    /// # Errors
    /// The classified answer of any step; [`ErrorKind::InvalidResponse`] when the start answer
    /// has no upload URL or the final one names no file.
    pub async fn upload_file(
        &self,
        display_name: &str,
        mime_type: &str,
        bytes: Vec<u8>,
    ) -> Result<String, Error> {
        let start_url = format!("{}/upload/v1beta/files", self.base_url);
        let total = bytes.len();
        let start = self
            .http
            .request(Method::POST, &start_url)?
            .header("x-goog-upload-protocol", "resumable")
            .header("x-goog-upload-command", "start")
            .header("x-goog-upload-header-content-length", total.to_string())
            .header("x-goog-upload-header-content-type", mime_type)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(json!({ "file": { "display_name": display_name } }).to_string());
        let answer = self.send_checked(start, Target::Model).await?;
        let upload_url = self.upload_url(&answer.headers)?;

        let chunk =
            usize::try_from(chunk_size(self.batch.upload_chunk_bytes)).unwrap_or(usize::MAX);
        let bytes = Bytes::from(bytes);
        let mut offset = 0usize;
        loop {
            let end = offset.saturating_add(chunk).min(total);
            let last = end == total;
            let request = self
                .http
                .request(Method::POST, &upload_url)?
                .header(
                    "x-goog-upload-command",
                    if last { "upload, finalize" } else { "upload" },
                )
                .header("x-goog-upload-offset", offset.to_string())
                .header(http::header::CONTENT_LENGTH, (end - offset).to_string())
                .body(bytes.slice(offset..end));
            let answer = self.send_checked(request, Target::Model).await?;
            if last {
                let value: serde_json::Value =
                    serde_json::from_slice(&answer.body).map_err(|e| {
                        self.bad(format!("the finished upload's answer is not JSON ({e})"))
                    })?;
                return value
                    .pointer("/file/name")
                    .or_else(|| value.get("name"))
                    .and_then(serde_json::Value::as_str)
                    .filter(|n| n.starts_with("files/"))
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        self.bad("the finished upload's answer names no `files/...`".into())
                    });
            }
            offset = end;
        }
    }

    /// Downloads a file (`files/...`), e.g. a job's responses file, bounded by
    /// [`BatchOptions::download_max_bytes`].
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRequest`] for a malformed name or a missing file (404); otherwise
    /// the classified answer.
    pub async fn download_file(&self, file: &str) -> Result<Bytes, Error> {
        let id = self.file_id(file)?;
        let url = format!(
            "{}/download/v1beta/files/{id}:download?alt=media",
            self.base_url
        );
        let shell = self
            .http
            .clone()
            .with_max_response_bytes(self.batch.download_max_bytes);
        let request = shell
            .request(Method::GET, &url)?
            .header("x-goog-api-key", sensitive_header(self.key.expose())?);
        let answer = shell
            .send(request, &self.host())
            .await
            .map_err(|e| self.tag(e))?;
        self.checked(answer, Target::File(file)).map(|a| a.body)
    }

    /// Streams a responses file, handing over each complete line's result.
    async fn stream_results(
        &self,
        file: &str,
        model: &str,
        each: &mut (dyn FnMut(BatchResult) + Send),
    ) -> Result<usize, Error> {
        let id = self.file_id(file)?;
        let url = format!(
            "{}/download/v1beta/files/{id}:download?alt=media",
            self.base_url
        );
        let timeout = self.batch.download_timeout.max(self.http.timeout());
        let host = self.host();
        let mut response = self
            .http
            .request(Method::GET, &url)?
            .timeout(timeout)
            .header("x-goog-api-key", sensitive_header(self.key.expose())?)
            .send()
            .await
            .map_err(|e| self.tag(imagegate_http::transport_error(e, &host, timeout)))?;
        if !response.status().is_success() {
            // An error answer is small: read it (bounded) and classify it.
            let status = response.status();
            let headers = response.headers().clone();
            let mut body = Vec::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                body.extend_from_slice(&chunk);
                if body.len() > 1024 * 1024 {
                    break;
                }
            }
            let answer = Answer {
                status,
                headers,
                body: Bytes::from(body),
            };
            return self.checked(answer, Target::File(file)).map(|_| 0);
        }
        let line_limit = usize::try_from(self.http.max_response_bytes()).unwrap_or(usize::MAX);
        let mut pending: Vec<u8> = Vec::new();
        let (mut line_no, mut handed) = (0usize, 0usize);
        let mut hand = |line: &[u8], line_no: usize, handed: &mut usize| {
            if let Some(result) = result_from_line(line, line_no, model, self.clock.now()) {
                *handed += 1;
                each(result);
            }
        };
        loop {
            let chunk = response
                .chunk()
                .await
                .map_err(|e| self.tag(imagegate_http::transport_error(e, &host, timeout)))?;
            let Some(chunk) = chunk else { break };
            pending.extend_from_slice(&chunk);
            let mut start = 0;
            while let Some(at) = pending[start..].iter().position(|b| *b == b'\n') {
                line_no += 1;
                hand(&pending[start..start + at], line_no, &mut handed);
                start += at + 1;
            }
            pending.drain(..start);
            if pending.len() > line_limit {
                return Err(self.bad(format!(
                    "line {} of {file} is longer than the bound of {line_limit} bytes",
                    line_no + 1
                )));
            }
        }
        if !pending.is_empty() {
            hand(&pending, line_no + 1, &mut handed);
        }
        Ok(handed)
    }

    /// Sends one request with the key and JSON body, and returns the answer if it is a success.
    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
        target: Target<'_>,
    ) -> Result<Answer, Error> {
        let mut request = self.http.request(method, url)?;
        if let Some(body) = body {
            request = request
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        self.send_checked(request, target).await
    }

    async fn send_checked(
        &self,
        request: reqwest::RequestBuilder,
        target: Target<'_>,
    ) -> Result<Answer, Error> {
        let request = request.header("x-goog-api-key", sensitive_header(self.key.expose())?);
        let answer = self
            .http
            .send(request, &self.host())
            .await
            .map_err(|e| self.tag(e))?;
        self.checked(answer, target)
    }

    /// The answer if it is a success; otherwise its classified error (a 404 on a job or file
    /// says which one is gone instead of `model_not_found`).
    fn checked(&self, answer: Answer, target: Target<'_>) -> Result<Answer, Error> {
        let now = self.clock.now();
        let google_error = imagegate_google_rpc::parse_status(&answer.body).is_some();
        if answer.status.is_success() && !google_error {
            return Ok(answer);
        }
        let error = parse_error(answer.status, &answer.headers, &answer.body, now);
        let gone = answer.status == StatusCode::NOT_FOUND;
        let error = match target {
            Target::Job(name) if gone => Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "batch job {name} does not exist (deleted, never created with this key's \
                     project, or the name is wrong)"
                ),
            )
            .with_http_status(404),
            Target::File(name) if gone => Error::new(
                ErrorKind::InvalidRequest,
                format!("file {name} does not exist (files are deleted after 48 hours)"),
            )
            .with_http_status(404),
            _ => error,
        };
        Err(self.tag(error))
    }

    /// The resumable upload URL from the start answer, checked to be on the base URL's origin
    /// (the key goes with every chunk).
    fn upload_url(&self, headers: &HeaderMap) -> Result<String, Error> {
        let raw = headers
            .get("x-goog-upload-url")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.bad("the upload start answer has no x-goog-upload-url".into()))?;
        let base = reqwest::Url::parse(&self.base_url)
            .map_err(|e| self.tag(Error::config(format!("the base URL: {e}"))))?;
        let url = base
            .join(raw)
            .map_err(|_| self.bad("the upload URL the upstream answered is not a URL".into()))?;
        if url.origin() != base.origin() {
            return Err(self.tag(Error::new(
                ErrorKind::Unexpected,
                format!(
                    "the upload URL points at {}, not at {}: imagegate does not send the key \
                     to another origin",
                    url.origin().ascii_serialization(),
                    base.origin().ascii_serialization()
                ),
            )));
        }
        Ok(url.into())
    }

    fn job_id<'n>(&self, name: &'n str) -> Result<&'n str, Error> {
        let id = name.strip_prefix("batches/").unwrap_or(name);
        if is_resource_id(id) {
            Ok(id)
        } else {
            Err(self.tag(Error::new(
                ErrorKind::InvalidRequest,
                format!("`{name}` is not a batch job name (expected batches/<id>)"),
            )))
        }
    }

    fn file_id<'n>(&self, file: &'n str) -> Result<&'n str, Error> {
        let id = file.strip_prefix("files/").unwrap_or(file);
        if is_resource_id(id) {
            Ok(id)
        } else {
            Err(self.tag(Error::new(
                ErrorKind::InvalidRequest,
                format!("`{file}` is not a file name (expected files/<id>)"),
            )))
        }
    }

    fn host(&self) -> String {
        imagegate_http::base_url::host_of(&self.base_url)
            .unwrap_or_else(|| "the Gemini endpoint".to_owned())
    }

    fn bad(&self, message: String) -> Error {
        self.tag(Error::new(ErrorKind::InvalidResponse, message))
    }

    /// Names the provider (and project) on an error, as interactive errors are named.
    fn tag(&self, error: Error) -> Error {
        let error = error.with_provider(PROVIDER);
        match &self.project {
            Some(project) => error.with_project(project.clone()),
            None => error,
        }
    }
}

/// A chunk size the protocol accepts: a positive multiple of 256 KiB.
fn chunk_size(asked: u64) -> u64 {
    (asked / CHUNK_GRANULARITY).max(1) * CHUNK_GRANULARITY
}

/// Ids go into URL paths: letters, digits, `-`, `_` and `.` only.
fn is_resource_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && id != "."
        && id != ".."
}

fn prefix_key(key: &str, error: Error) -> Error {
    Error::new(
        error.kind(),
        format!("batch request `{key}`: {}", error.message()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_multiples_of_256_kib() {
        assert_eq!(chunk_size(1), CHUNK_GRANULARITY);
        assert_eq!(chunk_size(CHUNK_GRANULARITY * 3 + 5), CHUNK_GRANULARITY * 3);
        assert_eq!(chunk_size(8 * 1024 * 1024), 8 * 1024 * 1024);
    }

    #[test]
    fn ids_cannot_escape_their_path() {
        for bad in ["", "..", "a/b", "a?b", "a#b", "a b", "%2e%2e"] {
            assert!(!is_resource_id(bad), "{bad}");
        }
        assert!(is_resource_id("4m855v7q30kc7gtzcigdg9m72o87s08w33vp"));
    }
}

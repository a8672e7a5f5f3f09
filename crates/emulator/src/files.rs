//! The Files API, as far as the Batch API needs it: the resumable upload (`start`, `upload`,
//! `upload, finalize`, `query`), the download of a file's bytes (`:download?alt=media`, how a
//! job's responses file is fetched) and a file's metadata. Files live in memory, per project.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::batch::{BatchEndpoint, HoldPhase};
use crate::emulator::Shared;
use crate::gemini::{self, query_pairs};
use crate::http_util::{self, BodyProblem, GOOGLE_JSON};

/// The most bytes one upload may hold (the real limit is 2 GB; this one keeps memory bounded).
pub(crate) const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// A stored file.
#[derive(Clone, Debug)]
pub(crate) struct File {
    pub(crate) project: usize,
    pub(crate) display_name: String,
    pub(crate) mime_type: String,
    pub(crate) data: Bytes,
    pub(crate) created: Timestamp,
}

/// An upload in progress.
#[derive(Debug)]
struct Upload {
    project: usize,
    display_name: String,
    mime_type: String,
    declared: Option<u64>,
    data: Vec<u8>,
}

/// Files and uploads in progress.
#[derive(Debug, Default)]
pub(crate) struct Files {
    files: HashMap<String, File>,
    uploads: HashMap<String, Upload>,
    next: u64,
}

impl Files {
    pub(crate) fn get(&self, project: usize, id: &str) -> Option<&File> {
        self.files.get(id).filter(|f| f.project == project)
    }

    pub(crate) fn insert(&mut self, id: String, file: File) {
        self.files.insert(id, file);
    }

    pub(crate) fn remove(&mut self, id: &str) {
        self.files.remove(id);
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{:06}", self.next)
    }
}

fn bad_request(message: &str) -> Response {
    gemini::error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn file_json(id: &str, file: &File) -> Value {
    json!({
        "name": format!("files/{id}"),
        "displayName": file.display_name,
        "mimeType": file.mime_type,
        "sizeBytes": file.data.len().to_string(),
        "createTime": file.created.to_string(),
        "updateTime": file.created.to_string(),
        "state": "ACTIVE",
        "source": "UPLOADED",
    })
}

fn with_upload_status(mut response: Response, status: &'static str) -> Response {
    response
        .headers_mut()
        .insert("x-goog-upload-status", HeaderValue::from_static(status));
    response
}

/// `POST /upload/v1beta/files`: starts a resumable upload (answering `x-goog-upload-url`), or,
/// with `?upload_id=`, takes a chunk at `x-goog-upload-offset`; `finalize` stores the file.
pub(crate) async fn upload(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    uri: http::Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let query = query_pairs(query.as_deref());
    let upload_id = query
        .iter()
        .find(|(k, _)| k == "upload_id")
        .map(|(_, v)| v.clone());
    // The upload URL is its own credential (the SDKs send chunks without the key): only the
    // start is authenticated, and the session remembers the project.
    let project = match upload_id {
        Some(_) => None,
        None => match gemini::authenticate(&shared, &headers, &query, None) {
            Ok(project) => Some(project),
            Err(response) => return *response,
        },
    };
    let body = match http_util::body(body) {
        Ok(body) => body,
        Err(BodyProblem::TooLarge) => {
            return gemini::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "INVALID_ARGUMENT",
                &format!(
                    "An upload chunk may hold at most {} bytes.",
                    crate::MAX_BODY_BYTES
                ),
            );
        }
        Err(BodyProblem::Unreadable(why)) => {
            return bad_request(&format!("The upload body could not be read: {why}"));
        }
    };
    shared
        .batch
        .checkpoint(BatchEndpoint::Upload, HoldPhase::Before)
        .await;
    let command = header_text(&headers, "x-goog-upload-command")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let commands: Vec<&str> = command.split(',').map(str::trim).collect();
    let response = match (upload_id, project) {
        (Some(id), _) => chunk(&shared, &id, &headers, &commands, body),
        (None, Some(project)) => start(&shared, project, uri.path(), &headers, &commands, &body),
        (None, None) => bad_request("an upload needs a key to start"),
    };
    shared
        .batch
        .checkpoint(BatchEndpoint::Upload, HoldPhase::After)
        .await;
    response
}

fn start(
    shared: &Shared,
    project: usize,
    path: &str,
    headers: &HeaderMap,
    commands: &[&str],
    body: &[u8],
) -> Response {
    if header_text(headers, "x-goog-upload-protocol") != Some("resumable") || commands != ["start"]
    {
        return bad_request(
            "this emulator takes uploads through the resumable protocol only: \
             x-goog-upload-protocol: resumable and x-goog-upload-command: start",
        );
    }
    let declared = match header_text(headers, "x-goog-upload-header-content-length") {
        None => None,
        Some(text) => match text.parse::<u64>() {
            Ok(n) if n <= MAX_FILE_BYTES => Some(n),
            Ok(n) => {
                return gemini::error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "INVALID_ARGUMENT",
                    &format!("A file of {n} bytes is over this emulator's {MAX_FILE_BYTES}."),
                );
            }
            Err(_) => return bad_request("x-goog-upload-header-content-length is not a number"),
        },
    };
    let meta: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let display_name = meta
        .pointer("/file/display_name")
        .or_else(|| meta.pointer("/file/displayName"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mime_type = header_text(headers, "x-goog-upload-header-content-type")
        .unwrap_or("application/octet-stream")
        .to_owned();
    let id = shared.batch.with_files(|f| {
        let id = f.next_id("up");
        f.uploads.insert(
            id.clone(),
            Upload {
                project,
                display_name,
                mime_type,
                declared,
                data: Vec::new(),
            },
        );
        id
    });
    let host = header_text(headers, "host").unwrap_or("127.0.0.1");
    let url = format!("http://{host}{path}?upload_id={id}&upload_protocol=resumable");
    let mut response = http_util::json(StatusCode::OK, GOOGLE_JSON, &json!({}), true);
    if let Ok(value) = HeaderValue::from_str(&url) {
        response.headers_mut().insert("x-goog-upload-url", value);
    }
    with_upload_status(response, "active")
}

fn chunk(
    shared: &Shared,
    id: &str,
    headers: &HeaderMap,
    commands: &[&str],
    body: Bytes,
) -> Response {
    let upload = commands.contains(&"upload");
    let finalize = commands.contains(&"finalize");
    let query = commands == ["query"];
    if !(upload || finalize || query) {
        return bad_request(
            "x-goog-upload-command must be upload, finalize, `upload, finalize` or query",
        );
    }
    let offset = header_text(headers, "x-goog-upload-offset").map(str::parse::<u64>);
    let (response, stored) = shared.batch.with_files(|files| {
        let Some(state) = files.uploads.get_mut(id) else {
            let response = gemini::error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                &format!("No upload in progress with id {id}."),
            );
            return (response, false);
        };
        let received = state.data.len() as u64;
        if query {
            let mut response = http_util::json(StatusCode::OK, GOOGLE_JSON, &json!({}), true);
            if let Ok(v) = HeaderValue::from_str(&received.to_string()) {
                response.headers_mut().insert("x-goog-upload-size-received", v);
            }
            return (with_upload_status(response, "active"), false);
        }
        if upload {
            match offset {
                Some(Ok(at)) if at == received => {}
                Some(Ok(at)) => {
                    let why = format!(
                        "x-goog-upload-offset is {at}, but {received} bytes were received: send the chunk at {received}"
                    );
                    return (bad_request(&why), false);
                }
                _ => return (bad_request("x-goog-upload-offset is required with upload"), false),
            }
            if received + body.len() as u64 > state.declared.unwrap_or(MAX_FILE_BYTES).min(MAX_FILE_BYTES) {
                let why = "the upload is longer than the x-goog-upload-header-content-length it declared";
                return (bad_request(why), false);
            }
            state.data.extend_from_slice(&body);
        }
        if !finalize {
            let response = http_util::json(StatusCode::OK, GOOGLE_JSON, &json!({}), true);
            return (with_upload_status(response, "active"), false);
        }
        if let Some(declared) = state.declared
            && declared != state.data.len() as u64
        {
            let why = format!(
                "finalize after {} bytes, but the upload declared {declared}",
                state.data.len()
            );
            return (bad_request(&why), false);
        }
        let Some(done) = files.uploads.remove(id) else {
            return (bad_request("the upload vanished"), false);
        };
        let file_id = files.next_id("file");
        let file = File {
            project: done.project,
            display_name: done.display_name,
            mime_type: done.mime_type,
            data: Bytes::from(done.data),
            created: shared.clock.now(),
        };
        let answer = json!({"file": file_json(&file_id, &file)});
        files.insert(file_id, file);
        let response = http_util::json(StatusCode::OK, GOOGLE_JSON, &answer, true);
        (with_upload_status(response, "final"), true)
    });
    if stored {
        shared.batch.count(|c| c.files_uploaded += 1);
    }
    response
}

/// `GET /download/v1beta/files/{id}:download?alt=media`: the file's bytes.
pub(crate) async fn download(
    State(shared): State<Arc<Shared>>,
    Path(target): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = query_pairs(query.as_deref());
    let project = match gemini::authenticate(&shared, &headers, &query, None) {
        Ok(project) => project,
        Err(response) => return *response,
    };
    let Some(id) = target.strip_suffix(":download") else {
        return gemini::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Method not found: files/{target} (expected files/ID:download?alt=media)."),
        );
    };
    shared
        .batch
        .checkpoint(BatchEndpoint::Download, HoldPhase::Before)
        .await;
    let file = shared.batch.with_files(|f| f.get(project, id).cloned());
    let response = match file {
        Some(file) => {
            shared.batch.count(|c| c.files_downloaded += 1);
            let mut headers = HeaderMap::new();
            let mime = HeaderValue::from_str(&file.mime_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            headers.insert(header::CONTENT_TYPE, mime);
            http_util::raw(StatusCode::OK, headers, file.data)
        }
        None => gemini::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Requested entity was not found: files/{id}."),
        ),
    };
    shared
        .batch
        .checkpoint(BatchEndpoint::Download, HoldPhase::After)
        .await;
    response
}

/// `GET /v1beta/files/{id}`: the file's metadata; `GET /v1beta/files/{id}:download` its bytes
/// (the path google-genai's `files.download` takes, beside `/download/v1beta/...`).
pub(crate) async fn metadata(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if id.ends_with(":download") {
        return download(State(shared), Path(id), RawQuery(query), headers).await;
    }
    let query = query_pairs(query.as_deref());
    let project = match gemini::authenticate(&shared, &headers, &query, None) {
        Ok(project) => project,
        Err(response) => return *response,
    };
    match shared
        .batch
        .with_files(|f| f.get(project, &id).map(|file| file_json(&id, file)))
    {
        Some(value) => http_util::json(StatusCode::OK, GOOGLE_JSON, &value, true),
        None => gemini::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Requested entity was not found: files/{id}."),
        ),
    }
}

//! What both in-process providers share: checking a request against capabilities, and filling a
//! [`GenerateResponse`] as completely as a real provider does.
//!
//! Code under test (the router's accounting, the CLI's JSON, cost reports) reads every field of a
//! response, so a mock that left usage or attempts empty would hide the bugs it exists to find.

use std::time::Duration;

use imagegate_core::{
    Capabilities, Error, ErrorKind, GenerateRequest, GenerateResponse, Image, Result, ServedBy,
    TokenUsage,
};
use jiff::Timestamp;

use crate::render;

/// Output tokens one generated image counts for, as Gemini 2.x image output reports it
/// (Gemini's figure for a 1K image); a default, overridable per provider.
pub const OUTPUT_TOKENS_PER_IMAGE: u64 = 1_290;

/// Input tokens one reference image counts for: Gemini's figure for a small image.
const INPUT_TOKENS_PER_REFERENCE_IMAGE: u64 = 258;

/// Who answers and under which name, for errors and [`ServedBy`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Identity<'a> {
    pub(crate) provider: &'a str,
    pub(crate) project: Option<&'a str>,
}

impl Identity<'_> {
    /// Stamps the provider (and project, when known) on an error that lacks them.
    pub(crate) fn stamp(self, mut error: Error) -> Error {
        if error.provider().is_none() {
            error = error.with_provider(self.provider);
        }
        if let (None, Some(project)) = (error.project(), self.project) {
            error = error.with_project(project);
        }
        error
    }
}

/// Rejects what a real provider would reject before sending anything: an invalid request, a
/// request the capabilities cannot serve, or more images than one call may return.
pub(crate) fn check(
    who: Identity<'_>,
    capabilities: &Capabilities,
    request: &GenerateRequest,
) -> Result<()> {
    request.validate().map_err(|e| who.stamp(e))?;
    let misfit = capabilities.check(request).err().or_else(|| {
        (request.count > capabilities.max_images_per_call).then(|| {
            format!(
                "returns at most {} images per call, {} were asked for",
                capabilities.max_images_per_call, request.count
            )
        })
    });
    match misfit {
        Some(misfit) => Err(who.stamp(Error::new(
            ErrorKind::InvalidRequest,
            format!("{} {misfit}", who.provider),
        ))),
        None => Ok(()),
    }
}

/// The `request.count` images for `request`, from the deterministic renderer.
pub(crate) fn images(
    who: Identity<'_>,
    model: &str,
    request: &GenerateRequest,
) -> Result<Vec<Image>> {
    (0..request.count)
        .map(|index| render::render_image(model, request, index).map_err(|e| who.stamp(e)))
        .collect()
}

/// Token counts for `request` answered with `images` images: a rough prompt estimate (four
/// characters a token) plus the reference images in, `tokens_per_image` per image out.
pub(crate) fn usage(request: &GenerateRequest, images: usize, tokens_per_image: u64) -> TokenUsage {
    let prompt = request.prompt.chars().count().div_ceil(4) as u64;
    let references = request.reference_images.len() as u64 * INPUT_TOKENS_PER_REFERENCE_IMAGE;
    let output = images as u64 * tokens_per_image;
    let mut usage = TokenUsage::default();
    usage.input_tokens = prompt.max(1) + references;
    usage.output_tokens = output;
    usage.image_tokens = Some(output);
    usage
}

/// How one call went, for the response's single [`Attempt`].
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub(crate) model: String,
    pub(crate) started_at: Timestamp,
    pub(crate) elapsed: Duration,
    pub(crate) request_id: String,
    pub(crate) tokens_per_image: u64,
}

/// A response with every field a real provider fills: who served it, usage, a cost of zero, the
/// request id and one successful attempt.
pub(crate) fn respond(
    who: Identity<'_>,
    call: Call,
    request: &GenerateRequest,
    images: Vec<Image>,
) -> GenerateResponse {
    let project = who.project.map(str::to_owned);
    let served_by = ServedBy::new(who.provider, &call.model, project.clone());
    let usage = usage(request, images.len(), call.tokens_per_image);
    let mut response = GenerateResponse::new(images, served_by);
    response.usage = Some(usage);
    response.cost_usd = Some(0.0);
    response.request_id = Some(call.request_id);
    let finished = imagegate_core::clock::add(call.started_at, call.elapsed);
    response.record_call(
        who.provider,
        &call.model,
        project,
        call.started_at,
        finished,
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHO: Identity<'static> = Identity {
        provider: "mock",
        project: Some("proj-a"),
    };

    #[test]
    fn usage_counts_prompt_references_and_images() {
        let request = GenerateRequest::new("twelve chars").with_reference_image(
            imagegate_core::ReferenceImage::new(vec![1u8, 2], "image/png"),
        );
        let usage = usage(&request, 3, OUTPUT_TOKENS_PER_IMAGE);
        assert_eq!(usage.input_tokens, 3 + 258);
        assert_eq!(usage.output_tokens, 3 * 1_290);
        assert_eq!(usage.image_tokens, Some(3 * 1_290));
    }

    #[test]
    fn checks_name_the_provider_and_the_misfit() {
        let caps = Capabilities::new(2);
        let err = check(WHO, &caps, &GenerateRequest::new("x").with_count(3)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert_eq!(err.provider(), Some("mock"));
        assert_eq!(err.project(), Some("proj-a"));
        assert!(err.message().contains("at most 2 images"), "{err}");
        let err = check(WHO, &caps, &GenerateRequest::new(" ")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert_eq!(err.provider(), Some("mock"));
        assert!(check(WHO, &caps, &GenerateRequest::new("x").with_count(2)).is_ok());
    }

    #[test]
    fn stamping_keeps_what_the_error_already_names() {
        let own = Error::new(ErrorKind::Unavailable, "x")
            .with_provider("other")
            .with_project("proj-b");
        let stamped = WHO.stamp(own);
        assert_eq!(stamped.provider(), Some("other"));
        assert_eq!(stamped.project(), Some("proj-b"));
    }
}

//! Snapshots of what is sent: the generation bodies and the edit forms per model family.

mod common;

use imagegate_core::{GenerateRequest, ImageSize, ReferenceImage};
use imagegate_openai::{build_edit_form, build_request};

fn request() -> GenerateRequest {
    GenerateRequest::new(common::PROMPT)
}

#[test]
fn gpt_image_1_landscape() {
    let r = request()
        .with_aspect_ratio("16:9".parse().unwrap())
        .with_count(2);
    insta::assert_json_snapshot!(build_request(&r, "gpt-image-1"));
}

#[test]
fn dall_e_3_portrait() {
    let r = request().with_aspect_ratio("9:16".parse().unwrap());
    insta::assert_json_snapshot!(build_request(&r, "dall-e-3"));
}

#[test]
fn dall_e_2_half() {
    let r = request().with_size(ImageSize::Half);
    insta::assert_json_snapshot!(build_request(&r, "dall-e-2"));
}

#[test]
fn self_hosted_model_gets_exact_dimensions() {
    let r = request()
        .with_aspect_ratio("4:3".parse().unwrap())
        .with_size(ImageSize::OneK);
    insta::assert_json_snapshot!(build_request(&r, "stablediffusion"));
}

#[test]
fn gpt_image_1_edit_with_two_images() {
    let r = request()
        .with_reference_image(ReferenceImage::new(common::PNG.to_vec(), "image/png"))
        .with_reference_image(ReferenceImage::new(common::PNG.to_vec(), "image/png"));
    insta::assert_json_snapshot!(build_edit_form(&r, "gpt-image-1").describe());
}

#[test]
fn dall_e_2_edit() {
    let r = request().with_reference_image(ReferenceImage::new(common::PNG.to_vec(), "image/png"));
    insta::assert_json_snapshot!(build_edit_form(&r, "dall-e-2").describe());
}

#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod models;
mod request;
mod response;

pub use models::{
    DEFAULT_MODEL, Endpoint, IMAGEN_MAX_SAMPLES, capabilities_for, check_model, endpoint_for,
    imagen_takes_size, normalize_model, takes_image_size,
};
pub use request::{build_request, request_bytes};
pub use response::parse_success;

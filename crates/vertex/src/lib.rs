#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod classify;
mod credentials;
mod descriptor;
mod endpoint;
mod provider;
mod token;

pub use classify::{parse_error, parse_response};
pub use credentials::{
    AuthorizedUser, CREDENTIALS_VAR, Credentials, DEFAULT_TOKEN_URI, ServiceAccount,
};
pub use descriptor::{DESCRIPTOR, PRICES};
pub use endpoint::{DEFAULT_LOCATION, model_path, origin_for, split_project};
pub use provider::{
    BASE_URL_VAR, DEFAULT_MODEL, DEFAULT_TIMEOUT, LOCATION_VAR, PROJECT_VAR, VertexProvider,
};
pub use token::{
    CLOUD_PLATFORM_SCOPE, REFRESH_MARGIN, TokenSource, jwt_assertion, parse_token_answer,
};

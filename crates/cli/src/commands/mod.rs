//! One module per subcommand.

pub(crate) mod batch;
pub(crate) mod diagnose;
pub(crate) mod emulate;
pub(crate) mod generate;
pub(crate) mod keys;
pub(crate) mod quota;
pub(crate) mod quota_serve;
pub(crate) mod serve;
pub(crate) mod simulate;

//! The Lua scripts, one per operation, each the shared prelude (`lua/common.lua`: loading the
//! pool, Redis's clock, the day, pruning the window) followed by the operation. `redis::Script`
//! sends them by SHA (`EVALSHA`) and loads them on `NOSCRIPT`.

use redis::Script;

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/common.lua"),
            "\n",
            include_str!(concat!("lua/", $file))
        ))
    };
}

/// Every script, compiled once per store.
pub(crate) struct Scripts {
    pub(crate) configure: Script,
    pub(crate) admit: Script,
    pub(crate) settle: Script,
    pub(crate) release: Script,
    pub(crate) observe_error: Script,
    pub(crate) observe_success: Script,
    pub(crate) status: Script,
    pub(crate) suspect: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Scripts {
            configure: script!("configure.lua"),
            admit: script!("admit.lua"),
            settle: script!("settle.lua"),
            release: script!("release.lua"),
            observe_error: script!("observe_error.lua"),
            observe_success: script!("observe_success.lua"),
            status: script!("status.lua"),
            suspect: script!("suspect.lua"),
        }
    }
}

//! `imagegate keys new NAME`: a fresh client key for the gateway, printed once, with the
//! `[[server.clients]]` entry to paste (the configuration stores only the key's SHA-256).

use crate::failure::Failure;

/// Arguments of `imagegate keys`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KeysCommand {
    /// Print a new random key and the configuration entry holding its hash.
    New {
        /// The client's name: what logs, metrics and budgets will call it.
        name: String,
    },
}

/// Runs the command.
///
/// # Errors
/// [`Failure::Usage`] for an unusable name; [`Failure::Io`] when the system gives no randomness.
pub(crate) fn run(args: &Args) -> Result<(), Failure> {
    match &args.command {
        KeysCommand::New { name } => {
            if name.trim().is_empty() || name.contains(['"', '\\', '\n']) {
                return Err(Failure::usage(
                    "the client's name must be non-empty and contain no quotes, backslashes or newlines",
                ));
            }
            let key = imagegate_server::generate_key().map_err(|e| Failure::io(e.to_string()))?;
            println!("{key}");
            eprintln!(
                "imagegate keys: the key above is shown once; give it to the client `{name}`. \
                 Paste this into the configuration (it holds only the key's SHA-256):"
            );
            println!();
            println!("[[server.clients]]");
            println!("name = \"{name}\"");
            println!("key_sha256 = \"{}\"", imagegate_server::key_sha256(&key));
            println!("# routes = [\"default\"]          # optional: the routes it may use");
            println!("# priority = \"interactive\"      # or \"background\"");
            println!("# budget_usd_per_day = 5.0");
            Ok(())
        }
    }
}

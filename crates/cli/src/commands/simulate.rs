//! `imagegate simulate`: run strategies over a quota scenario in simulated time and compare
//! them, one row per strategy (docs/simulate.md).
//!
//! Needs no configuration and no key: the scenario file describes the true upstream pools and
//! the client's targets, and every upstream is simulated.

use std::path::PathBuf;

use imagegate_sim::{scenario::Scenario, simulate, strategy::StrategyName};

use crate::failure::Failure;

/// Arguments of `imagegate simulate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The scenario file (TOML; fixtures/scenarios/ holds examples).
    #[arg(value_name = "SCENARIO")]
    scenario: PathBuf,

    /// Run only this strategy; repeat for several (oracle, naive-backoff, fixed-interval,
    /// key-rotation, imagegate). Default: every strategy this build has.
    #[arg(long = "strategy", value_name = "NAME")]
    strategies: Vec<String>,

    /// Print one JSON object (`{"scenario", "jobs", "bound", "results": [...]}`) instead of a table.
    #[arg(long)]
    json: bool,
}

/// The strategies asked for, in order, each once; every built one when none is named.
fn chosen(names: &[String]) -> Result<Vec<StrategyName>, Failure> {
    if names.is_empty() {
        return Ok(StrategyName::ALL
            .into_iter()
            .filter(|s| s.is_built())
            .collect());
    }
    let mut out = Vec::new();
    for name in names {
        let strategy: StrategyName = name.parse().map_err(Failure::usage)?;
        if !strategy.is_built() {
            return Err(Failure::usage(format!(
                "strategy `{strategy}` is not built into this version of imagegate"
            )));
        }
        if !out.contains(&strategy) {
            out.push(strategy);
        }
    }
    Ok(out)
}

/// Runs the command.
///
/// # Errors
/// [`Failure::Usage`] for a bad scenario file (naming the file, the key and what was expected)
/// or an unknown strategy; [`Failure::Io`] when a simulation could not run.
pub(crate) fn run(args: &Args) -> Result<(), Failure> {
    let strategies = chosen(&args.strategies)?;
    let scenario = Scenario::load(&args.scenario).map_err(|e| Failure::usage(e.to_string()))?;
    let report = simulate(&scenario, &strategies).map_err(Failure::io)?;
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::io(format!("cannot encode the report: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_parse_in_order_once_and_unknown_ones_are_usage_errors() {
        let names = ["key-rotation", "oracle", "key-rotation"].map(str::to_owned);
        assert_eq!(
            chosen(&names).unwrap(),
            [StrategyName::KeyRotation, StrategyName::Oracle]
        );
        let err = chosen(&["fastest".to_owned()]).unwrap_err();
        assert!(matches!(&err, Failure::Usage(m) if m.contains("unknown strategy `fastest`")));
        assert!(chosen(&[]).unwrap().contains(&StrategyName::Oracle));
    }

    #[test]
    fn a_bad_scenario_is_a_usage_error_naming_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(
            &file,
            std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../fixtures/scenarios/shared-pool.toml"
            ))
            .unwrap()
            .replace("latency = \"8s..30s\"", "latency = \"soon\""),
        )
        .unwrap();
        let args = Args {
            scenario: file,
            strategies: Vec::new(),
            json: true,
        };
        let err = run(&args).unwrap_err();
        assert!(
            matches!(&err, Failure::Usage(m) if m.contains("bad.toml") && m.contains("`upstream.latency`") && m.contains("expected a duration")),
            "{err:?}"
        );
    }
}

//! The `twofold` binary: parses the command line, loads the configuration, sets the
//! process environment the PKCS#11 modules need, and runs the command.

use clap::Parser;
use std::process::ExitCode;
use twofold::cli::{self, Cli};
use twofold::config::Config;

/// Sets `SOFTHSM2_CONF` for the SoftHSM2 module, which reads it when it is initialised.
#[allow(unsafe_code)]
fn set_softhsm2_conf(path: &std::path::Path) {
    // SAFETY: called from `main` before any thread is spawned and before any PKCS#11
    // module is loaded, so nothing reads the environment concurrently.
    unsafe { std::env::set_var("SOFTHSM2_CONF", path) };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = twofold::hardening::disable_core_dumps() {
        eprintln!("twofold: warning: could not turn off core dumps: {e}");
    }
    let result = cli::config_file(&cli).and_then(|path| {
        let config = Config::load(&path)?;
        if let Some(conf) = &config.softhsm2_conf {
            set_softhsm2_conf(conf);
        }
        if matches!(cli.command, cli::Command::Serve(_)) {
            twofold::telemetry::init_logging(config.log_format, &config.log_level);
            if let Err(e) = twofold::hardening::raise_open_files_limit() {
                tracing::warn!(error = %e, "could not raise the open-files limit");
            }
        }
        cli::run(&cli, &config)
    });
    twofold::telemetry::finish_logging();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("twofold: error: {}", e.0);
            ExitCode::FAILURE
        }
    }
}

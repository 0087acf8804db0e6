//! The `twofold` binary: parses the command line, loads the configuration, sets the
//! process environment the PKCS#11 modules need, and runs the command.
#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;
use twofold::cli::{self, Cli};
use twofold::config::Config;

/// Gives the SoftHSM2 module, which reads `SOFTHSM2_CONF` from the environment when it is
/// initialised, the configuration's file. A process cannot change its own environment
/// without `unsafe`, so where the variable does not already name that file the binary
/// executes itself again (same process id, arguments and open files) with it set; the
/// second start finds it set and goes on. Returns only on failure.
fn exec_with_softhsm2_conf(path: &std::path::Path) -> cli::CliError {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new("/proc/self/exe");
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    let e = command.args(args).env("SOFTHSM2_CONF", path).exec();
    cli::CliError(format!(
        "starting again with SOFTHSM2_CONF={}: {e}",
        path.display()
    ))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = twofold::hardening::disable_core_dumps() {
        eprintln!("twofold: warning: could not turn off core dumps: {e}");
    }
    if let cli::Command::ConsolePassword { iterations } = &cli.command {
        return match cli::console_password(*iterations) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("twofold: error: {}", e.0);
                ExitCode::FAILURE
            }
        };
    }
    let result = cli::config_file(&cli).and_then(|path| {
        let config = Config::load(&path)?;
        if let Some(conf) = &config.softhsm2_conf
            && std::env::var_os("SOFTHSM2_CONF").as_deref() != Some(conf.as_os_str())
        {
            return Err(exec_with_softhsm2_conf(conf));
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

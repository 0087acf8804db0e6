//! The key-rotation commands: `twofold keys rotate` (a new KEK version in the custodians),
//! `twofold rewrap` (existing objects moved to it, [`crate::rewrap`]) and `twofold keys
//! destroy --version` (an old version retired once no object names it).

use crate::cli::{CliError, DestroyArgs, LayerArg, RewrapArgs, RotateArgs, confirm, fail};
use crate::config::Config;
use crate::envelope::aead::Layer;
use crate::keys::Custodian;
use crate::keys::named::KeyChoice;
use crate::keys::versions;
use std::io::IsTerminal;
use std::path::PathBuf;

/// The configured key a command names (its own id or an alias; the default's included).
fn key<'c>(config: &'c Config, key_id: &str) -> Result<KeyChoice<'c>, CliError> {
    config
        .named_keys
        .resolve(key_id)
        .ok_or_else(|| fail(format!("{key_id:?} is no key of this configuration")))
}

/// The layers a command acts on, with their custodians and the key's base label in each.
fn layers<'c>(
    config: &'c Config,
    key: KeyChoice<'c>,
    only: Option<LayerArg>,
) -> Vec<(Layer, &'c crate::keys::CustodianSpec, &'c str)> {
    [
        (Layer::Outer, &config.outer, key.outer_kek),
        (Layer::Inner, &config.inner, key.inner_kek),
    ]
    .into_iter()
    .filter(|(layer, ..)| match only {
        None => true,
        Some(LayerArg::Inner) => *layer == Layer::Inner,
        Some(LayerArg::Outer) => *layer == Layer::Outer,
    })
    .collect()
}

/// `twofold keys rotate ID [--layer L]`.
pub fn rotate(args: &RotateArgs, config: &Config) -> Result<(), CliError> {
    let key = key(config, &args.key_id)?;
    for (layer, spec, base) in layers(config, key, args.layer) {
        let (_, said) = Custodian::rotate(layer, spec, base)?;
        println!("{said}");
    }
    println!(
        "gateways seal new objects under {:?} with the new version within {} s \
         ([envelope] kek_version_check_secs); `twofold rewrap --bucket B` moves the existing ones",
        key.id, config.keyring.kek_version_check_secs
    );
    Ok(())
}

/// `twofold keys destroy ID --version N`: counts the objects that still name that version,
/// refuses while there are any (unless `--force`), asks for the key id again (unless
/// `--yes`), then destroys the version on each token that holds it.
pub fn destroy_version(args: &DestroyArgs, version: u32, config: &Config) -> Result<(), CliError> {
    let key = key(config, &args.key_id)?;
    if !(1..=versions::KEK_VERSION_MAX).contains(&version) {
        return Err(fail(format!(
            "--version: 1 to {}",
            versions::KEK_VERSION_MAX
        )));
    }
    let (inner, outer) = version_labels(key, version);
    let naming = crate::cli::scan(config, &args.scan.bucket)?.naming(&inner, &outer);
    println!("{}", naming_line(&naming, key, version));
    if args.dry_run {
        return Ok(());
    }
    if naming.objects > 0 && !args.force {
        return Err(fail(
            "not destroyed: objects still name this version; run `twofold rewrap` over their \
             buckets first (or --force to make them unreadable)",
        ));
    }
    if !args.yes {
        confirm(key.id)?;
    }
    let job = crate::job_runner::cli_job(
        config,
        crate::jobs::JobKind::Shred,
        crate::jobs::JobParams {
            key_id: Some(key.id.to_owned()),
            version: Some(version),
            ..Default::default()
        },
    );
    let (said, result) = destroy_on_tokens(config, key, version);
    for line in &said {
        println!("{line}");
    }
    if let Some(job) = &job {
        job.finish(match &result {
            Ok(()) => Ok(said),
            Err(e) => Err(e.to_string()),
        });
    }
    Ok(result?)
}

/// The KEK labels of version `version` of `key`: (inner, outer).
pub(crate) fn version_labels(key: KeyChoice<'_>, version: u32) -> (String, String) {
    (
        versions::label(key.inner_kek, version),
        versions::label(key.outer_kek, version),
    )
}

/// What a scan found of the objects naming version `version` of `key`, in one line.
pub(crate) fn naming_line(
    naming: &crate::inventory::Tally,
    key: KeyChoice<'_>,
    version: u32,
) -> String {
    let (inner, outer) = version_labels(key, version);
    format!(
        "{} object(s) in {} bucket(s) name version {version} of {:?} ({inner:?}, {outer:?})",
        naming.objects,
        naming.buckets.len(),
        key.id
    )
}

/// Destroys version `version` of `key` on each custodian, outer first, up to the first
/// failure: the sentence of each token done, and the failure.
pub(crate) fn destroy_on_tokens(
    config: &Config,
    key: KeyChoice<'_>,
    version: u32,
) -> (Vec<String>, Result<(), crate::keys::KeyError>) {
    let mut said = Vec::new();
    for (layer, spec, base) in layers(config, key, None) {
        match Custodian::destroy_version(layer, spec, base, version) {
            Ok(line) => said.push(line),
            Err(e) => return (said, Err(e)),
        }
    }
    (said, Ok(()))
}

/// `twofold rewrap`.
pub fn rewrap(args: &RewrapArgs, config: &Config) -> Result<(), CliError> {
    let serve = config
        .serve
        .as_ref()
        .ok_or_else(|| fail("the configuration has no [backend] to rewrap in"))?;
    let key_id = match &args.key_id {
        Some(k) => Some(key(config, k)?.id.to_owned()),
        None => None,
    };
    let state = args.state.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "twofold-rewrap.{}.state",
            args.bucket.replace(['/', '\\'], "_")
        ))
    });
    let plan = crate::rewrap::Plan {
        bucket: args.bucket.clone(),
        prefix: args.prefix.clone(),
        key_id,
        dry_run: args.dry_run,
        in_flight: usize::from(args.parallel),
        page: usize::from(args.page_size),
        state: (!args.dry_run).then_some(state.clone()),
        copy_object_max: args.copy_object_max,
    };
    if !args.dry_run {
        eprintln!(
            "progress is kept in {}: if the run is interrupted, the same command resumes it",
            state.display()
        );
    }
    let keyring = crate::cli::keyring(config)?;
    let job = crate::job_runner::cli_job(
        config,
        crate::jobs::JobKind::Rewrap,
        crate::jobs::JobParams {
            bucket: Some(plan.bucket.clone()),
            key_id: plan.key_id.clone(),
            dry_run: plan.dry_run,
            version: None,
        },
    );
    let tty = std::io::stderr().is_terminal();
    let progress = |s: &crate::rewrap::Summary| {
        if tty {
            eprint!("\r{}", s.progress_line(args.dry_run));
        } else if s.seen.is_multiple_of(1000) {
            eprintln!("{}", s.progress_line(args.dry_run));
        }
        if let Some(job) = &job {
            job.progress(&s.counters(), s.progress_line(args.dry_run));
        }
    };
    let paused = || job.as_ref().is_some_and(|j| j.paused());
    let hooks = crate::rewrap::Hooks {
        progress: &progress,
        paused: &paused,
    };
    let result = crate::rewrap::run(serve, &keyring, &plan, &hooks);
    if let Some(job) = &job {
        job.finish(match &result {
            Ok(summary) => Ok(summary.lines(args.dry_run)),
            Err(e) => Err(e.clone()),
        });
    }
    let summary = result.map_err(fail)?;
    if tty {
        eprintln!();
    }
    for line in summary.lines(args.dry_run) {
        println!("{line}");
    }
    match summary.failed {
        0 => Ok(()),
        n => Err(fail(format!(
            "{n} object(s) failed; run the command again to retry them"
        ))),
    }
}

//! `syncscope ingest`.

use std::time::Duration;

use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use tokio_util::sync::CancellationToken;

use super::Outcome;
use crate::cli::IngestArgs;
use crate::config::Config;
use crate::ingest::{self, IngestOptions};
use crate::model::LogZone;

pub fn run(args: IngestArgs, config: &Config, db: std::path::PathBuf) -> Result<Outcome> {
    let texts = if args.sources.is_empty() {
        config.sources.clone()
    } else {
        args.sources.clone()
    };
    if texts.is_empty() {
        bail!("no sources: give --source KIND:WHERE, or list `sources` in the config file");
    }
    let opts = options(&args, config)?;
    let specs = crate::sources::registry::parse_configured(&texts, &opts.kinds)?;
    // Check every source before writing anything.
    for s in &specs {
        s.preflight(args.once)?;
    }
    let sources = crate::sources::plan(&specs, &opts)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?;
    let report = runtime.block_on(async move {
        let cancel = CancellationToken::new();
        spawn_signal_handler(cancel.clone())?;
        match &args.forward {
            Some(url) => {
                crate::sources::nats::forward::run_from_cli(
                    url,
                    args.forward_state.clone(),
                    &config.settings().get::<crate::sources::nats::NatsConfig>(),
                    specs,
                    opts,
                    cancel,
                )
                .await
            }
            None => ingest::run(db, sources, opts, cancel).await,
        }
    })?;
    if !args.quiet {
        let rejected = print_report(&report);
        if rejected > 0 {
            eprintln!("{rejected} input(s) could not be read: see `syncscope rejects`");
        }
    }
    Ok(Outcome::Ok)
}

/// Prints what each source stored, on stderr; returns how many lines were rejected in all.
pub fn print_report(report: &crate::ingest::IngestReport) -> u64 {
    let mut rejected = 0;
    for (source, out) in report {
        rejected += out.rejected;
        eprintln!(
            "{}: {} new, {} already stored, {} rejected",
            crate::sanitize::one_line(source),
            out.inserted,
            out.duplicates,
            out.rejected
        );
    }
    rejected
}

/// The ingest options: the command line, else the config, else the defaults.
pub fn options(args: &IngestArgs, config: &Config) -> Result<IngestOptions> {
    Ok(IngestOptions {
        once: args.once,
        retention_days: args
            .retention_days
            .or(config.ingest.retention_days)
            .unwrap_or(7),
        retention_secs: args.retention,
        poll_interval: Duration::from_millis(
            args.poll_interval_ms
                .or(config.ingest.poll_interval_ms)
                .unwrap_or(500)
                .max(10),
        ),
        scrape_interval: Duration::from_millis(
            args.scrape_interval_ms
                .or(config.ingest.scrape_interval_ms)
                .unwrap_or(5000)
                .max(100),
        ),
        batch_size: args.batch_size.or(config.ingest.batch_size).unwrap_or(5000),
        log_status: !args.quiet,
        kinds: config.settings().clone().with_log_zone(
            match args
                .log_timezone
                .as_deref()
                .or(config.ingest.log_timezone.as_deref())
            {
                Some(z) => LogZone::parse(z).map_err(|e| eyre!("--log-timezone: {e}"))?,
                None => LogZone::Local,
            },
        ),
    })
}

/// SIGINT and SIGTERM stop following: sources flush, the writer commits, exit 0.
pub(crate) fn spawn_signal_handler(cancel: CancellationToken) -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).wrap_err("cannot listen for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).wrap_err("cannot listen for SIGINT")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
                _ = cancel.cancelled() => return,
            }
            cancel.cancel();
        });
    }
    #[cfg(not(unix))]
    {
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            cancel.cancel();
        });
    }
    Ok(())
}

//! `syncscope serve`: `/metrics` for Prometheus from the store (see `crate::serve`).

use color_eyre::eyre::{eyre, Result};

use super::Outcome;
use crate::cli::ServeArgs;
use crate::config::Config;
use crate::model::LogZone;

const DEFAULT_STUCK_SECS: i64 = 3600;

pub fn run(args: ServeArgs, config: &Config, db: std::path::PathBuf) -> Result<Outcome> {
    // CI nights are counted where `failures` counts them: the `[gitlab]` timezone, else local.
    let gitlab = config
        .settings()
        .get::<crate::sources::gitlab::config::GitlabConfig>();
    let zone = match gitlab.timezone.as_deref() {
        Some(z) => LogZone::parse(z).map_err(|e| eyre!("[gitlab] timezone: {e}"))?,
        None => LogZone::Local,
    };
    let opts = crate::serve::Options {
        db,
        stuck_after: args.stuck_after.unwrap_or(DEFAULT_STUCK_SECS),
        today: Box::new(move || {
            Ok(crate::model::ci::local_time(crate::model::Timestamp::now(), &zone).date())
        }),
    };
    crate::serve::run(&args.listen, opts, |addr| {
        // Tests and scripts read the bound address from here (a port 0 asks for a free one).
        eprintln!("syncscope serve: listening on http://{addr}/metrics");
    })?;
    Ok(Outcome::Ok)
}

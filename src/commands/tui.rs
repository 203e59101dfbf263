//! `syncscope` without a subcommand: the terminal UI on the store, with the config's sources
//! ingested in the background (or read-only with `--no-ingest`).

use color_eyre::eyre::{bail, Result};

use super::Outcome;
use crate::cli::IngestArgs;
use crate::config::Config;
use crate::tui::{self, keymap::Keymap, TuiOptions};

/// The keymap with the config's `[keys]` applied.
pub fn keymap(config: &Config) -> Result<Keymap> {
    let overrides = config
        .keys
        .iter()
        .map(|(k, v)| (k.clone(), v.keys()))
        .collect();
    Keymap::new(&overrides)
}

pub fn run(
    no_ingest: bool,
    theme: Option<&str>,
    config: &Config,
    db: std::path::PathBuf,
) -> Result<Outcome> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!("the UI needs a terminal; for scripts use the subcommands (syncscope --help)");
    }
    let theme_name = theme.or(config.tui.theme.as_deref());
    if let Some(t) = theme_name {
        if tui::theme::ThemeName::parse(t).is_none() {
            bail!("unknown theme {t:?}: dark, light or mono");
        }
    }
    let ingest = if no_ingest || config.sources.is_empty() {
        None
    } else {
        let specs = crate::sources::registry::parse_configured(&config.sources, config.settings())?;
        for s in &specs {
            s.preflight(false)?;
        }
        let mut opts = super::ingest::options(&IngestArgs::default(), config)?;
        // The UI owns the screen: source health goes to the store and the status bar.
        opts.log_status = false;
        Some((specs, opts))
    };
    if ingest.is_none() && !db.exists() {
        bail!(
            "no store at {} and no sources in the config: run `syncscope ingest --source ...`, give --db, or try `syncscope demo`",
            db.display()
        );
    }
    tui::run(TuiOptions {
        db,
        ingest,
        theme: tui::theme_from_env(theme_name),
        keymap: keymap(config)?,
        label: None,
        duration: None,
    })?;
    Ok(Outcome::Ok)
}

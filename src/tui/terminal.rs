//! Raw mode and the alternate screen, and getting out of them on every path: quit, error,
//! panic (the report is printed after the terminal is back), SIGTERM and SIGHUP.

use std::io::{self, Stdout, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use color_eyre::eyre::{Result, WrapErr};
use crossterm::terminal::{
    self, BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen,
    LeaveAlternateScreen,
};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;

use super::app::AppState;
use super::keymap::Keymap;
use super::view::view;

static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Puts the terminal back as it was. Safe to call twice.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        let _ = execute!(
            out,
            EndSynchronizedUpdate,
            LeaveAlternateScreen,
            cursor::Show
        );
        let _ = terminal::disable_raw_mode();
        let _ = out.flush();
    }
}

/// The UI's terminal: restored when dropped.
pub struct Terminal {
    inner: ratatui::Terminal<CrosstermBackend<Stdout>>,
}

impl Terminal {
    pub fn enter() -> Result<Terminal> {
        install_panic_hook();
        terminal::enable_raw_mode()
            .wrap_err("cannot put the terminal in raw mode (is this a terminal?)")?;
        ACTIVE.store(true, Ordering::SeqCst);
        let mut out = io::stdout();
        if let Err(e) = execute!(out, EnterAlternateScreen, cursor::Hide) {
            restore();
            return Err(e).wrap_err("cannot switch to the alternate screen");
        }
        let inner = match ratatui::Terminal::new(CrosstermBackend::new(io::stdout())) {
            Ok(t) => t,
            Err(e) => {
                restore();
                return Err(e).wrap_err("cannot set up the terminal");
            }
        };
        Ok(Terminal { inner })
    }

    pub fn size(&self) -> (u16, u16) {
        self.inner
            .size()
            .map(|s| (s.width, s.height))
            .unwrap_or((80, 24))
    }

    /// Draws a frame inside a synchronized update, so the terminal never shows half of one.
    pub fn draw(&mut self, state: &AppState, keymap: &Keymap) -> Result<()> {
        let _ = execute!(io::stdout(), BeginSynchronizedUpdate);
        let r = self.inner.draw(|f| view(f, state, keymap));
        let _ = execute!(io::stdout(), EndSynchronizedUpdate);
        r.map(|_| ()).wrap_err("cannot draw on the terminal")
    }

    pub fn clear(&mut self) -> Result<()> {
        self.inner.clear().wrap_err("cannot clear the terminal")
    }

    /// Copies through OSC 52: the terminal (the laptop's, over SSH) puts it on its clipboard.
    pub fn copy(&mut self, text: &str) {
        let _ = execute!(
            io::stdout(),
            crossterm::clipboard::CopyToClipboard::to_clipboard_from(text)
        );
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        restore();
    }
}

fn install_panic_hook() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}

/// SIGTERM, SIGHUP and SIGINT end the UI (Ctrl-C in raw mode arrives as a key instead).
pub struct Signals {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).wrap_err("cannot handle SIGTERM")?,
            hup: signal(SignalKind::hangup()).wrap_err("cannot handle SIGHUP")?,
            int: signal(SignalKind::interrupt()).wrap_err("cannot handle SIGINT")?,
        })
    }

    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

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
    inner: ratatui::Terminal<CrosstermBackend<ColourWriter<Stdout>>>,
}

/// Whether the terminal announces more than the 16 ANSI colours: `COLORTERM` set (truecolor,
/// 24bit) or a `TERM` with `256color` in it. Otherwise (`screen`, `xterm`, `linux`, `vt100`)
/// only the 16 are sent.
pub fn announces_256_colours(term: Option<&str>, colorterm: Option<&str>) -> bool {
    colorterm.is_some_and(|c| !c.is_empty()) || term.is_some_and(|t| t.contains("256color"))
}

/// Stdout for the UI. crossterm writes even the 16 ANSI colours as 256-colour codes
/// (`ESC[38;5;9m`), which a 16-colour terminal (TERM=screen, the Linux console) does not
/// understand; unless the terminal announces 256 colours, each frame is rewritten at flush
/// to the classic codes (`ESC[91m`).
pub struct ColourWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    rewrite: bool,
}

impl<W: Write> ColourWriter<W> {
    pub fn new(out: W, rewrite: bool) -> Self {
        ColourWriter {
            out,
            buf: Vec::new(),
            rewrite,
        }
    }
}

impl<W: Write> Write for ColourWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.rewrite {
            self.buf.extend_from_slice(data);
            Ok(data.len())
        } else {
            self.out.write(data)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let frame = to_16_colours(&self.buf);
            self.buf.clear();
            self.out.write_all(&frame)?;
        }
        self.out.flush()
    }
}

/// `ESC[38;5;Nm` / `ESC[48;5;Nm` with N < 16 → `ESC[3Xm` / `ESC[9Xm` (`4X` / `10X` for the
/// background); every other byte as it was.
pub fn to_16_colours(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i] == 0x1b && data.get(i + 1) == Some(&b'[') {
            // The parameters up to the final byte.
            let start = i + 2;
            let mut end = start;
            while end < data.len() && (data[end].is_ascii_digit() || data[end] == b';') {
                end += 1;
            }
            if data.get(end) == Some(&b'm') {
                let params = std::str::from_utf8(&data[start..end]).unwrap_or("");
                let parts: Vec<&str> = params.split(';').collect();
                let mut mapped: Vec<String> = Vec::with_capacity(parts.len());
                let mut j = 0;
                while j < parts.len() {
                    let colour = (parts[j] == "38" || parts[j] == "48")
                        && parts.get(j + 1) == Some(&"5")
                        && parts
                            .get(j + 2)
                            .and_then(|n| n.parse::<u8>().ok())
                            .is_some_and(|n| n < 16);
                    if colour {
                        let n: u8 = parts[j + 2].parse().unwrap_or(0);
                        let bg = parts[j] == "48";
                        let code = match (n < 8, bg) {
                            (true, false) => 30 + n as u16,
                            (false, false) => 90 + (n - 8) as u16,
                            (true, true) => 40 + n as u16,
                            (false, true) => 100 + (n - 8) as u16,
                        };
                        mapped.push(code.to_string());
                        j += 3;
                    } else {
                        mapped.push(parts[j].to_string());
                        j += 1;
                    }
                }
                out.extend_from_slice(b"\x1b[");
                out.extend_from_slice(mapped.join(";").as_bytes());
                out.push(b'm');
                i = end + 1;
                continue;
            }
        }
        out.push(data[i]);
        i += 1;
    }
    out
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
        let rich = announces_256_colours(
            std::env::var("TERM").ok().as_deref(),
            std::env::var("COLORTERM").ok().as_deref(),
        );
        let out = ColourWriter::new(io::stdout(), !rich);
        let inner = match ratatui::Terminal::new(CrosstermBackend::new(out)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_colour_terminals_get_the_classic_codes() {
        assert_eq!(
            to_16_colours(
                b"a\x1b[38;5;9mR\x1b[48;5;4mB\x1b[38;5;8m\x1b[1;38;5;14mC\x1b[38;5;200m\x1b[0m"
            ),
            b"a\x1b[91mR\x1b[44mB\x1b[90m\x1b[1;96mC\x1b[38;5;200m\x1b[0m".to_vec()
        );
        // Other sequences and text pass unchanged.
        assert_eq!(
            to_16_colours(b"\x1b[2J\x1b[?2026h x;5;9m"),
            b"\x1b[2J\x1b[?2026h x;5;9m".to_vec()
        );
        assert!(announces_256_colours(Some("xterm-256color"), None));
        assert!(announces_256_colours(Some("screen"), Some("truecolor")));
        assert!(!announces_256_colours(Some("screen"), None));
        assert!(!announces_256_colours(Some("xterm"), Some("")));
    }

    #[test]
    fn a_frame_is_rewritten_at_flush_only_when_asked() {
        let mut w = ColourWriter::new(Vec::new(), true);
        w.write_all(b"\x1b[38;").unwrap();
        w.write_all(b"5;1mx").unwrap();
        w.flush().unwrap();
        assert_eq!(w.out, b"\x1b[31mx");
        let mut keep = ColourWriter::new(Vec::new(), false);
        keep.write_all(b"\x1b[38;5;1m").unwrap();
        keep.flush().unwrap();
        assert_eq!(keep.out, b"\x1b[38;5;1m");
    }
}

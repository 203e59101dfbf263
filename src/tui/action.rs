//! What the user (through the keymap) and the query worker ask of the app.

use super::worker::Loaded;
use super::Pane;

/// An intent. Keys become actions in `keymap`; the query worker's results arrive as `Loaded`.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `q`: leave the top view (quits from a pane, pops a drill-down otherwise).
    Quit,
    /// `Ctrl-C`: quit from anywhere.
    ForceQuit,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    /// Shift long rows' text left / right (what a cut column hides).
    ScrollLeft,
    ScrollRight,
    /// Drill down into the selected row.
    Enter,
    /// Pop a view, close an overlay, or clear the filter.
    Back,
    NextPane,
    PrevPane,
    GoPane(Pane),
    /// Open the live text filter.
    StartFilter,
    /// Open the find field: matches are highlighted in place and n/N jump; nothing is hidden.
    StartFind,
    /// Open the `:` command line.
    StartCommand,
    ShowHelp,
    NextMatch,
    PrevMatch,
    ErrorsOnly,
    WarningsUp,
    AllSeverities,
    CycleSource,
    /// The selected event's correlation id across all sources.
    Correlation,
    TogglePause,
    /// Shift + a column's letter: sort the table by it (again: reverse).
    SortBy(char),
    Copy,
    /// Ctrl-L: repaint everything.
    Redraw,
    /// A key typed into the active text field (filter or command line).
    Input(InputKey),
    /// Enter in a text field.
    Submit,
    /// The terminal changed size.
    Resize(u16, u16),
    /// A message for the message line (the result of something the loop did).
    Notice(String),
    /// A clock tick with the time (Unix nanoseconds): flash messages expire, ages move.
    Tick(i64),
    /// New data for the screen.
    Loaded(Box<Loaded>),
    /// The in-process ingest stopped with this error (e.g. the disk is full): the UI stays,
    /// read-only, and says so.
    IngestStopped(String),
}

/// A key for a text field, kept free of terminal types so `update` stays testable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKey {
    Char(char),
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
    /// Ctrl-W / Alt-Backspace.
    DeleteWord,
    /// Ctrl-U.
    Clear,
}

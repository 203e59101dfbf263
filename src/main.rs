//! syncscope: a terminal monitor for replication and sync health. All behaviour is in the
//! library (`src/lib.rs`); this is only the entry point.

fn main() -> std::process::ExitCode {
    syncscope::main_entry()
}

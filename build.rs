//! One link flag, only where it pays: in an optimised build that keeps debug info (the
//! `release` profile's line tables, and `bench`, which inherits it), the linker compresses the
//! DWARF sections (zlib, `SHF_COMPRESSED`). Most of the release binary is those sections, the
//! standard library's and SQLite's included; the standard library's backtrace reads compressed
//! sections, so a panic still names file:line. Debug builds (full debug info, linked dozens of
//! times by the tests) and `dist` (no debug info, stripped) are left alone.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let optimised = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let debug_info = std::env::var("DEBUG").is_ok_and(|d| d != "false" && d != "0");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if optimised && debug_info && linux {
        println!("cargo:rustc-link-arg=-Wl,--compress-debug-sections=zlib");
    }
}

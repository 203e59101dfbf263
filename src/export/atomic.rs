//! Output to stdout, or to a file written atomically (temporary file in the same folder, fsync,
//! rename), so a reader never sees half a file and a failed run leaves the old file intact.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use color_eyre::eyre::{Result, WrapErr};

/// Where command output goes.
#[derive(Debug, Clone)]
pub enum Output {
    Stdout,
    File(PathBuf),
}

/// Runs `body` against the output. For a file, the result replaces it only if `body` succeeds.
pub fn write_output<T>(out: &Output, body: impl FnOnce(&mut dyn Write) -> Result<T>) -> Result<T> {
    match out {
        Output::Stdout => {
            let stdout = io::stdout();
            let mut w = BufWriter::with_capacity(64 * 1024, stdout.lock());
            let r = body(&mut w)?;
            w.flush().wrap_err("cannot write to standard output")?;
            Ok(r)
        }
        Output::File(path) => write_file_atomically(path, body),
    }
}

/// Like [`write_output`], for output that grows until interrupted (`--follow`): a file is
/// created (or truncated) and written as it goes, since a growing file cannot be swapped in.
pub fn write_stream<T>(out: &Output, body: impl FnOnce(&mut dyn Write) -> Result<T>) -> Result<T> {
    match out {
        Output::Stdout => write_output(out, body),
        Output::File(path) => {
            let f =
                File::create(path).wrap_err_with(|| format!("cannot write {}", path.display()))?;
            let mut w = BufWriter::with_capacity(64 * 1024, f);
            let r = body(&mut w)?;
            w.flush()
                .wrap_err_with(|| format!("cannot write {}", path.display()))?;
            Ok(r)
        }
    }
}

fn write_file_atomically<T>(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> Result<T>,
) -> Result<T> {
    if path.is_dir() {
        color_eyre::eyre::bail!("{}: is a directory", path.display());
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let f = File::create(&tmp).wrap_err_with(|| format!("cannot write {}", path.display()))?;
        let mut w = BufWriter::with_capacity(256 * 1024, f);
        let r = body(&mut w)?;
        let f = w
            .into_inner()
            .map_err(|e| e.into_error())
            .wrap_err_with(|| format!("cannot write {}", path.display()))?;
        f.sync_all()
            .wrap_err_with(|| format!("cannot write {}", path.display()))?;
        std::fs::rename(&tmp, path)
            .wrap_err_with(|| format!("cannot move the output into place at {}", path.display()))?;
        Ok(r)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_body_leaves_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        std::fs::write(&p, "old").unwrap();
        let r: Result<()> = write_output(&Output::File(p.clone()), |w| {
            w.write_all(b"half")?;
            color_eyre::eyre::bail!("boom")
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        write_output(&Output::File(p.clone()), |w| Ok(w.write_all(b"new")?)).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
    }
}

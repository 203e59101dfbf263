//! The forwarder's checkpoints: `{"version":1,"target":"nats://…/STREAM","checkpoints":{SOURCE: CHECKPOINT}}`,
//! each saved only once JetStream acknowledged every message before it; written atomically
//! (temporary file, fsync, rename).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use color_eyre::eyre::{bail, Result, WrapErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
struct StateFile {
    version: u32,
    target: String,
    checkpoints: BTreeMap<String, String>,
}

#[derive(Debug)]
pub struct ForwardState {
    path: PathBuf,
    file: StateFile,
    dirty: bool,
}

/// The state file used when `--forward-state` is not given: in the XDG state (else data)
/// directory, one per target.
pub fn default_path(target: &str) -> PathBuf {
    let name = format!(
        "forward-{:016x}.json",
        xxhash_rust::xxh3::xxh3_64(target.as_bytes())
    );
    match directories::ProjectDirs::from("", "", "syncscope") {
        Some(d) => d.state_dir().unwrap_or_else(|| d.data_dir()).join(name),
        None => PathBuf::from(name),
    }
}

impl ForwardState {
    /// Reads `path` (a missing file is a fresh start). A file kept for another target is
    /// refused: its checkpoints say nothing about what this stream holds.
    pub fn load(path: &Path, target: &str) -> Result<ForwardState> {
        let file = match std::fs::read(path) {
            Ok(bytes) => {
                let f: StateFile = serde_json::from_slice(&bytes).wrap_err_with(|| {
                    format!(
                        "forward state {}: not a syncscope forward state file",
                        path.display()
                    )
                })?;
                if f.target != target {
                    bail!(
                        "forward state {} belongs to {}, not {target}: give another --forward-state",
                        path.display(),
                        crate::sanitize::one_line(&f.target)
                    );
                }
                f
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateFile {
                version: 1,
                target: target.to_string(),
                checkpoints: BTreeMap::new(),
            },
            Err(e) => {
                return Err(e)
                    .wrap_err_with(|| format!("cannot read forward state {}", path.display()))
            }
        };
        Ok(ForwardState {
            path: path.to_path_buf(),
            file,
            dirty: false,
        })
    }

    pub fn checkpoint(&self, source: &str) -> Option<String> {
        self.file.checkpoints.get(source).cloned()
    }

    /// Records a checkpoint whose messages were all acknowledged (saved by [`Self::save`]).
    pub fn set(&mut self, source: &str, checkpoint: String) {
        self.file.checkpoints.insert(source.to_string(), checkpoint);
        self.dirty = true;
    }

    /// Writes the file if anything changed: temporary file, fsync, rename, fsync of the folder.
    pub fn save(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir)
            .wrap_err_with(|| format!("cannot create {}", dir.display()))?;
        let bytes = serde_json::to_vec(&self.file).wrap_err("cannot encode the forward state")?;
        let tmp = self.path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)
                .wrap_err_with(|| format!("cannot write {}", tmp.display()))?;
            f.write_all(&bytes)
                .and_then(|()| f.sync_all())
                .wrap_err_with(|| format!("cannot write {}", tmp.display()))?;
        }
        std::fs::rename(&tmp, &self.path)
            .wrap_err_with(|| format!("cannot replace {}", self.path.display()))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_resumes_and_refuses_another_target() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        let mut s = ForwardState::load(&p, "nats://h:1/A").unwrap();
        assert_eq!(s.checkpoint("jsonl:/x"), None);
        s.set("jsonl:/x", "{\"offset\":10}".into());
        s.save().unwrap();
        let s = ForwardState::load(&p, "nats://h:1/A").unwrap();
        assert_eq!(s.checkpoint("jsonl:/x").as_deref(), Some("{\"offset\":10}"));
        let e = ForwardState::load(&p, "nats://h:1/B").unwrap_err();
        assert!(e.to_string().contains("belongs to"), "{e}");
        std::fs::write(&p, "garbage").unwrap();
        assert!(ForwardState::load(&p, "nats://h:1/A").is_err());
    }
}

//! The folder contract: where inputs come from and where everything goes, resolved against
//! `BASE_PATH` and created at start; and what counts as an input in a watched folder.

use crate::config::Config;
use crate::disk::FileStamp;
use crate::error::StartError;
use crate::job::InputKind;
use crate::naming;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub(crate) struct Folders {
    pub products: PathBuf,
    pub backgrounds: PathBuf,
    pub output: PathBuf,
    pub rejected: PathBuf,
    pub state: PathBuf,
}

impl Folders {
    pub(crate) fn from_config(config: &Config) -> Folders {
        Folders {
            products: config.resolve(&config.upload_path),
            backgrounds: config.resolve(&config.background_path),
            output: config.resolve(&config.output_path),
            rejected: config.resolve(&config.rejected_path),
            state: config.resolve(&config.state_path),
        }
    }

    /// Creates every missing folder; the error names the folder that could not be made.
    pub(crate) fn create_all(&self) -> Result<(), StartError> {
        for dir in [&self.products, &self.backgrounds, &self.output, &self.rejected, &self.state] {
            std::fs::create_dir_all(dir).map_err(|e| {
                StartError::new(format!("cannot create folder {}", dir.display()))
                    .because(e)
                    .advice("Check BASE_PATH and the folder permissions")
            })?;
        }
        Ok(())
    }

    /// Creates the state folder alone: with the catalog in a bucket, the other folders are
    /// key prefixes there.
    pub(crate) fn create_state(&self) -> Result<(), StartError> {
        std::fs::create_dir_all(&self.state).map_err(|e| {
            StartError::new(format!("cannot create folder {}", self.state.display()))
                .because(e)
                .advice("Check BASE_PATH (or STATE_PATH) and the folder permissions")
        })
    }

    pub(crate) fn input_dir(&self, kind: InputKind) -> &Path {
        match kind {
            InputKind::Product => &self.products,
            InputKind::Background => &self.backgrounds,
        }
    }

    /// The kind of input a folder holds, when it is one of the watched folders.
    pub(crate) fn kind_of_dir(&self, dir: &Path) -> Option<InputKind> {
        InputKind::ALL.into_iter().find(|kind| self.input_dir(*kind) == dir)
    }

    /// The inputs in a watched folder right now, sorted by name, with their stamps: regular
    /// files and special files (which are rejected visibly), never folders, hidden or temporary
    /// names.
    pub(crate) fn inputs(&self, kind: InputKind) -> Vec<(String, FileStamp)> {
        files_in(self.input_dir(kind))
    }

    /// Whether a folder can be written right now (a real write, not a permission guess).
    ///
    /// The probe file's name is new each time (a random part, not only the process id: in
    /// containers every node is PID 1 on the shared volume) and created exclusively, so a probe
    /// never touches another process's probe.
    pub(crate) fn writable(dir: &Path) -> io::Result<()> {
        use std::hash::{BuildHasher, Hasher};
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let name = format!("thumbgen-probe-{random:016x}");
        let probe = crate::write::temp_path(dir, &name, crate::write::TEMP_SUFFIX);
        std::fs::OpenOptions::new().write(true).create_new(true).open(&probe)?;
        std::fs::remove_file(&probe)
    }
}

/// The entries of `dir` with names thumbgen reads or writes, sorted by name, with their stamps:
/// regular files and special files, never folders, hidden or temporary names.
pub(crate) fn files_in(dir: &Path) -> Vec<(String, FileStamp)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, FileStamp)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            if !naming::is_input_name(&name) {
                return None;
            }
            let meta = std::fs::symlink_metadata(entry.path()).ok()?;
            (!meta.is_dir()).then(|| (name, FileStamp::of(&meta)))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_probes_of_processes_sharing_a_folder_never_touch_each_other() {
        let dir = tempfile::tempdir().unwrap();
        // What the old probe of another container (also PID 1 there) left: never deleted by ours.
        let other = dir.path().join(format!(".thumbgen-probe-{}{}", std::process::id(), crate::write::TEMP_SUFFIX));
        std::fs::write(&other, b"").unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        Folders::writable(dir.path()).expect("the folder is writable");
                    }
                });
            }
        });
        assert!(other.exists(), "another process's probe was left alone");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 1, "no probe of ours left behind: {left:?}");
    }

    #[test]
    fn only_plain_names_directly_in_the_folder_are_inputs() {
        let base = tempfile::tempdir().unwrap();
        let config = Config { base_path: base.path().to_owned(), ..Config::default() };
        let folders = Folders::from_config(&config);
        folders.create_all().unwrap();
        for name in ["b.jpg", "a.png", ".hidden.jpg", "c.jpg.part"] {
            std::fs::write(folders.products.join(name), b"x").unwrap();
        }
        std::fs::create_dir(folders.products.join("folder.jpg")).unwrap();
        let names: Vec<String> = folders.inputs(InputKind::Product).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a.png", "b.jpg"]);
        assert_eq!(folders.kind_of_dir(&folders.backgrounds), Some(InputKind::Background));
        assert_eq!(folders.kind_of_dir(&folders.output), None);
    }
}

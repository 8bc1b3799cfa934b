//! The folder contract: where inputs come from and where everything goes, resolved against
//! `BASE_PATH` and created at start.

use crate::config::Config;
use crate::state::Folder;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Folders {
    pub products: PathBuf,
    pub backgrounds: PathBuf,
    pub output: PathBuf,
    pub rejected: PathBuf,
    pub logs: PathBuf,
    pub state: PathBuf,
}

impl Folders {
    pub fn from_config(config: &Config) -> Folders {
        Folders {
            products: config.resolve(&config.upload_path),
            backgrounds: config.resolve(&config.background_path),
            output: config.resolve(&config.output_path),
            rejected: config.resolve(&config.rejected_path),
            logs: config.resolve(&config.log_path),
            state: config.resolve(&config.state_path),
        }
    }

    /// Creates every missing folder; the error names the folder that could not be made.
    pub fn create_all(&self) -> Result<(), String> {
        for dir in [&self.products, &self.backgrounds, &self.output, &self.rejected, &self.state] {
            std::fs::create_dir_all(dir).map_err(|e| {
                format!("cannot create folder {}: {e}. Check BASE_PATH and the folder permissions.", dir.display())
            })?;
        }
        Ok(())
    }

    pub fn input_dir(&self, folder: Folder) -> &Path {
        match folder {
            Folder::Product => &self.products,
            Folder::Background => &self.backgrounds,
        }
    }

    /// Whether a folder can be written right now (a real write, not a permission guess).
    pub fn writable(dir: &Path) -> io::Result<()> {
        let probe = dir.join(format!(".thumbgen-probe-{}{}", std::process::id(), crate::write::TEMP_SUFFIX));
        std::fs::write(&probe, b"")?;
        std::fs::remove_file(&probe)
    }
}

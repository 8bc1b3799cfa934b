//! The catalog in folders (the default): inputs opened without following links or blocking on
//! special files, outputs written under a temporary name and renamed, rejections moved with their
//! note (see [`crate::write`], [`crate::validate`], [`crate::reject`]).

use super::{Catalog, RejectFailure};
use crate::disk::{self, FileStamp};
use crate::error::{JobError, Rejection, Transient};
use crate::folders::Folders;
use crate::job::InputKind;
use crate::validate::{self, InputFile, Limits};
use crate::write::{sync_dir, write_atomic};
use std::io;

pub(crate) struct LocalCatalog {
    folders: Folders,
}

impl LocalCatalog {
    pub(crate) fn new(folders: Folders) -> LocalCatalog {
        LocalCatalog { folders }
    }
}

impl Catalog for LocalCatalog {
    fn location(&self) -> String {
        self.folders.products.parent().unwrap_or(&self.folders.products).display().to_string()
    }

    fn inputs(&self, kind: InputKind) -> Result<Vec<(String, FileStamp)>, Transient> {
        Ok(self.folders.inputs(kind))
    }

    fn look(&self, kind: InputKind, name: &str, limits: &Limits) -> Result<FileStamp, JobError> {
        validate::open_regular(&self.folders.input_dir(kind).join(name), limits).map(|(_, stamp)| stamp)
    }

    fn read(&self, kind: InputKind, name: &str, limits: &Limits) -> Result<InputFile, JobError> {
        validate::read_input(&self.folders.input_dir(kind).join(name), limits)
    }

    fn holds(&self, kind: InputKind, name: &str) -> bool {
        std::fs::symlink_metadata(self.folders.input_dir(kind).join(name)).is_ok()
    }

    fn still_being_written(&self, kind: InputKind, name: &str) -> bool {
        disk::still_being_written(&self.folders.input_dir(kind).join(name))
    }

    fn outputs_exist(&self, files: &[&str]) -> Result<Vec<bool>, Transient> {
        Ok(files.iter().map(|f| self.folders.output.join(f).is_file()).collect())
    }

    fn output_key(&self, _file: &str) -> Result<Option<String>, Transient> {
        Ok(None)
    }

    fn write_output(&self, file: &str, bytes: Vec<u8>, _key: &str) -> io::Result<()> {
        write_atomic(&self.folders.output, file, &bytes)
    }

    fn outputs_written(&self) {
        let _ = sync_dir(&self.folders.output);
    }

    fn remove_output(&self, file: &str) -> bool {
        match std::fs::remove_file(self.folders.output.join(file)) {
            Ok(()) => true,
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        }
    }

    fn reject(&self, kind: InputKind, name: &str, rejection: &Rejection) -> Result<String, RejectFailure> {
        let path = self.folders.input_dir(kind).join(name);
        match crate::reject::reject(&path, &self.folders.rejected, rejection) {
            Ok(moved) => Ok(moved.display().to_string()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(RejectFailure::Gone),
            Err(e) => Err(RejectFailure::Failed(e)),
        }
    }
}

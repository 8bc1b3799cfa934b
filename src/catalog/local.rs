//! The catalog in folders (the default): inputs opened without following links or blocking on
//! special files, outputs written under a temporary name and renamed, rejections moved with their
//! note (see [`crate::write`], [`crate::validate`], [`crate::reject`]); uploads streamed into a
//! hidden partial file renamed when complete.

use super::browse::{plain, Browse, Folder, Upload};
use super::{Catalog, RejectFailure};
use crate::disk::{self, FileStamp};
use crate::error::{JobError, Rejection, Transient};
use crate::folders::Folders;
use crate::job::InputKind;
use crate::reject::note_name;
use crate::validate::{self, InputFile, Limits};
use crate::write::{rename_noreplace, sync_dir, temp_path, write_atomic, UPLOAD_SUFFIX};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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

impl LocalCatalog {
    fn dir(&self, folder: Folder) -> &Path {
        match folder {
            Folder::Input(kind) => self.folders.input_dir(kind),
            Folder::Output => &self.folders.output,
            Folder::Rejected => &self.folders.rejected,
        }
    }
}

impl Browse for LocalCatalog {
    fn folder_stamp(&self, folder: Folder) -> Option<FileStamp> {
        FileStamp::look(self.dir(folder))
    }

    fn files(&self, folder: Folder) -> Result<Vec<(String, FileStamp)>, Transient> {
        Ok(crate::folders::files_in(self.dir(folder)))
    }

    fn read_file(&self, folder: Folder, name: &str, limit: u64) -> io::Result<(Vec<u8>, FileStamp)> {
        let (bytes, meta) = disk::read_regular(&self.dir(folder).join(plain(name)?), limit)?;
        Ok((bytes, FileStamp::of(&meta)))
    }

    fn input_location(&self, kind: InputKind) -> PathBuf {
        self.folders.input_dir(kind).to_owned()
    }

    fn free_bytes(&self) -> Option<u64> {
        disk::free_bytes(&self.folders.output)
    }

    fn upload(&self, kind: InputKind, name: &str, replace: bool) -> io::Result<Box<dyn Upload>> {
        let dir = self.folders.input_dir(kind);
        let dest = dir.join(plain(name)?);
        if !replace && std::fs::symlink_metadata(&dest).is_ok() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} is taken", dest.display())));
        }
        let part = temp_path(dir, name, UPLOAD_SUFFIX);
        // `create_new` never opens what is already there, a link included.
        let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&part)?;
        Ok(Box::new(Part { path: part, dest, file, replace, committed: false }))
    }

    fn restore(&self, name: &str, kind: InputKind, original: &str) -> io::Result<()> {
        let from = self.folders.rejected.join(plain(name)?);
        rename_noreplace(&from, &self.folders.input_dir(kind).join(plain(original)?))?;
        remove_if_there(&self.folders.rejected.join(note_name(&from)))
    }

    fn delete_rejected(&self, name: &str) -> io::Result<()> {
        let path = self.folders.rejected.join(plain(name)?);
        remove_if_there(&path)?;
        remove_if_there(&self.folders.rejected.join(note_name(&path)))
    }
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A file being uploaded, under a hidden partial name in its folder (the watcher ignores it);
/// deleted unless committed.
struct Part {
    path: PathBuf,
    dest: PathBuf,
    file: std::fs::File,
    replace: bool,
    committed: bool,
}

impl Upload for Part {
    fn write(&mut self, piece: &[u8]) -> io::Result<()> {
        self.file.write_all(piece)
    }

    /// Flushes the file to disk and gives it its name.
    fn commit(mut self: Box<Self>) -> io::Result<()> {
        self.file.sync_all()?;
        if self.replace {
            std::fs::rename(&self.path, &self.dest)?;
        } else {
            rename_noreplace(&self.path, &self.dest)?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{names, Base};

    #[test]
    fn an_upload_appears_only_when_committed_and_never_over_a_taken_name() {
        let base = Base::new();
        let catalog = LocalCatalog::new(base.folders.clone());
        let mut part = catalog.upload(InputKind::Product, "a.jpg", false).unwrap();
        part.write(b"half").unwrap();
        assert!(catalog.files(Folder::Input(InputKind::Product)).unwrap().is_empty(), "a partial file is hidden");
        drop(part);
        assert!(names(&base.folders.products).is_empty(), "an upload broken off leaves nothing");
        base.put("produtos", "a.jpg", b"old");
        let taken = catalog.upload(InputKind::Product, "a.jpg", false).err().unwrap();
        assert_eq!(taken.kind(), io::ErrorKind::AlreadyExists);
        let mut part = catalog.upload(InputKind::Product, "a.jpg", true).unwrap();
        part.write(b"new").unwrap();
        part.commit().unwrap();
        assert_eq!(std::fs::read(base.folders.products.join("a.jpg")).unwrap(), b"new");
        assert_eq!(names(&base.folders.products), ["a.jpg"]);
        let refused = catalog.read_file(Folder::Input(InputKind::Product), "../produtos/a.jpg", 10).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
    }
}

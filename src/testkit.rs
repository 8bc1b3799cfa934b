//! What the in-process tests share: a base folder in a temporary directory, photos drawn on the
//! spot, and a removal engine that needs no model and counts its calls.

use crate::config::Config;
use crate::error::{Cause, JobError, Transient};
use crate::folders::Folders;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::remove::{EngineKind, Mask, RemovalEngine};
use crate::store::{CutoutDir, FileJournal};
use image::{GrayImage, RgbImage};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// An engine that calls every pixel unlike the photo's corner the product, counting its calls;
/// the first `fail_first` calls fail as a passing engine outage.
#[derive(Default)]
pub(crate) struct FakeEngine {
    pub calls: AtomicUsize,
    pub fail_first: usize,
}

impl RemovalEngine for FakeEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Local
    }

    fn mask(&self, photo: &RgbImage) -> Result<Option<Mask>, JobError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if call < self.fail_first {
            return Err(Transient::new(Cause::Engine, "the fake engine is down").into());
        }
        let corner = photo.get_pixel(0, 0).0;
        let alpha = GrayImage::from_fn(photo.width(), photo.height(), |x, y| {
            let p = photo.get_pixel(x, y).0;
            let far = (0..3).map(|c| (p[c] as i32 - corner[c] as i32).abs()).max().unwrap_or(0) > 40;
            image::Luma([if far { 255 } else { 0 }])
        });
        let any = alpha.pixels().any(|p| p[0] > 0);
        Ok(any.then_some(Mask { alpha, engine: EngineKind::Local }))
    }
}

impl FakeEngine {
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// A base folder with the default layout and a configuration pointing at it.
pub(crate) struct Base {
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub folders: Folders,
}

impl Base {
    pub(crate) fn new() -> Base {
        Base::with(|_| {})
    }

    /// A base folder whose configuration `adjust` changes first.
    pub(crate) fn with(adjust: impl FnOnce(&mut Config)) -> Base {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config { base_path: dir.path().to_owned(), ..Config::default() };
        config.preset.width = 120;
        config.preset.height = 120;
        adjust(&mut config);
        let folders = Folders::from_config(&config);
        folders.create_all().unwrap();
        Base { dir, config, folders }
    }

    /// A pipeline over this folder with `engine`, its stores under the state folder.
    pub(crate) fn pipeline(&self, engine: Arc<FakeEngine>) -> Pipeline {
        let journal = FileJournal::open(&self.folders.state).unwrap();
        let cutouts = CutoutDir::open(&self.folders.state.join("cutouts"), true, Duration::ZERO).unwrap();
        Pipeline::new(
            &self.config,
            Arc::new(crate::catalog::LocalCatalog::new(self.folders.clone())),
            self.folders.clone(),
            engine,
            Arc::new(journal),
            Arc::new(cutouts),
            Arc::new(Metrics::new(&[EngineKind::Local], &[])),
        )
    }

    /// Writes a complete file into `produtos/` or `backgrounds/`, old enough to count as settled.
    pub(crate) fn put(&self, folder: &str, name: &str, bytes: &[u8]) {
        let path = self.dir.path().join(folder).join(name);
        std::fs::write(&path, bytes).unwrap();
        backdate(&path);
    }

    pub(crate) fn outputs(&self) -> Vec<String> {
        names(&self.folders.output)
    }
}

/// Sets a file's modification time a minute back, past every settling rule.
pub(crate) fn backdate(path: &std::path::Path) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(60)).unwrap();
}

/// Sorted names of the files in a folder, hidden ones too.
pub(crate) fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// A product photo: a `colour` block on a light grey backdrop, as PNG.
pub(crate) fn photo(colour: [u8; 3]) -> Vec<u8> {
    let img = RgbImage::from_fn(80, 60, |x, y| {
        if (20..60).contains(&x) && (15..45).contains(&y) {
            image::Rgb(colour)
        } else {
            image::Rgb([230, 230, 230])
        }
    });
    png(&img)
}

/// A background: a flat colour, as PNG.
pub(crate) fn background(colour: [u8; 3]) -> Vec<u8> {
    png(&RgbImage::from_pixel(90, 70, image::Rgb(colour)))
}

fn png(img: &RgbImage) -> Vec<u8> {
    crate::imaging::encode_png(img.as_raw(), img.width(), img.height(), image::ExtendedColorType::Rgb8).unwrap()
}

//! Settings files in the `KEY=value` form of `.env` and systemd's `EnvironmentFile=`: read into a
//! figment provider, never into the process environment (changing the environment while threads
//! run is unsound, and a reload must see the file as it is now, not as it was at start).
//!
//! Only the settings thumbgen knows ([`super::ENV_KEYS`]) are taken; other lines (for other
//! programs sharing the file) are left alone.

use super::ENV_KEYS;
use crate::error::ConfigError;
use figment::providers::Serialized;
use figment::value::{Dict, Value};
use std::path::Path;

/// The settings in `path` as a provider; `None` when the file does not exist and `required` is
/// false (an absent `.env`).
pub(super) fn read(path: &Path, required: bool) -> Result<Option<Serialized<Dict>>, ConfigError> {
    let lines = match dotenvy::from_path_iter(path) {
        Ok(lines) => lines,
        Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) => return Err(unreadable(path, e)),
    };
    let mut dict = Dict::new();
    for line in lines {
        let (key, value) = line.map_err(|e| unreadable(path, e))?;
        if ENV_KEYS.contains(&key.as_str()) {
            // Parsed as the environment provider parses a variable: `8` a number, `true` a flag.
            let value: Value = value.parse().unwrap_or_else(|never| match never {});
            dict.insert(key.to_ascii_lowercase(), value);
        }
    }
    Ok(Some(Serialized::globals(dict)))
}

fn unreadable(path: &Path, e: dotenvy::Error) -> ConfigError {
    ConfigError(format!(
        "settings file {} cannot be read: {e} (expected KEY=value lines, e.g. LOG_LEVEL=debug)",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Figment;

    #[test]
    fn known_keys_are_read_as_settings_and_other_lines_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("thumbgen.env");
        std::fs::write(&file, "# comment\nLOG_LEVEL=debug\nWORKERS=3\nexport DELETE_ORPHANS=true\nTZ=UTC\n").unwrap();
        let figment = Figment::from(read(&file, true).unwrap().unwrap());
        assert_eq!(figment.extract_inner::<String>("log_level").unwrap(), "debug");
        assert_eq!(figment.extract_inner::<usize>("workers").unwrap(), 3);
        assert!(figment.extract_inner::<bool>("delete_orphans").unwrap());
        assert!(figment.find_value("tz").is_err(), "not a thumbgen setting");
    }

    #[test]
    fn a_missing_file_is_an_error_only_when_it_was_named() {
        let missing = Path::new("/nonexistent/thumbgen.env");
        assert!(read(missing, false).unwrap().is_none());
        let e = read(missing, true).unwrap_err();
        assert!(e.0.contains("/nonexistent/thumbgen.env"), "{e}");
    }
}

//! Value types for settings that users write in more than one way.
//!
//! Environment variables arrive as strings (`MAX_FILE_SIZE=10MB`, `CACHE_TTL=1h`, `LOG_LEVEL=INFO`)
//! while TOML gives numbers and arrays; each type here accepts both and prints back in one canonical,
//! readable form for `thumbgen config`.

use crate::error::ConfigError;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// Reads a scalar that may come as a string, an integer, a float or a bool, as its text.
///
/// Figment parses `HF_TOKEN=12345` into a number; a token or URL must still be a string.
fn scalar_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct Text;
    impl Visitor<'_> for Text {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or number")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(Text)
}

/// Serialises a value through `Display` and deserialises it through its `parse`, for settings
/// written as text with units.
macro_rules! text_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <$t>::parse(&scalar_text(d)?).map_err(de::Error::custom)
            }
        }
    };
}

/// A length of time: a number of seconds, or text such as `500ms`, `30s`, `5m`, `1h`, `7d`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Seconds(pub Duration);

impl Seconds {
    pub fn secs(s: u64) -> Self {
        Seconds(Duration::from_secs(s))
    }

    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let t = text.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let value: f64 = num
            .parse()
            .map_err(|_| ConfigError(format!("`{text}` is not a duration (use e.g. 30, 30s, 5m, 1h, 500ms)")))?;
        let scale = match unit.trim() {
            "" | "s" | "sec" | "secs" => 1.0,
            "ms" => 0.001,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            other => return Err(ConfigError(format!("unknown duration unit `{other}` (use ms, s, m, h or d)"))),
        };
        let secs = value * scale;
        if !secs.is_finite() || secs < 0.0 {
            return Err(ConfigError(format!("`{text}` is not a valid duration")));
        }
        Ok(Seconds(Duration::from_secs_f64(secs)))
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) {
            write!(f, "{ms}ms")
        } else {
            write!(f, "{}s", ms / 1000)
        }
    }
}

text_serde!(Seconds);

/// A size in bytes: a plain number, or text such as `10MB`, `10MiB`, `512k`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let t = text.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let value: f64 =
            num.parse().map_err(|_| ConfigError(format!("`{text}` is not a size (use e.g. 10485760, 10MB, 10MiB)")))?;
        let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "k" | "kb" => 1e3,
            "kib" => 1024.0,
            "m" | "mb" => 1e6,
            "mib" => 1024.0 * 1024.0,
            "g" | "gb" => 1e9,
            "gib" => 1024.0 * 1024.0 * 1024.0,
            other => {
                return Err(ConfigError(format!("unknown size unit `{other}` (use B, KB, KiB, MB, MiB, GB, GiB)")))
            }
        };
        Ok(ByteSize((value * scale).round() as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        const MIB: u64 = 1024 * 1024;
        if self.0 >= MIB && self.0.is_multiple_of(MIB) {
            write!(f, "{}MiB", self.0 / MIB)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

text_serde!(ByteSize);

/// A secret (token, password): never printed, logged or served.
#[derive(Clone, Default, PartialEq)]
pub struct Secret(String);

impl Secret {
    pub(crate) fn new(secret: String) -> Secret {
        Secret(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_text(d).map(Secret)
    }
}

/// Plain text that may have been parsed as a number by the environment provider (URLs, names).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_text(d).map(Text)
    }
}

/// A boolean written as `true/false`, `yes/no`, `on/off` or `1/0`, in any case.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Flag(pub bool);

impl Serialize for Flag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(self.0)
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = scalar_text(d)?;
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(Flag(true)),
            "false" | "no" | "off" | "0" => Ok(Flag(false)),
            _ => Err(de::Error::custom(format!("`{text}` is not a boolean (use true or false)"))),
        }
    }
}

/// A list written as a TOML array or as comma-separated text (`ALLOWED_FORMATS=jpg,png,webp`).
pub fn list_of_words<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Words;
    impl<'de> Visitor<'de> for Words {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list, or words separated by commas")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.split([',', ' ', ';']).map(str::trim).filter(|w| !w.is_empty()).map(str::to_owned).collect())
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(word) = seq.next_element::<Text>()? {
                out.push(word.0);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_units_and_plain_seconds() {
        assert_eq!(Seconds::parse("30").unwrap().0, Duration::from_secs(30));
        assert_eq!(Seconds::parse("5m").unwrap().0, Duration::from_secs(300));
        assert_eq!(Seconds::parse("250ms").unwrap().0, Duration::from_millis(250));
        assert_eq!(Seconds::parse("1.5").unwrap().0, Duration::from_millis(1500));
        assert!(Seconds::parse("soon").is_err());
        assert!(Seconds::parse("3 weeks").is_err());
        assert_eq!(Seconds::secs(300).to_string(), "300s");
    }

    #[test]
    fn sizes_accept_si_and_binary_units() {
        assert_eq!(ByteSize::parse("10485760").unwrap().0, 10 * 1024 * 1024);
        assert_eq!(ByteSize::parse("10MiB").unwrap().0, 10 * 1024 * 1024);
        assert_eq!(ByteSize::parse("10MB").unwrap().0, 10_000_000);
        assert_eq!(ByteSize::parse("512 KiB").unwrap().0, 512 * 1024);
        assert!(ByteSize::parse("big").is_err());
        assert_eq!(ByteSize(10 * 1024 * 1024).to_string(), "10MiB");
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret("hf_abcdef".into());
        assert_eq!(format!("{s:?}"), "\"***\"");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
        assert_eq!(s.expose(), "hf_abcdef");
    }
}

//! Output presets: canvas size, format and placement of the product.
//!
//! The main preset makes `P.jpg` and `P__B.jpg`; every extra preset adds its own files with a
//! `__<name>` suffix, so marketplaces with other rules can be served from the same cut-outs.

use crate::error::ConfigError;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Preset {
    /// Name used as the `__<name>` suffix of extra presets (ignored for the main preset).
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub format: OutputFormat,
    /// Encoder quality 1–100 (JPEG and lossy WebP; PNG is lossless).
    pub quality: u8,
    /// The product's longer side as a fraction of the canvas (0.85 = 85 %).
    pub fill: f32,
    /// Pixels kept free at every canvas edge, whatever `fill` asks.
    pub margin: u32,
    pub anchor: Anchor,
    /// Canvas of the main image: a colour (the marketplace white) or `transparent` (PNG and
    /// WebP only: the product alone, for sellers' own layouts; no outputs on backgrounds).
    pub background: Backdrop,
    /// A soft drop shadow under the product.
    pub shadow: bool,
}

impl Default for Preset {
    fn default() -> Self {
        Preset {
            name: "default".into(),
            width: 1200,
            height: 1200,
            format: OutputFormat::Jpeg,
            quality: 90,
            fill: 0.85,
            margin: 0,
            anchor: Anchor::Center,
            background: Backdrop::Colour(Color([255, 255, 255])),
            shadow: false,
        }
    }
}

impl Preset {
    /// Checks the ranges serde cannot express; `key` names the preset in the message.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let problem = if !(16..=10_000).contains(&self.width) || !(16..=10_000).contains(&self.height) {
            format!("{key}: width and height must be between 16 and 10000 pixels")
        } else if !(1..=100).contains(&self.quality) {
            format!("{key}.quality must be between 1 and 100")
        } else if !(0.05..=1.0).contains(&self.fill) {
            format!("{key}.fill must be between 0.05 and 1.0 (0.85 = 85 % of the canvas)")
        } else if self.margin * 2 >= self.width.min(self.height) {
            format!("{key}.margin leaves no room for the product")
        } else if self.background == Backdrop::Transparent && self.format == OutputFormat::Jpeg {
            format!(
                "{key}.background = \"transparent\" needs {key}.format = \"png\" or \"webp\": JPEG cannot hold transparency"
            )
        } else {
            return Ok(());
        };
        Err(ConfigError(problem))
    }

    /// A stable digest of everything that changes the pixels, so outputs made with an older preset
    /// are regenerated and outputs made with this one are not.
    pub(crate) fn fingerprint(&self) -> String {
        serde_json::to_string(self).expect("presets serialise")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[serde(alias = "jpg")]
    Jpeg,
    Png,
    Webp,
}

impl OutputFormat {
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
        }
    }
}

/// Where the product sits on the canvas; `bottom` suits shoes and bottles standing on a floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Anchor {
    Center,
    Top,
    Bottom,
}

/// The canvas under the product: a colour, or nothing at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backdrop {
    Colour(Color),
    Transparent,
}

/// Written `transparent` or as its colour `#RRGGBB` (so presets made before transparency keep
/// their fingerprint).
const TRANSPARENT: &str = "transparent";

impl Serialize for Backdrop {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Backdrop::Colour(colour) => colour.serialize(s),
            Backdrop::Transparent => s.serialize_str(TRANSPARENT),
        }
    }
}

impl<'de> Deserialize<'de> for Backdrop {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.trim().eq_ignore_ascii_case(TRANSPARENT) {
            return Ok(Backdrop::Transparent);
        }
        Color::parse(&text).map(Backdrop::Colour).map_err(de::Error::custom)
    }
}

/// An sRGB colour written as `#RRGGBB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Color(pub [u8; 3]);

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "#{r:02X}{g:02X}{b:02X}")
    }
}

impl Serialize for Color {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Color {
    fn parse(text: &str) -> Result<Color, String> {
        let hex = text.trim().trim_start_matches('#');
        let bad = || format!("`{text}` is not a colour (use #RRGGBB, e.g. #FFFFFF, or \"transparent\")");
        if hex.len() != 6 || !hex.is_ascii() {
            return Err(bad());
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
        Ok(Color([byte(0)?, byte(2)?, byte(4)?]))
    }
}

impl<'de> Deserialize<'de> for Color {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Color::parse(&String::deserialize(d)?).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_marketplace_contract() {
        let p = Preset::default();
        assert_eq!((p.width, p.height, p.quality), (1200, 1200, 90));
        assert_eq!(p.format, OutputFormat::Jpeg);
        assert_eq!(p.background, Backdrop::Colour(Color([255, 255, 255])));
        assert!((p.fill - 0.85).abs() < f32::EPSILON);
        p.validate("preset").unwrap();
    }

    #[test]
    fn colours_parse_and_print() {
        let c: Color = serde_json::from_str("\"#0a0B0c\"").unwrap();
        assert_eq!(c, Color([10, 11, 12]));
        assert_eq!(c.to_string(), "#0A0B0C");
        assert!(serde_json::from_str::<Color>("\"white\"").is_err());
    }

    #[test]
    fn a_transparent_backdrop_is_only_valid_with_png_or_webp_and_the_message_names_the_key() {
        let backdrop: Backdrop = serde_json::from_str("\"transparent\"").unwrap();
        assert_eq!(backdrop, Backdrop::Transparent);
        let jpeg = Preset { background: Backdrop::Transparent, ..Preset::default() };
        let message = jpeg.validate("extra_presets[0]").unwrap_err().0;
        assert!(message.contains("extra_presets[0].background") && message.contains("png"), "{message}");
        for format in [OutputFormat::Png, OutputFormat::Webp] {
            Preset { format, ..jpeg.clone() }.validate("preset").unwrap();
        }
    }

    #[test]
    fn a_colour_backdrop_keeps_the_fingerprint_it_had_as_a_plain_colour() {
        assert!(Preset::default().fingerprint().contains("\"background\":\"#FFFFFF\""));
    }

    #[test]
    fn out_of_range_values_are_named() {
        let p = Preset { fill: 1.5, ..Preset::default() };
        assert!(p.validate("preset").unwrap_err().0.contains("preset.fill"));
    }
}

//! Arbitrary bytes through the daemon's own front door: `validate::read_input` (a real file:
//! size, magic bytes, allowed format, header dimensions) and then `validate::decode` (strict
//! decode, EXIF orientation). Must never panic, hang or allocate past the pixel limit; every
//! failure must be a rejection, never a retry. The pipeline's own decode (`cutout::decode`: RGBA
//! PNGs a row at a time) must agree with it on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = thumbgen_fuzz::read_input(data) {
        let whole = thumbgen_fuzz::decode(&input);
        thumbgen_fuzz::agree_with_the_whole_image(&input, whole.as_ref());
    }
});

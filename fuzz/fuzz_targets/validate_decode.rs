//! Arbitrary bytes through the daemon's own front door: `validate::read_input` (a real file:
//! size, magic bytes, allowed format, header dimensions) and then `validate::decode` (strict
//! decode, EXIF orientation). Must never panic, hang or allocate past the pixel limit; every
//! failure must be a rejection, never a retry.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = thumbgen_fuzz::read_input(data) {
        thumbgen_fuzz::decode(&input);
    }
});

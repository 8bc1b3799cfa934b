//! The bounding-box scan: where the solid pixels of an image or a mask are.

use super::FAINT_ALPHA;

/// The box `(x, y, w, h)` of pixels whose alpha is above [`FAINT_ALPHA`] in row-major pixels of
/// `width`×`height`, `STRIDE` bytes each with the alpha at byte `ALPHA`.
///
/// Rows are read in memory order: first the top and bottom edges, then each row inside only
/// as far as the left and right edges found so far. The pixels are tested a block at a time
/// without branching (which the compiler vectorises), and only the block that holds an edge
/// pixel by pixel: a 12 MP photo costs about a millisecond.
pub(super) fn bounding_box<const STRIDE: usize, const ALPHA: usize>(
    pixels: &[u8],
    width: u32,
    height: u32,
) -> Option<(u32, u32, u32, u32)> {
    let (w, h) = (width as usize, height as usize);
    let row = |y: usize| &pixels[y * w * STRIDE..(y + 1) * w * STRIDE];
    let row_has = |y: usize| first_solid::<STRIDE, ALPHA>(row(y)).is_some();
    let top = (0..h).find(|&y| row_has(y))?;
    let bottom = (top..h).rev().find(|&y| row_has(y))?;
    let (mut left, mut right) = (w, 0);
    for y in top..=bottom {
        let line = row(y);
        if let Some(x) = first_solid::<STRIDE, ALPHA>(&line[..left * STRIDE]) {
            left = x;
        }
        let from = right.max(left) + 1;
        if from < w {
            if let Some(x) = last_solid::<STRIDE, ALPHA>(&line[from * STRIDE..]) {
                right = from + x;
            }
        }
        right = right.max(left);
    }
    Some((left as u32, top as u32, (right - left + 1) as u32, (bottom - top + 1) as u32))
}

/// Pixels tested together by [`first_solid`] and [`last_solid`].
const BLOCK: usize = 32;

/// Whether any pixel of `pixels` is solid, all of them tested (no early exit to branch on).
fn any_solid<const STRIDE: usize, const ALPHA: usize>(pixels: &[u8]) -> bool {
    pixels.chunks_exact(STRIDE).fold(false, |any, p| any | (p[ALPHA] > FAINT_ALPHA))
}

/// The index of the first solid pixel of `line`.
pub(super) fn first_solid<const STRIDE: usize, const ALPHA: usize>(line: &[u8]) -> Option<usize> {
    let blocks = line.chunks_exact(BLOCK * STRIDE);
    let tail = blocks.remainder();
    let start = match blocks.enumerate().find(|(_, b)| any_solid::<STRIDE, ALPHA>(b)) {
        Some((b, _)) => b * BLOCK,
        None if tail.is_empty() => return None,
        None => line.len() / STRIDE - tail.len() / STRIDE,
    };
    line[start * STRIDE..].chunks_exact(STRIDE).position(|p| p[ALPHA] > FAINT_ALPHA).map(|x| start + x)
}

/// The index of the last solid pixel of `line`.
pub(super) fn last_solid<const STRIDE: usize, const ALPHA: usize>(line: &[u8]) -> Option<usize> {
    let blocks = line.rchunks_exact(BLOCK * STRIDE);
    let head = blocks.remainder();
    let end = match blocks.enumerate().find(|(_, b)| any_solid::<STRIDE, ALPHA>(b)) {
        Some((b, _)) => line.len() / STRIDE - b * BLOCK,
        None if head.is_empty() => return None,
        None => head.len() / STRIDE,
    };
    line[..end * STRIDE].chunks_exact(STRIDE).rposition(|p| p[ALPHA] > FAINT_ALPHA)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::GrayImage;

    #[test]
    fn the_row_scan_finds_the_same_box_as_checking_every_pixel() {
        let mut seed = 7u32;
        for _ in 0..2000 {
            let mut next = || {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                seed >> 16
            };
            // Widths past two blocks, so edges fall in whole blocks, in the tail and in the head.
            let (w, h) = (1 + next() % 90, 1 + next() % 24);
            let blobs = next() % 4;
            let mut mask = GrayImage::new(w, h);
            for _ in 0..blobs {
                let (x, y, v) = (next() % w, next() % h, (next() % 256) as u8);
                mask.put_pixel(x, y, image::Luma([v]));
            }
            let solid: Vec<(u32, u32)> =
                mask.enumerate_pixels().filter(|(_, _, p)| p[0] > FAINT_ALPHA).map(|(x, y, _)| (x, y)).collect();
            let expected = (!solid.is_empty()).then(|| {
                let (x0, x1) = (solid.iter().map(|p| p.0).min().unwrap(), solid.iter().map(|p| p.0).max().unwrap());
                let (y0, y1) = (solid.iter().map(|p| p.1).min().unwrap(), solid.iter().map(|p| p.1).max().unwrap());
                (x0, y0, x1 - x0 + 1, y1 - y0 + 1)
            });
            assert_eq!(bounding_box::<1, 0>(mask.as_raw(), w, h), expected, "{w}x{h} {solid:?}");
            // The same as the alpha of an RGBA image, its colour bytes holding noise.
            let rgba: Vec<u8> = mask.as_raw().iter().flat_map(|&a| [200, (next() % 256) as u8, 255, a]).collect();
            assert_eq!(bounding_box::<4, 3>(&rgba, w, h), expected, "RGBA {w}x{h} {solid:?}");
        }
    }
}

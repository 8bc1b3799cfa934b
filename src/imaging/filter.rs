//! Box filter: the mean over a square window, the building block of the guided filter, edge
//! decontamination and soft shadows.

/// Mean over a (2r+1)² window, clipped at the borders, in O(n) with running sums.
pub(crate) fn box_mean(src: &[f32], w: u32, h: u32, r: usize) -> Vec<f32> {
    let (w, h) = (w as usize, h as usize);
    let mut horizontal = vec![0f32; w * h];
    let mut prefix = vec![0f32; w + 1];
    for y in 0..h {
        let row = &src[y * w..(y + 1) * w];
        for x in 0..w {
            prefix[x + 1] = prefix[x] + row[x];
        }
        for x in 0..w {
            let lo = x.saturating_sub(r);
            let hi = (x + r + 1).min(w);
            horizontal[y * w + x] = (prefix[hi] - prefix[lo]) / (hi - lo) as f32;
        }
    }
    let mut out = vec![0f32; w * h];
    let mut prefix = vec![0f32; (h + 1) * w];
    for y in 0..h {
        for x in 0..w {
            prefix[(y + 1) * w + x] = prefix[y * w + x] + horizontal[y * w + x];
        }
    }
    for y in 0..h {
        let lo = y.saturating_sub(r);
        let hi = (y + r + 1).min(h);
        for x in 0..w {
            out[y * w + x] = (prefix[hi * w + x] - prefix[lo * w + x]) / (hi - lo) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_of_a_constant_is_the_constant() {
        let src = vec![0.5f32; 30 * 20];
        let out = box_mean(&src, 30, 20, 3);
        assert!(out.iter().all(|v| (v - 0.5).abs() < 1e-5));
    }

    #[test]
    fn a_single_bright_pixel_spreads_over_its_window() {
        let mut src = vec![0f32; 5 * 5];
        src[12] = 9.0;
        let out = box_mean(&src, 5, 5, 1);
        assert!((out[12] - 1.0).abs() < 1e-6 && (out[6] - 1.0).abs() < 1e-6);
        assert_eq!(out[0], 0.0);
    }
}

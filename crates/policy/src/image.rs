//! The pixel operations of preprocessing: RGB to luminance and resizing by area
//! averaging, on row-major `f32` buffers.
//!
//! They follow OpenCV, since Atari-trained networks were fed through
//! `cv2.cvtColor(.., COLOR_RGB2GRAY)` and `cv2.resize(.., INTER_AREA)` (SB3's
//! `WarpFrame`, Gymnasium's `AtariPreprocessing`). On `u8` images OpenCV works
//! in integers and rounds each result to a whole grey level; `integral` asks for
//! the same, so a network sees the values it was trained on: grayscale is then
//! OpenCV's exact fixed-point formula, and resizing rounds half to even as
//! OpenCV's `saturate_cast` does (its integer-factor fast path rounds half up,
//! so the two can differ by one grey level on exact halves).

/// OpenCV's fixed-point RGB→gray weights (`R2Y`, `G2Y`, `B2Y`), 14 fraction
/// bits; they sum to 1 << 14.
const R2Y: u32 = 4899;
const G2Y: u32 = 9617;
const B2Y: u32 = 1868;
const GRAY_SHIFT: u32 = 14;

/// Luminance of `(.., 3)` RGB pixels: 0.299 R + 0.587 G + 0.114 B.
pub(crate) fn grayscale(rgb: &[f32], integral: bool) -> Vec<f32> {
    rgb.chunks_exact(3)
        .map(|p| {
            if integral {
                // Values come from u8 observations, so the casts are exact.
                let [r, g, b] = [p[0] as u32, p[1] as u32, p[2] as u32];
                ((R2Y * r + G2Y * g + B2Y * b + (1 << (GRAY_SHIFT - 1))) >> GRAY_SHIFT) as f32
            } else {
                0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
            }
        })
        .collect()
}

/// Source pixels and their weights for each output pixel along one axis.
///
/// Output pixel `o` covers the source interval `[o * s, (o + 1) * s)` with
/// `s = src / dst`; each source pixel weighs the length of its overlap with that
/// interval, over `s`. Shrinking, this is OpenCV's `INTER_AREA`; enlarging, it
/// is nearest-neighbour with a blend where an output pixel straddles two source
/// pixels (OpenCV switches to a bilinear variant there).
fn area_weights(src: usize, dst: usize) -> Vec<Vec<(usize, f32)>> {
    let s = src as f64 / dst as f64;
    (0..dst)
        .map(|o| {
            let (start, end) = (o as f64 * s, (o + 1) as f64 * s);
            let first = start.floor() as usize;
            let last = (end.ceil() as usize).min(src);
            (first..last)
                .filter_map(|i| {
                    let overlap = end.min(i as f64 + 1.0) - start.max(i as f64);
                    // Float noise at interval ends gives slivers; drop them.
                    (overlap > 1e-9).then_some((i, (overlap / s) as f32))
                })
                .collect()
        })
        .collect()
}

/// An `(h, w, c)` image resized to `(out_h, out_w, c)` by area averaging.
pub(crate) fn resize_area(
    image: &[f32],
    (h, w, c): (usize, usize, usize),
    (out_h, out_w): (usize, usize),
    integral: bool,
) -> Vec<f32> {
    // Separable: rows first into (h, out_w, c), then columns.
    let wx = area_weights(w, out_w);
    let wy = area_weights(h, out_h);
    let mut rows = vec![0.0f32; h * out_w * c];
    for y in 0..h {
        for (ox, taps) in wx.iter().enumerate() {
            let out = &mut rows[(y * out_w + ox) * c..][..c];
            for &(x, weight) in taps {
                let src = &image[(y * w + x) * c..][..c];
                for (o, v) in out.iter_mut().zip(src) {
                    *o += weight * v;
                }
            }
        }
    }
    let mut resized = vec![0.0f32; out_h * out_w * c];
    for (oy, taps) in wy.iter().enumerate() {
        let out = &mut resized[oy * out_w * c..][..out_w * c];
        for &(y, weight) in taps {
            let src = &rows[y * out_w * c..][..out_w * c];
            for (o, v) in out.iter_mut().zip(src) {
                *o += weight * v;
            }
        }
    }
    if integral {
        for v in &mut resized {
            *v = v.round_ties_even().clamp(0.0, 255.0);
        }
    }
    resized
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    /// Hand-computed: pure red is 0.299 × 255 = 76.245, which OpenCV's fixed
    /// point gives as 76; (10, 20, 30) is 18.15 → 18.
    #[test]
    fn grayscale_matches_opencv() {
        let rgb = [255.0, 0.0, 0.0, 10.0, 20.0, 30.0, 255.0, 255.0, 255.0];
        assert_eq!(grayscale(&rgb, true), vec![76.0, 18.0, 255.0]);
        assert!(close(&grayscale(&rgb, false), &[76.245, 18.15, 255.0]));
    }

    /// Halving averages 2 × 2 blocks.
    #[test]
    fn halving_averages_blocks() {
        #[rustfmt::skip]
        let image = [
            1.0, 2.0, 3.0, 4.0,
            5.0, 6.0, 7.0, 8.0,
            9.0, 10.0, 11.0, 12.0,
            13.0, 14.0, 15.0, 16.0,
        ];
        let out = resize_area(&image, (4, 4, 1), (2, 2), false);
        assert!(close(&out, &[3.5, 5.5, 11.5, 13.5]), "{out:?}");
    }

    /// Three pixels into two: each output takes one whole source pixel and half
    /// of the middle one, over 1.5.
    #[test]
    fn fractional_shrink_weights_overlaps() {
        let out = resize_area(&[3.0, 6.0, 9.0], (1, 3, 1), (1, 2), false);
        assert!(
            close(&out, &[(3.0 + 3.0) / 1.5, (3.0 + 9.0) / 1.5]),
            "{out:?}"
        );
        // Rounded as OpenCV rounds u8 results: 4 and 8 exactly here.
        let out = resize_area(&[3.0, 6.0, 9.0], (1, 3, 1), (1, 2), true);
        assert_eq!(out, vec![4.0, 8.0]);
    }

    /// Channels are resized independently.
    #[test]
    fn channels_stay_apart() {
        let image = [1.0, 100.0, 3.0, 300.0];
        let out = resize_area(&image, (1, 2, 2), (1, 1), false);
        assert!(close(&out, &[2.0, 200.0]), "{out:?}");
    }

    /// Enlarging repeats pixels, blending where an output straddles two.
    #[test]
    fn enlarging_repeats() {
        let out = resize_area(&[2.0, 4.0], (1, 2, 1), (1, 4), false);
        assert!(close(&out, &[2.0, 2.0, 4.0, 4.0]), "{out:?}");
        let out = resize_area(&[2.0, 4.0], (1, 2, 1), (1, 3), false);
        assert!(close(&out, &[2.0, 3.0, 4.0]), "{out:?}");
    }
}

//! Gymnasium's pixel coordinates mapped to Tandem's normalized sprite coordinates.
//!
//! The classic-control envs draw with pygame on a fixed-size surface with y
//! pointing up, then flip it. Writing our sprites in those same pixel numbers
//! keeps each `render` line-by-line comparable with Gymnasium's; this type does
//! the flip and the scaling to `0..1` once.

/// A drawing surface of `width` × `height` pixels, y up.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Screen {
    pub(crate) width: f64,
    pub(crate) height: f64,
}

impl Screen {
    /// The normalized, y-down point for pixel `(x, y)` measured from the bottom left.
    pub(crate) fn point(self, x: f64, y: f64) -> [f32; 2] {
        [(x / self.width) as f32, (1.0 - y / self.height) as f32]
    }

    /// A horizontal length in pixels as a fraction of the width (sprite `w`, circle
    /// radius, line width).
    pub(crate) fn dx(self, pixels: f64) -> f32 {
        (pixels / self.width) as f32
    }

    /// A vertical length in pixels as a fraction of the height (sprite `h`).
    pub(crate) fn dy(self, pixels: f64) -> f32 {
        (pixels / self.height) as f32
    }
}

//! A small software rasterizer that turns a sprite frame into RGB pixels, so a
//! sprite-drawn env can also be served, recorded or learned from as pixels.
//!
//! It aims to be simple and predictable, not pretty: no anti-aliasing, a pixel is
//! painted when its centre is inside the shape, polygons fill with the nonzero
//! rule (the canvas default), strokes are round-capped so joints never gap. Text
//! and image sprites are skipped, as they need fonts and assets. No I/O, so it
//! builds for wasm too.

use tandem_env::{Image, Shape, Sprite};

/// Draws `sprites` (in ascending `z`, then id, as the contract says) over a
/// `background` colour on a `width` × `height` image. Fills go under strokes.
pub fn rasterize(sprites: &[Sprite], width: u32, height: u32, background: [u8; 3]) -> Image {
    let mut canvas = Canvas {
        width: width as usize,
        height: height as usize,
        rgb: background.repeat(width as usize * height as usize),
    };
    let mut order: Vec<&Sprite> = sprites.iter().collect();
    order.sort_by_key(|s| (s.z, s.id));
    let (w, h) = (width as f32, height as f32);
    // Normalized coordinates to pixels: x by the width, y by the height.
    let px = |p: [f32; 2]| [p[0] * w, p[1] * h];
    for sprite in order {
        let fill = sprite.fill.as_deref().map(parse_color);
        let stroke = sprite.stroke.as_deref().map(parse_color);
        // A zero width with a stroke colour is a hairline, as canvas keeps a
        // 1 px default.
        let half_width = (sprite.line_width * w).max(1.0) / 2.0;
        match &sprite.shape {
            Shape::Rect {
                x,
                y,
                w: rw,
                h: rh,
                angle,
            } => {
                let corners = rect_corners(px([*x, *y]), rw * w, rh * h, *angle);
                if let Some(color) = fill {
                    canvas.fill_polygon(&corners, color);
                }
                if let Some(color) = stroke {
                    canvas.stroke_path(&corners, true, half_width, color);
                }
            }
            Shape::Circle { x, y, r } => {
                let centre = px([*x, *y]);
                // The radius is a fraction of the width, whatever the aspect.
                let radius = r * w;
                if let Some(color) = fill {
                    canvas.fill_disc(centre, radius, color);
                }
                if let Some(color) = stroke {
                    canvas.stroke_circle(centre, radius, half_width, color);
                }
            }
            Shape::Polygon { points } => {
                let points: Vec<[f32; 2]> = points.iter().copied().map(px).collect();
                if let Some(color) = fill {
                    canvas.fill_polygon(&points, color);
                }
                if let Some(color) = stroke {
                    canvas.stroke_path(&points, true, half_width, color);
                }
            }
            Shape::Line { points } => {
                // A canvas fills an open path as if closed; nobody means that for
                // a line, so only its stroke is drawn.
                let points: Vec<[f32; 2]> = points.iter().copied().map(px).collect();
                if let Some(color) = stroke {
                    canvas.stroke_path(&points, false, half_width, color);
                }
            }
            Shape::Text { .. } | Shape::Image { .. } => {}
        }
    }
    Image {
        width,
        height,
        rgb: canvas.rgb,
    }
}

/// Parses `#rgb` or `#rrggbb`; anything else is black, so a typo shows up as
/// something drawn rather than as nothing.
fn parse_color(color: &str) -> [u8; 3] {
    let digits = color.strip_prefix('#').unwrap_or("");
    let nibble = |i: usize| {
        digits
            .get(i..=i)
            .and_then(|d| u8::from_str_radix(d, 16).ok())
    };
    let parsed = match digits.len() {
        3 => (|| Some([nibble(0)? * 17, nibble(1)? * 17, nibble(2)? * 17]))(),
        6 => (|| {
            Some([
                nibble(0)? * 16 + nibble(1)?,
                nibble(2)? * 16 + nibble(3)?,
                nibble(4)? * 16 + nibble(5)?,
            ])
        })(),
        _ => None,
    };
    parsed.unwrap_or([0, 0, 0])
}

/// The corners of a `w` × `h` rectangle with top-left `origin`, turned by `angle`
/// about its centre (clockwise on screen for a positive angle, as canvas's
/// `rotate`).
fn rect_corners(origin: [f32; 2], w: f32, h: f32, angle: f32) -> Vec<[f32; 2]> {
    let centre = [origin[0] + w / 2.0, origin[1] + h / 2.0];
    let (sin, cos) = angle.sin_cos();
    [(-w, -h), (w, -h), (w, h), (-w, h)]
        .iter()
        .map(|(dx, dy)| {
            let (dx, dy) = (dx / 2.0, dy / 2.0);
            [
                centre[0] + dx * cos - dy * sin,
                centre[1] + dx * sin + dy * cos,
            ]
        })
        .collect()
}

struct Canvas {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Canvas {
    fn put(&mut self, x: usize, y: usize, color: [u8; 3]) {
        let i = (y * self.width + x) * 3;
        if let Some(pixel) = self.rgb.get_mut(i..i + 3) {
            pixel.copy_from_slice(&color);
        }
    }

    /// The pixel rows or columns whose centres may lie in `[lo, hi]`, clamped to
    /// `0..limit`. Saturating casts make NaN and infinities harmless.
    fn span(lo: f32, hi: f32, limit: usize) -> std::ops::Range<usize> {
        let start = (lo - 0.5).ceil().max(0.0) as usize;
        let end = ((hi - 0.5).floor() + 1.0).max(0.0) as usize;
        start.min(limit)..end.min(limit)
    }

    /// Paints every pixel whose centre is inside the bounding box and passes
    /// `inside`.
    fn paint_where(
        &mut self,
        bounds: ([f32; 2], [f32; 2]),
        color: [u8; 3],
        inside: impl Fn(f32, f32) -> bool,
    ) {
        let (min, max) = bounds;
        for y in Self::span(min[1], max[1], self.height) {
            for x in Self::span(min[0], max[0], self.width) {
                if inside(x as f32 + 0.5, y as f32 + 0.5) {
                    self.put(x, y, color);
                }
            }
        }
    }

    /// Scanline fill with the nonzero winding rule, sampled at pixel centres.
    fn fill_polygon(&mut self, points: &[[f32; 2]], color: [u8; 3]) {
        if points.len() < 3 {
            return;
        }
        let (min_y, max_y) = points
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p[1]), hi.max(p[1]))
            });
        let mut crossings: Vec<(f32, i32)> = Vec::new();
        for y in Self::span(min_y, max_y, self.height) {
            let cy = y as f32 + 0.5;
            crossings.clear();
            for (i, a) in points.iter().enumerate() {
                let b = points[(i + 1) % points.len()];
                // Half-open in y, so a vertex shared by two edges counts once.
                let (upward, downward) = (a[1] <= cy && b[1] > cy, b[1] <= cy && a[1] > cy);
                if upward || downward {
                    let t = (cy - a[1]) / (b[1] - a[1]);
                    crossings.push((a[0] + t * (b[0] - a[0]), if upward { 1 } else { -1 }));
                }
            }
            crossings.sort_by(|p, q| p.0.total_cmp(&q.0));
            let mut winding = 0;
            for pair in crossings.windows(2) {
                winding += pair[0].1;
                if winding != 0 {
                    let span = Self::span(pair[0].0, pair[1].0, self.width);
                    for x in span {
                        self.put(x, y, color);
                    }
                }
            }
        }
    }

    fn fill_disc(&mut self, c: [f32; 2], r: f32, color: [u8; 3]) {
        let bounds = ([c[0] - r, c[1] - r], [c[0] + r, c[1] + r]);
        self.paint_where(bounds, color, |x, y| {
            (x - c[0]).powi(2) + (y - c[1]).powi(2) <= r * r
        });
    }

    fn stroke_circle(&mut self, c: [f32; 2], r: f32, half_width: f32, color: [u8; 3]) {
        let outer = r + half_width;
        let bounds = ([c[0] - outer, c[1] - outer], [c[0] + outer, c[1] + outer]);
        self.paint_where(bounds, color, |x, y| {
            ((x - c[0]).hypot(y - c[1]) - r).abs() <= half_width
        });
    }

    /// Strokes each segment as a capsule of radius `half_width`.
    fn stroke_path(&mut self, points: &[[f32; 2]], closed: bool, half_width: f32, color: [u8; 3]) {
        let closing = if closed && points.len() > 2 {
            points.last().zip(points.first())
        } else {
            None
        };
        let segments = points
            .windows(2)
            .map(|pair| (pair[0], pair[1]))
            .chain(closing.map(|(a, b)| (*a, *b)));
        for (a, b) in segments {
            let bounds = (
                [a[0].min(b[0]) - half_width, a[1].min(b[1]) - half_width],
                [a[0].max(b[0]) + half_width, a[1].max(b[1]) + half_width],
            );
            self.paint_where(bounds, color, |x, y| {
                distance_to_segment([x, y], a, b) <= half_width
            });
        }
    }
}

fn distance_to_segment(p: [f32; 2], a: [f32; 2], b: [f32; 2]) -> f32 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let length_sq = dx * dx + dy * dy;
    let t = if length_sq > 0.0 {
        (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length_sq).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (p[0] - (a[0] + t * dx)).hypot(p[1] - (a[1] + t * dy))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHITE: [u8; 3] = [255, 255, 255];
    const RED: [u8; 3] = [255, 0, 0];

    fn pixel(image: &Image, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * image.width + x) * 3) as usize;
        [image.rgb[i], image.rgb[i + 1], image.rgb[i + 2]]
    }

    fn rect(x: f32, y: f32, w: f32, h: f32, angle: f32) -> Shape {
        Shape::Rect { x, y, w, h, angle }
    }

    /// A red rectangle paints exactly its pixels red and leaves the rest as
    /// background.
    #[test]
    fn red_rect_is_red_inside_and_background_outside() {
        let sprites = [Sprite::new(1, rect(0.25, 0.5, 0.5, 0.25, 0.0)).fill("#ff0000")];
        let image = rasterize(&sprites, 8, 8, WHITE);
        assert_eq!(image.rgb.len(), 8 * 8 * 3);
        for y in 0..8 {
            for x in 0..8 {
                let inside = (2..6).contains(&x) && (4..6).contains(&y);
                let expected = if inside { RED } else { WHITE };
                assert_eq!(pixel(&image, x, y), expected, "({x}, {y})");
            }
        }
    }

    /// Colours parse in both hex forms, and anything else draws black.
    #[test]
    fn colours_parse_or_fall_back_to_black() {
        assert_eq!(parse_color("#f00"), RED);
        assert_eq!(parse_color("#1F77b4"), [0x1f, 0x77, 0xb4]);
        for bad in ["red", "#ff00", "#gg0000", "", "#", "ff0000", "#ff00é"] {
            assert_eq!(parse_color(bad), [0, 0, 0], "{bad:?}");
        }
    }

    /// A rect turned by 90° covers the transposed area about its centre.
    #[test]
    fn rotated_rect_turns_about_its_centre() {
        let angle = std::f32::consts::FRAC_PI_2;
        let sprites = [Sprite::new(1, rect(0.0, 0.375, 1.0, 0.25, angle)).fill("#f00")];
        let image = rasterize(&sprites, 8, 8, WHITE);
        assert_eq!(pixel(&image, 4, 0), RED);
        assert_eq!(pixel(&image, 3, 7), RED);
        assert_eq!(pixel(&image, 0, 4), WHITE);
        assert_eq!(pixel(&image, 7, 3), WHITE);
    }

    /// Circles, triangles and strokes land where they should; later z draws on
    /// top; text is skipped.
    #[test]
    fn shapes_strokes_and_order() {
        let sprites = [
            Sprite::new(
                3,
                Shape::Polygon {
                    points: vec![[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]],
                },
            )
            .fill("#00f")
            .z(-1),
            Sprite::new(
                1,
                Shape::Circle {
                    x: 0.5,
                    y: 0.5,
                    r: 0.2,
                },
            )
            .fill("#0f0"),
            Sprite::new(
                2,
                Shape::Line {
                    points: vec![[0.0, 0.95], [1.0, 0.95]],
                },
            )
            .stroke("#f00", 0.0),
            Sprite::new(
                4,
                Shape::Text {
                    x: 0.5,
                    y: 0.5,
                    text: "hi".into(),
                    size: 0.5,
                },
            )
            .fill("#000"),
        ];
        let image = rasterize(&sprites, 20, 20, WHITE);
        assert_eq!(pixel(&image, 1, 1), [0, 0, 255]);
        assert_eq!(pixel(&image, 19, 1), WHITE);
        assert_eq!(pixel(&image, 10, 10), [0, 255, 0]);
        assert_eq!(pixel(&image, 13, 10), [0, 255, 0]);
        assert_eq!(pixel(&image, 15, 10), WHITE);
        assert_eq!(pixel(&image, 10, 19), RED);
        assert_eq!(pixel(&image, 10, 17), WHITE);
    }

    /// Degenerate input (empty canvas, NaN or huge coordinates) neither panics
    /// nor draws outside the image.
    #[test]
    fn degenerate_input_is_harmless() {
        let sprites = [
            Sprite::new(1, rect(f32::NAN, 0.0, 1.0, 1.0, 0.0)).fill("#f00"),
            Sprite::new(2, rect(-1e30, -1e30, 2e30, 2e30, 1.0)).stroke("#f00", 1e20),
            Sprite::new(
                3,
                Shape::Circle {
                    x: f32::INFINITY,
                    y: 0.5,
                    r: f32::NAN,
                },
            )
            .fill("#f00"),
        ];
        assert!(rasterize(&sprites, 0, 0, WHITE).rgb.is_empty());
        assert_eq!(rasterize(&sprites, 4, 3, WHITE).rgb.len(), 36);
    }
}

//! What an environment draws: RGB pixels, or a list of sprites with stable ids.
//!
//! Sprites use normalized coordinates (0..1 across the canvas, y pointing down, as
//! in a browser canvas) so the participant page can draw them at any size. Because
//! each sprite keeps its id from frame to frame, only the sprites that changed need
//! to travel: [`SpriteDiff::between`] computes that change set.

use serde::{Deserialize, Serialize};

/// An RGB image, row-major, 3 bytes per pixel.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// A CSS colour string such as `"#1f77b4"`, passed straight to the canvas.
pub type Color = String;

/// The geometry of a sprite, in normalized canvas coordinates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "lowercase")]
pub enum Shape {
    /// An axis-aligned rectangle with top-left `(x, y)`, rotated by `angle` radians
    /// about its centre.
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        #[serde(default, skip_serializing_if = "is_zero")]
        angle: f32,
    },
    /// A circle; `r` is a fraction of the canvas width.
    Circle { x: f32, y: f32, r: f32 },
    /// An open polyline through `points`.
    Line { points: Vec<[f32; 2]> },
    /// A closed polygon through `points`.
    Polygon { points: Vec<[f32; 2]> },
    /// Text anchored at `(x, y)`; `size` is a fraction of the canvas height.
    Text {
        x: f32,
        y: f32,
        text: String,
        size: f32,
    },
    /// A named image (served by the environment's assets) in a rectangle.
    Image {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        name: String,
    },
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

/// One drawable thing with a stable id. Sprites draw in ascending `z`, then id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sprite {
    pub id: u32,
    #[serde(flatten)]
    pub shape: Shape,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill: Option<Color>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stroke: Option<Color>,
    /// Stroke width as a fraction of the canvas width.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub line_width: f32,
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub z: i32,
}

fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

impl Sprite {
    /// A sprite with the given id and shape, with no colours yet.
    pub fn new(id: u32, shape: Shape) -> Self {
        Sprite {
            id,
            shape,
            fill: None,
            stroke: None,
            line_width: 0.0,
            z: 0,
        }
    }

    /// Sets the fill colour.
    pub fn fill(mut self, color: &str) -> Self {
        self.fill = Some(color.to_string());
        self
    }

    /// Sets the stroke colour and width.
    pub fn stroke(mut self, color: &str, width: f32) -> Self {
        self.stroke = Some(color.to_string());
        self.line_width = width;
        self
    }

    /// Sets the drawing order.
    pub fn z(mut self, z: i32) -> Self {
        self.z = z;
        self
    }
}

/// What `render` returns.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Pixels(Image),
    Sprites(Vec<Sprite>),
}

/// The change from one sprite list to the next: sprites added or changed, and ids
/// removed. Applying it to the previous list (by id) gives the next one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpriteDiff {
    pub upsert: Vec<Sprite>,
    pub remove: Vec<u32>,
}

impl SpriteDiff {
    /// The diff that turns `prev` into `next`. Ids are expected to be unique in
    /// each list; both lists are usually short, so a sort-and-merge is cheap and
    /// needs no allocation beyond the result.
    pub fn between(prev: &[Sprite], next: &[Sprite]) -> SpriteDiff {
        let mut prev_sorted: Vec<&Sprite> = prev.iter().collect();
        let mut next_sorted: Vec<&Sprite> = next.iter().collect();
        prev_sorted.sort_unstable_by_key(|s| s.id);
        next_sorted.sort_unstable_by_key(|s| s.id);
        let mut diff = SpriteDiff::default();
        let (mut i, mut j) = (0, 0);
        while i < prev_sorted.len() || j < next_sorted.len() {
            match (prev_sorted.get(i), next_sorted.get(j)) {
                (Some(p), Some(n)) if p.id == n.id => {
                    if p != n {
                        diff.upsert.push((*n).clone());
                    }
                    i += 1;
                    j += 1;
                }
                (Some(p), Some(n)) if p.id < n.id => {
                    diff.remove.push(p.id);
                    i += 1;
                }
                (Some(_), Some(n)) => {
                    diff.upsert.push((*n).clone());
                    j += 1;
                }
                (Some(p), None) => {
                    diff.remove.push(p.id);
                    i += 1;
                }
                (None, Some(n)) => {
                    diff.upsert.push((*n).clone());
                    j += 1;
                }
                (None, None) => break,
            }
        }
        diff
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.upsert.is_empty() && self.remove.is_empty()
    }

    /// Applies the diff to a sprite list in place (what the browser does).
    pub fn apply(&self, sprites: &mut Vec<Sprite>) {
        sprites.retain(|s| !self.remove.contains(&s.id));
        for new in &self.upsert {
            match sprites.iter_mut().find(|s| s.id == new.id) {
                Some(old) => *old = new.clone(),
                None => sprites.push(new.clone()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(id: u32, x: f32) -> Sprite {
        Sprite::new(
            id,
            Shape::Rect {
                x,
                y: 0.5,
                w: 0.125,
                h: 0.125,
                angle: 0.0,
            },
        )
        .fill("#000")
    }

    /// A diff carries only changed, added and removed sprites, and applying it
    /// reproduces the next list.
    #[test]
    fn diff_carries_only_changes() {
        let prev = vec![rect(1, 0.1), rect(2, 0.2), rect(3, 0.3)];
        let next = vec![rect(3, 0.35), rect(1, 0.1), rect(4, 0.4)];
        let diff = SpriteDiff::between(&prev, &next);
        assert_eq!(diff.remove, vec![2]);
        let ids: Vec<u32> = diff.upsert.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![3, 4]);
        let mut applied = prev.clone();
        diff.apply(&mut applied);
        applied.sort_by_key(|s| s.id);
        let mut expected = next.clone();
        expected.sort_by_key(|s| s.id);
        assert_eq!(applied, expected);
        assert!(SpriteDiff::between(&next, &next).is_empty());
    }

    /// Sprites serialize flat, with the shape as a tag and defaults left out.
    #[test]
    fn sprite_json_is_flat_and_compact() {
        let json = serde_json::to_value(rect(7, 0.25)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": 7, "shape": "rect", "x": 0.25, "y": 0.5,
                               "w": 0.125, "h": 0.125, "fill": "#000"})
        );
        let back: Sprite = serde_json::from_value(json).unwrap();
        assert_eq!(back, rect(7, 0.25));
    }
}

//! Setting a preview's words in the suggested faces: each character in the pairing's face when
//! it has the glyph, else in the bundle's CJK face; lines broken at spaces (Latin) or between
//! any two CJK characters, the size shrunk until the text fits its box, glyph outlines
//! rasterised with coverage (ab_glyph) and blended onto the canvas.
//!
//! Latin and Chinese need no complex shaping: advances and the face's kerning place every
//! glyph, as a browser would without ligatures.

use ab_glyph::{Font, FontRef, GlyphId, PxScale, ScaleFont};
use image::RgbImage;

use crate::colour::Rgb;

/// Lines a headline or a body may take before it is shrunk further.
pub(crate) const MAX_LINES: usize = 2;
/// Smallest size, in pixels, text is set at; below it a line is cut with an ellipsis.
const MIN_SIZE: f32 = 9.0;
/// Each shrinking step multiplies the size by this.
const SHRINK: f32 = 0.92;
/// Line height as a multiple of the size: room for CJK glyphs, which fill the em box.
const LINE_HEIGHT: f32 = 1.3;

/// A face to set text in, and the CJK face behind it.
pub(crate) struct Faces<'a> {
    pub(crate) primary: FontRef<'a>,
    pub(crate) cjk: FontRef<'a>,
}

/// A box in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TextBox {
    pub(crate) left: f32,
    pub(crate) top: f32,
    pub(crate) width: f32,
    pub(crate) height: f32,
}

/// Text broken into lines at a size that fits.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SetText {
    pub(crate) size: f32,
    pub(crate) lines: Vec<String>,
}

impl SetText {
    /// The height the lines take.
    pub(crate) fn height(&self) -> f32 {
        self.lines.len() as f32 * self.size * LINE_HEIGHT
    }
}

/// Whether a character is set in the CJK face rather than the primary one.
fn uses_cjk(faces: &Faces<'_>, character: char) -> bool {
    faces.primary.glyph_id(character) == GlyphId(0) && faces.cjk.glyph_id(character) != GlyphId(0)
}

/// Whether a line may break before or after this character without a space (CJK text).
fn breaks_anywhere(character: char) -> bool {
    matches!(u32::from(character), 0x2E80..=0x9FFF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF)
}

/// Width in pixels of `text` set at `size`.
pub(crate) fn width(faces: &Faces<'_>, text: &str, size: f32) -> f32 {
    place(faces, text, size)
        .last()
        .map_or(0.0, |glyph| glyph.end)
}

/// One placed glyph: which face, which glyph, where its pen position starts and ends.
struct Placed {
    cjk: bool,
    id: GlyphId,
    x: f32,
    end: f32,
}

fn place(faces: &Faces<'_>, text: &str, size: f32) -> Vec<Placed> {
    let scale = PxScale::from(size);
    let (primary, cjk) = (faces.primary.as_scaled(scale), faces.cjk.as_scaled(scale));
    let mut placed: Vec<Placed> = Vec::with_capacity(text.len());
    let mut x = 0.0f32;
    for character in text.chars() {
        let in_cjk = uses_cjk(faces, character);
        let id = if in_cjk {
            cjk.glyph_id(character)
        } else {
            primary.glyph_id(character)
        };
        if let Some(previous) = placed.last().filter(|previous| previous.cjk == in_cjk) {
            x += if in_cjk {
                cjk.kern(previous.id, id)
            } else {
                primary.kern(previous.id, id)
            };
        }
        let advance = if in_cjk {
            cjk.h_advance(id)
        } else {
            primary.h_advance(id)
        };
        placed.push(Placed {
            cjk: in_cjk,
            id,
            x,
            end: x + advance,
        });
        x += advance;
    }
    placed
}

/// Splits text into the pieces a line may break between: words with their following space, and
/// each CJK character on its own.
fn pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (offset, character) in text.char_indices() {
        let end = offset + character.len_utf8();
        if breaks_anywhere(character) {
            if start < offset {
                pieces.push(&text[start..offset]);
            }
            pieces.push(&text[offset..end]);
            start = end;
        } else if character == ' ' {
            pieces.push(&text[start..end]);
            start = end;
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

/// Greedy line breaking of `text` at `size` within `max_width`.
fn break_lines(faces: &Faces<'_>, text: &str, size: f32, max_width: f32) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for piece in pieces(text) {
        let candidate = format!("{line}{piece}");
        if line.is_empty() || width(faces, candidate.trim_end(), size) <= max_width {
            line = candidate;
        } else {
            lines.push(line.trim_end().to_string());
            line = piece.trim_start().to_string();
        }
    }
    if !line.trim().is_empty() {
        lines.push(line.trim_end().to_string());
    }
    lines
}

/// The largest size up to `start` at which `text` fits `area` in at most [`MAX_LINES`] lines;
/// at [`MIN_SIZE`] what does not fit is cut with an ellipsis, so text never leaves its box.
pub(crate) fn fit(faces: &Faces<'_>, text: &str, start: f32, area: TextBox) -> SetText {
    let mut size = start.max(MIN_SIZE);
    loop {
        let lines = break_lines(faces, text, size, area.width);
        let set = SetText { size, lines };
        let fits = set.lines.len() <= MAX_LINES
            && set.height() <= area.height
            && set
                .lines
                .iter()
                .all(|line| width(faces, line, size) <= area.width);
        if fits || size <= MIN_SIZE {
            return if fits { set } else { cut(faces, set, area) };
        }
        size = (size * SHRINK).max(MIN_SIZE);
    }
}

/// Keeps the lines that fit and ends the last with an ellipsis, shortened until it fits.
fn cut(faces: &Faces<'_>, set: SetText, area: TextBox) -> SetText {
    let room = ((area.height / (set.size * LINE_HEIGHT)).floor() as usize).clamp(1, MAX_LINES);
    let mut lines: Vec<String> = set.lines.into_iter().take(room).collect();
    if let Some(last) = lines.last_mut() {
        let mut kept: Vec<char> = last.chars().collect();
        loop {
            let candidate: String = kept.iter().collect::<String>() + "…";
            if kept.is_empty() || width(faces, &candidate, set.size) <= area.width {
                *last = candidate;
                break;
            }
            kept.pop();
        }
    }
    SetText {
        size: set.size,
        lines,
    }
}

/// The box each line of `set` takes when drawn in `area` (see [`draw`]).
pub(crate) fn line_boxes(
    faces: &Faces<'_>,
    set: &SetText,
    area: TextBox,
    centred: bool,
) -> Vec<TextBox> {
    let pitch = set.size * LINE_HEIGHT;
    (0..)
        .zip(&set.lines)
        .map(|(number, line)| {
            let line_width = width(faces, line, set.size);
            TextBox {
                left: line_left(area, line_width, centred),
                top: area.top + number as f32 * pitch,
                width: line_width,
                height: pitch,
            }
        })
        .collect()
}

fn line_left(area: TextBox, line_width: f32, centred: bool) -> f32 {
    if centred {
        area.left + (area.width - line_width) / 2.0
    } else {
        area.left
    }
}

/// Draws set text from the top of `area`, each line centred or ranged left, in `colour`.
pub(crate) fn draw(
    canvas: &mut RgbImage,
    faces: &Faces<'_>,
    set: &SetText,
    area: TextBox,
    centred: bool,
    colour: Rgb,
) {
    let scale = PxScale::from(set.size);
    let ascent = faces.primary.as_scaled(scale).ascent();
    for (number, line) in set.lines.iter().enumerate() {
        let left = line_left(area, width(faces, line, set.size), centred);
        let baseline = area.top + number as f32 * set.size * LINE_HEIGHT + ascent;
        for glyph in place(faces, line, set.size) {
            let font = if glyph.cjk {
                &faces.cjk
            } else {
                &faces.primary
            };
            let positioned = glyph
                .id
                .with_scale_and_position(scale, ab_glyph::point(left + glyph.x, baseline));
            if let Some(outline) = font.outline_glyph(positioned) {
                let bounds = outline.px_bounds();
                outline.draw(|x, y, coverage| {
                    blend(
                        canvas,
                        bounds.min.x as i64 + i64::from(x),
                        bounds.min.y as i64 + i64::from(y),
                        colour,
                        coverage,
                    );
                });
            }
        }
    }
}

fn blend(canvas: &mut RgbImage, x: i64, y: i64, colour: Rgb, coverage: f32) {
    let (Ok(x), Ok(y)) = (u32::try_from(x), u32::try_from(y)) else {
        return;
    };
    if x >= canvas.width() || y >= canvas.height() {
        return;
    }
    let coverage = coverage.clamp(0.0, 1.0);
    let pixel = canvas.get_pixel_mut(x, y);
    for (channel, target) in pixel.0.iter_mut().zip([colour.r, colour.g, colour.b]) {
        let mixed = f32::from(*channel) + (f32::from(target) - f32::from(*channel)) * coverage;
        *channel = mixed.round().clamp(0.0, 255.0) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::test_support::shipped;

    /// Issue 17: CJK glyphs are never clipped. In every pairing's heading and body faces, with
    /// the pairing's CJK faces behind them, mixed Chinese and Latin text set to fit a box inks
    /// pixels inside it and none outside, at a roomy size and at a cramped one.
    #[test]
    fn mixed_text_stays_whole_inside_its_box_in_every_pairings_faces() {
        let bundle = &shipped().bundle;
        let faces = bundle
            .typefaces
            .as_ref()
            .expect("the shipped bundle ships faces");
        let font = |bytes: &'static [u8]| FontRef::try_from_slice(bytes).expect("a font");
        let paper = image::Rgb([255, 255, 255]);
        for pairing in &bundle.fonts.pairings {
            let roles = [
                (
                    &faces.heading[&pairing.heading],
                    &faces.cjk_heading[&pairing.heading_cjk],
                ),
                (
                    &faces.body[&pairing.body],
                    &faces.cjk_body[&pairing.body_cjk],
                ),
            ];
            for (latin, cjk) in roles {
                let set_in = Faces {
                    primary: font(&latin.bytes),
                    cjk: font(&cjk.bytes),
                };
                for (width, height) in [(400.0, 160.0), (120.0, 40.0)] {
                    let area = TextBox {
                        left: 40.0,
                        top: 30.0,
                        width,
                        height,
                    };
                    let set = fit(&set_in, "花好月圆 Spring 礼盒", 120.0, area);
                    let mut canvas = RgbImage::from_pixel(520, 240, paper);
                    draw(&mut canvas, &set_in, &set, area, true, Rgb::new(0, 0, 0));
                    let mut inked = 0;
                    for (x, y, pixel) in canvas.enumerate_pixels() {
                        if *pixel == paper {
                            continue;
                        }
                        inked += 1;
                        let (x, y) = (x as f32, y as f32);
                        assert!(
                            x + 1.0 >= area.left
                                && x <= area.left + area.width
                                && y + 1.0 >= area.top
                                && y <= area.top + area.height,
                            "{} / {}: ink at ({x}, {y}) outside {area:?}",
                            latin.family,
                            cjk.family
                        );
                    }
                    assert!(
                        inked > 0,
                        "{} / {}: nothing drawn",
                        latin.family,
                        cjk.family
                    );
                }
            }
        }
    }
}

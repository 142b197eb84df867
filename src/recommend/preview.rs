//! Flat PNG mock-ups of a packaging front panel, drawn from a palette and a layout template:
//! shapes for the logo and the product, and in the text zone the brief's words set in the
//! suggested faces (`typeset`), or grey bars when the bundle ships no faces. No photos, so the
//! output is small and byte-for-byte deterministic.

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, RgbImage};
use thiserror::Error;

use super::typeset::{self, Faces, TextBox};
use crate::colour::{contrast_ratio, Lab, Rgb};

/// WCAG 2.x AA for text: the copy is drawn in whichever of the palette's text and background
/// roles stands out more from what lies under it, or black or white below this.
const MIN_COPY_CONTRAST: f32 = 4.5;
/// Largest preview PNG a reply carries: base64 makes it 54.6 KiB, which leaves the rest of a
/// reply within `serve::REPLY_BYTES`. Flat shapes and a few lines of text stay far below it.
pub const MAX_PREVIEW_PNG_BYTES: usize = 40 * 1024;
/// Largest accepted width or height, which bounds the pixel buffer at 12 MB.
pub(crate) const MAX_PREVIEW_SIDE: u32 = 2048;
/// Smallest accepted width or height; below this the shapes degenerate into noise.
pub(crate) const MIN_PREVIEW_SIDE: u32 = 32;
/// Most swatches the strip shows.
pub(crate) const MAX_SWATCHES: usize = 12;

/// Share of the height taken by the swatch strip.
const SWATCH_STRIP_FRACTION: f32 = 0.09;
/// How far the product's inner shape is mixed towards white.
const PRODUCT_HIGHLIGHT_MIX: f32 = 0.45;
/// How far the rule above the swatches is mixed from the background towards the text colour.
const RULE_MIX: f32 = 0.35;

/// Why a preview could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum PreviewError {
    /// Width or height outside `MIN_PREVIEW_SIDE..=MAX_PREVIEW_SIDE`.
    #[error("preview size {width}×{height} is outside {MIN_PREVIEW_SIDE}..={MAX_PREVIEW_SIDE}")]
    InvalidSize {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
    },
    /// More palette colours than `MAX_SWATCHES`.
    #[error("{count} swatches requested; at most {MAX_SWATCHES} fit the strip")]
    TooManyColours {
        /// Requested number of swatches.
        count: usize,
    },
    /// The PNG encoder failed.
    #[error("PNG encoding failed: {0}")]
    Encode(String),
    /// The PNG came out larger than [`MAX_PREVIEW_PNG_BYTES`].
    #[error("preview PNG of {0} bytes is over the {MAX_PREVIEW_PNG_BYTES}-byte limit")]
    TooLarge(usize),
    /// A face the bundle ships is not a font ab_glyph can read.
    #[error("font: {0}")]
    Font(String),
}

/// Which element of the front panel a zone holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ZoneKind {
    /// Brand mark.
    Logo,
    /// Product shot or illustration.
    Product,
    /// Name, claims and copy.
    Text,
}

impl ZoneKind {
    /// Parses the zone names used by `catalogues/layouts.json` (`logo`, `product`, `text`).
    #[cfg(test)]
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "logo" => Some(Self::Logo),
            "product" => Some(Self::Product),
            "text" => Some(Self::Text),
            _ => None,
        }
    }

    /// The name used by `catalogues/layouts.json`.
    #[cfg(test)]
    pub fn name(self) -> &'static str {
        match self {
            Self::Logo => "logo",
            Self::Product => "product",
            Self::Text => "text",
        }
    }
}

/// A box in panel coordinates normalised to 0..=1 (origin top left).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Zone {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

impl Zone {
    /// This zone cut to the panel; NaN counts as 0 so malformed templates draw nothing.
    pub(crate) fn clamped(&self) -> Zone {
        let finite = |value: f32| if value.is_nan() { 0.0 } else { value };
        let x = finite(self.x).clamp(0.0, 1.0);
        let y = finite(self.y).clamp(0.0, 1.0);
        Zone {
            x,
            y,
            w: finite(self.w).clamp(0.0, 1.0 - x),
            h: finite(self.h).clamp(0.0, 1.0 - y),
        }
    }
}

/// What to draw: the canvas size, the palette with its roles, and the layout zones.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PreviewSpec {
    /// Canvas width in pixels.
    pub width: u32,
    /// Canvas height in pixels.
    pub height: u32,
    /// Every palette colour, shown as swatches along the bottom.
    pub colours: Vec<Rgb>,
    /// Panel background role.
    pub background: Rgb,
    /// Primary role, used for the logo.
    pub primary: Rgb,
    /// Accent role, used for the product.
    pub accent: Rgb,
    /// Text role, used for the copy bars.
    pub text: Rgb,
    /// Layout zones, normalised to the panel above the swatch strip.
    pub zones: Vec<(ZoneKind, Zone)>,
    /// The words for the text zone and their faces; grey bars stand for them without.
    pub copy: Option<PreviewCopy>,
}

/// The words a preview sets in its text zone, and the faces (TrueType bytes) it sets them in.
#[derive(Clone, PartialEq)]
pub(crate) struct PreviewCopy {
    /// Set large in the heading face: the product as the brief names it.
    pub headline: String,
    /// A line in the body face.
    pub body: String,
    pub heading_face: std::sync::Arc<[u8]>,
    pub body_face: std::sync::Arc<[u8]>,
    /// For headline characters the heading face lacks (Chinese).
    pub heading_cjk_face: std::sync::Arc<[u8]>,
    /// For body characters the body face lacks.
    pub body_cjk_face: std::sync::Arc<[u8]>,
}

impl std::fmt::Debug for PreviewCopy {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PreviewCopy")
            .field("headline", &self.headline)
            .field("body", &self.body)
            .field("heading_face_bytes", &self.heading_face.len())
            .field("body_face_bytes", &self.body_face.len())
            .field("heading_cjk_face_bytes", &self.heading_cjk_face.len())
            .field("body_cjk_face_bytes", &self.body_cjk_face.len())
            .finish()
    }
}

/// A zone in pixel coordinates.
#[derive(Debug, Clone, Copy)]
struct PixelBox {
    left: f32,
    top: f32,
    width: f32,
    height: f32,
}

impl PixelBox {
    fn right(&self) -> f32 {
        self.left + self.width
    }

    fn bottom(&self) -> f32 {
        self.top + self.height
    }

    fn centre(&self) -> (f32, f32) {
        (self.left + self.width / 2.0, self.top + self.height / 2.0)
    }

    fn inset(&self, fraction_x: f32, fraction_y: f32) -> PixelBox {
        PixelBox {
            left: self.left + self.width * fraction_x,
            top: self.top + self.height * fraction_y,
            width: self.width * (1.0 - 2.0 * fraction_x),
            height: self.height * (1.0 - 2.0 * fraction_y),
        }
    }
}

/// Height in pixels of the swatch strip for a canvas of `height` pixels (0 without colours).
pub(crate) fn swatch_strip_height(height: u32, colour_count: usize) -> u32 {
    if colour_count == 0 {
        return 0;
    }
    ((height as f32 * SWATCH_STRIP_FRACTION).round() as u32).max(1)
}

/// Thickness in pixels of the rule drawn along the top of the swatch strip.
pub(crate) fn swatch_rule_thickness(height: u32) -> u32 {
    (height / 240).max(1)
}

/// Renders the mock-up as PNG bytes; identical specs give identical bytes.
pub(crate) fn render_preview(spec: &PreviewSpec) -> Result<Vec<u8>, PreviewError> {
    render_within(spec, MAX_PREVIEW_PNG_BYTES)
}

/// [`render_preview`] with the PNG held to `max_bytes`.
fn render_within(spec: &PreviewSpec, max_bytes: usize) -> Result<Vec<u8>, PreviewError> {
    let size_range = MIN_PREVIEW_SIDE..=MAX_PREVIEW_SIDE;
    if !size_range.contains(&spec.width) || !size_range.contains(&spec.height) {
        return Err(PreviewError::InvalidSize {
            width: spec.width,
            height: spec.height,
        });
    }
    if spec.colours.len() > MAX_SWATCHES {
        return Err(PreviewError::TooManyColours {
            count: spec.colours.len(),
        });
    }

    let mut canvas = RgbImage::from_pixel(spec.width, spec.height, to_pixel(spec.background));
    let strip_height = swatch_strip_height(spec.height, spec.colours.len());
    let panel_height = spec.height - strip_height;

    // Fixed order rather than template order: a logo often overlaps the product and must stay
    // visible, and copy sits above the product art.
    for kind in [ZoneKind::Product, ZoneKind::Text, ZoneKind::Logo] {
        for (_, zone) in spec
            .zones
            .iter()
            .filter(|(zone_kind, _)| *zone_kind == kind)
        {
            let zone = zone.clamped();
            let area = PixelBox {
                left: zone.x * spec.width as f32,
                top: zone.y * panel_height as f32,
                width: zone.w * spec.width as f32,
                height: zone.h * panel_height as f32,
            };
            match kind {
                ZoneKind::Product => draw_product(&mut canvas, area, spec.accent),
                ZoneKind::Text => match &spec.copy {
                    Some(copy) => draw_copy(&mut canvas, area, copy, spec)?,
                    None => draw_text_lines(&mut canvas, area, spec.text),
                },
                ZoneKind::Logo => draw_logo(&mut canvas, area, spec.primary),
            }
        }
    }
    draw_swatches(&mut canvas, &spec.colours, panel_height);
    if !spec.colours.is_empty() {
        // The rule separates the panel from a swatch that repeats the background colour.
        let rule = mix(spec.background, spec.text, RULE_MIX);
        let rule_rows = swatch_rule_thickness(spec.height);
        for row in panel_height..(panel_height + rule_rows).min(spec.height) {
            for column in 0..spec.width {
                canvas.put_pixel(column, row, to_pixel(rule));
            }
        }
    }
    let png = encode_png(&canvas)?;
    if png.len() > max_bytes {
        return Err(PreviewError::TooLarge(png.len()));
    }
    Ok(png)
}

/// Linear interpolation in CIELAB from `from` (amount 0) to `to` (amount 1).
fn mix(from: Rgb, to: Rgb, amount: f32) -> Rgb {
    let (start, end) = (from.to_lab(), to.to_lab());
    let blend = |a: f32, b: f32| a + (b - a) * amount;
    Lab::new(
        blend(start.l, end.l),
        blend(start.a, end.a),
        blend(start.b, end.b),
    )
    .to_rgb()
}

fn to_pixel(colour: Rgb) -> image::Rgb<u8> {
    image::Rgb([colour.r, colour.g, colour.b])
}

/// `colour` mixed towards white in CIELAB, so the tint keeps its hue.
fn lighten(colour: Rgb, amount: f32) -> Rgb {
    let lab = colour.to_lab();
    Lab::new(
        lab.l + (100.0 - lab.l) * amount,
        lab.a * (1.0 - amount),
        lab.b * (1.0 - amount),
    )
    .to_rgb()
}

/// Fills every pixel whose centre satisfies `inside`, scanning only the box's bounding pixels.
fn fill_where(
    canvas: &mut RgbImage,
    bounds: PixelBox,
    colour: Rgb,
    inside: impl Fn(f32, f32) -> bool,
) {
    let (width, height) = canvas.dimensions();
    let first_column = bounds.left.floor().max(0.0) as u32;
    let first_row = bounds.top.floor().max(0.0) as u32;
    let end_column = (bounds.right().ceil().max(0.0) as u32).min(width);
    let end_row = (bounds.bottom().ceil().max(0.0) as u32).min(height);
    let pixel = to_pixel(colour);
    for row in first_row..end_row {
        for column in first_column..end_column {
            if inside(column as f32 + 0.5, row as f32 + 0.5) {
                canvas.put_pixel(column, row, pixel);
            }
        }
    }
}

fn fill_rounded_rect(canvas: &mut RgbImage, area: PixelBox, radius: f32, colour: Rgb) {
    let radius = radius.clamp(0.0, area.width.min(area.height) / 2.0);
    fill_where(canvas, area, colour, |x, y| {
        if x < area.left || x >= area.right() || y < area.top || y >= area.bottom() {
            return false;
        }
        // Distance past the inner rectangle whose corners are the arc centres.
        let dx = (area.left + radius - x)
            .max(x - (area.right() - radius))
            .max(0.0);
        let dy = (area.top + radius - y)
            .max(y - (area.bottom() - radius))
            .max(0.0);
        dx * dx + dy * dy <= radius * radius
    });
}

fn fill_ellipse(canvas: &mut RgbImage, area: PixelBox, colour: Rgb) {
    let (centre_x, centre_y) = area.centre();
    let (radius_x, radius_y) = (area.width / 2.0, area.height / 2.0);
    if radius_x <= 0.0 || radius_y <= 0.0 {
        return;
    }
    fill_where(canvas, area, colour, |x, y| {
        let nx = (x - centre_x) / radius_x;
        let ny = (y - centre_y) / radius_y;
        nx * nx + ny * ny <= 1.0
    });
}

fn draw_product(canvas: &mut RgbImage, area: PixelBox, accent: Rgb) {
    let corner = area.width.min(area.height) * 0.06;
    fill_rounded_rect(canvas, area, corner, accent);
    let inner = area.inset(0.2, 0.18);
    fill_ellipse(canvas, inner, lighten(accent, PRODUCT_HIGHLIGHT_MIX));
}

fn draw_logo(canvas: &mut RgbImage, area: PixelBox, primary: Rgb) {
    let aspect = if area.height > 0.0 {
        area.width / area.height
    } else {
        0.0
    };
    if (0.6..=1.67).contains(&aspect) {
        // A near-square zone reads best as a round badge centred in it.
        let diameter = area.width.min(area.height);
        let (centre_x, centre_y) = area.centre();
        let badge = PixelBox {
            left: centre_x - diameter / 2.0,
            top: centre_y - diameter / 2.0,
            width: diameter,
            height: diameter,
        };
        fill_ellipse(canvas, badge, primary);
    } else {
        let radius = area.width.min(area.height) / 2.0;
        fill_rounded_rect(canvas, area, radius, primary);
    }
}

/// The colour copy is set in over the colours in `under` (what lies beneath its lines: the
/// background, and any product art it crosses): the palette's text role, or its
/// background role if that stands out more (copy over the product art), judged by the colour it
/// stands out from least; black or white when neither reaches [`MIN_COPY_CONTRAST`] against
/// every one.
pub(crate) fn copy_colour(under: &[Rgb], text: Rgb, background: Rgb) -> Rgb {
    let least = |colour: Rgb| {
        under
            .iter()
            .map(|&beneath| contrast_ratio(colour, beneath))
            .fold(f32::INFINITY, f32::min)
    };
    let best = |first: Rgb, second: Rgb| {
        if least(first) >= least(second) {
            first
        } else {
            second
        }
    };
    let role = best(text, background);
    if least(role) >= MIN_COPY_CONTRAST {
        role
    } else {
        best(Rgb::new(0, 0, 0), Rgb::new(255, 255, 255))
    }
}

/// Adds to `found` the colours of the canvas inside `area` it does not hold yet (flat shapes: a
/// handful).
fn colours_under(canvas: &RgbImage, area: PixelBox, found: &mut Vec<Rgb>) {
    let (width, height) = canvas.dimensions();
    let columns = (area.left.max(0.0) as u32)..(area.right().ceil().max(0.0) as u32).min(width);
    let rows = (area.top.max(0.0) as u32)..(area.bottom().ceil().max(0.0) as u32).min(height);
    for row in rows {
        for column in columns.clone() {
            let pixel = canvas.get_pixel(column, row);
            let colour = Rgb::new(pixel[0], pixel[1], pixel[2]);
            if !found.contains(&colour) {
                found.push(colour);
            }
        }
    }
}

/// The headline in the heading face over the top of the zone, the body line below it in the
/// body face, both shrunk (and at the smallest size cut) to fit.
fn draw_copy(
    canvas: &mut RgbImage,
    area: PixelBox,
    copy: &PreviewCopy,
    spec: &PreviewSpec,
) -> Result<(), PreviewError> {
    if area.width < 4.0 || area.height < 4.0 {
        return Ok(());
    }
    fn font(bytes: &[u8]) -> Result<ab_glyph::FontRef<'_>, PreviewError> {
        ab_glyph::FontRef::try_from_slice(bytes)
            .map_err(|error| PreviewError::Font(error.to_string()))
    }
    let heading = Faces {
        primary: font(&copy.heading_face)?,
        cjk: font(&copy.heading_cjk_face)?,
    };
    let body = Faces {
        primary: font(&copy.body_face)?,
        cjk: font(&copy.body_cjk_face)?,
    };
    let centred = ((area.left + area.width / 2.0) / canvas.width() as f32 - 0.5).abs() < 0.04;
    let inner = area.inset(0.02, 0.04);
    let headline_box = TextBox {
        left: inner.left,
        top: inner.top,
        width: inner.width,
        height: inner.height * 0.62,
    };
    let headline = typeset::fit(
        &heading,
        &copy.headline,
        headline_box.height / 1.3,
        headline_box,
    );
    set_block(canvas, &heading, &headline, headline_box, centred, spec);
    let gap = headline.size * 0.25;
    let body_top = inner.top + headline.height() + gap;
    let body_box = TextBox {
        left: inner.left,
        top: body_top,
        width: inner.width,
        height: (inner.bottom() - body_top).max(0.0),
    };
    if body_box.height >= 9.0 && !copy.body.trim().is_empty() {
        let start = (headline.size * 0.42).min(body_box.height / 1.3);
        let body_set = typeset::fit(&body, &copy.body, start, body_box);
        if body_set.height() <= body_box.height {
            set_block(canvas, &body, &body_set, body_box, centred, spec);
        }
    }
    Ok(())
}

/// Draws set text in the colour that stands out from what lies beneath its lines.
fn set_block(
    canvas: &mut RgbImage,
    faces: &Faces<'_>,
    set: &typeset::SetText,
    area: TextBox,
    centred: bool,
    spec: &PreviewSpec,
) {
    let mut under = Vec::new();
    for line in typeset::line_boxes(faces, set, area, centred) {
        let line = PixelBox {
            left: line.left,
            top: line.top,
            width: line.width,
            height: line.height,
        };
        colours_under(canvas, line, &mut under);
    }
    if under.is_empty() {
        under.push(spec.background);
    }
    let colour = copy_colour(&under, spec.text, spec.background);
    typeset::draw(canvas, faces, set, area, centred, colour);
}

fn draw_text_lines(canvas: &mut RgbImage, area: PixelBox, text: Rgb) {
    /// Body line widths as fractions of the zone, cycled, so the block looks like set copy.
    const BODY_WIDTHS: [f32; 4] = [0.94, 0.86, 0.9, 0.58];
    const MAX_BODY_LINES: usize = 4;
    if area.width < 1.0 || area.height < 1.0 {
        return;
    }
    let heading_thickness = (area.height * 0.2).clamp(1.0, 24.0);
    let body_thickness = (heading_thickness * 0.38).max(1.0);
    let body_pitch = body_thickness * 2.2;
    // Copy centred on the panel's axis is centred; anything else is ranged left.
    let centred = ((area.left + area.width / 2.0) / canvas.width() as f32 - 0.5).abs() < 0.04;
    let mut bar = |top: f32, thickness: f32, fraction: f32| {
        let width = area.width * fraction;
        let left = if centred {
            area.left + (area.width - width) / 2.0
        } else {
            area.left
        };
        let line = PixelBox {
            left,
            top,
            width,
            height: thickness,
        };
        fill_rounded_rect(canvas, line, thickness / 2.0, text);
    };
    bar(area.top, heading_thickness, 0.78);
    let mut top = area.top + heading_thickness * 1.7;
    for width in BODY_WIDTHS.iter().cycle().take(MAX_BODY_LINES) {
        if top + body_thickness > area.bottom() {
            break;
        }
        bar(top, body_thickness, *width);
        top += body_pitch;
    }
}

fn draw_swatches(canvas: &mut RgbImage, colours: &[Rgb], top: u32) {
    let width = canvas.width();
    let count = colours.len() as u32;
    if count == 0 {
        return;
    }
    for (index, colour) in (0u32..).zip(colours) {
        // Integer edges so swatches tile the strip exactly, the last absorbing the remainder.
        let left = width * index / count;
        let right = width * (index + 1) / count;
        let pixel = to_pixel(*colour);
        for row in top..canvas.height() {
            for column in left..right {
                canvas.put_pixel(column, row, pixel);
            }
        }
    }
}

fn encode_png(canvas: &RgbImage) -> Result<Vec<u8>, PreviewError> {
    let mut bytes = Vec::new();
    // Default rather than Best: within 1 % of its size for these flat panels, in two thirds of the
    // time (8 against 13 ms at 720×960); Fast doubles the size.
    PngEncoder::new_with_quality(&mut bytes, CompressionType::Default, FilterType::Adaptive)
        .write_image(
            canvas.as_raw(),
            canvas.width(),
            canvas.height(),
            ExtendedColorType::Rgb8,
        )
        .map_err(|error| PreviewError::Encode(error.to_string()))?;
    Ok(bytes)
}

#[cfg(test)]
#[path = "preview_unit_tests.rs"]
mod tests;

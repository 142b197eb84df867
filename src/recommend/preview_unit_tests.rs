//! Shapes, sizes and limits of the preview drawing, on hand-made specs.

use super::*;

fn hex(text: &str) -> Rgb {
    Rgb::parse_hex(text).expect("test colour is valid")
}

/// At the size the shape tests were drawn for (the reply's previews are larger).
fn sample_spec() -> PreviewSpec {
    PreviewSpec {
        width: 360,
        height: 480,
        colours: ["#F4EFE6", "#2F5D50", "#E07A5F", "#1D2B2A", "#F2CC8F"]
            .into_iter()
            .map(hex)
            .collect(),
        background: hex("#F4EFE6"),
        primary: hex("#2F5D50"),
        accent: hex("#E07A5F"),
        text: hex("#1D2B2A"),
        copy: None,
        zones: vec![
            (
                ZoneKind::Logo,
                Zone {
                    x: 0.4,
                    y: 0.05,
                    w: 0.2,
                    h: 0.15,
                },
            ),
            (
                ZoneKind::Product,
                Zone {
                    x: 0.15,
                    y: 0.25,
                    w: 0.7,
                    h: 0.42,
                },
            ),
            (
                ZoneKind::Text,
                Zone {
                    x: 0.12,
                    y: 0.74,
                    w: 0.76,
                    h: 0.2,
                },
            ),
        ],
    }
}

fn decode(bytes: &[u8]) -> RgbImage {
    image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .expect("preview is a valid PNG")
        .into_rgb8()
}

fn at(image: &RgbImage, x: u32, y: u32) -> Rgb {
    let pixel = image.get_pixel(x, y);
    Rgb::new(pixel[0], pixel[1], pixel[2])
}

#[test]
fn a_face_that_is_not_a_font_is_a_clear_error() {
    let garbage: std::sync::Arc<[u8]> = std::sync::Arc::from(&b"not a font"[..]);
    let spec = PreviewSpec {
        copy: Some(PreviewCopy {
            headline: "Tea".into(),
            body: "calm".into(),
            heading_face: garbage.clone(),
            body_face: garbage.clone(),
            heading_cjk_face: garbage.clone(),
            body_cjk_face: garbage,
        }),
        ..sample_spec()
    };
    assert!(matches!(render_preview(&spec), Err(PreviewError::Font(_))));
}

#[test]
fn a_png_over_the_cap_is_refused_not_sent() {
    let size = render_preview(&sample_spec()).expect("renders").len();
    assert_eq!(
        render_within(&sample_spec(), size - 1),
        Err(PreviewError::TooLarge(size))
    );
    assert!(PreviewError::TooLarge(size)
        .to_string()
        .contains(&MAX_PREVIEW_PNG_BYTES.to_string()));
}

#[test]
fn renders_a_png_of_the_requested_size() {
    let spec = sample_spec();
    let bytes = render_preview(&spec).expect("renders");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(decode(&bytes).dimensions(), (360, 480));
    let wide = PreviewSpec {
        width: 500,
        height: 300,
        ..spec
    };
    assert_eq!(
        decode(&render_preview(&wide).expect("renders")).dimensions(),
        (500, 300)
    );
}

#[test]
fn panel_without_zones_is_background_at_its_centre() {
    let spec = PreviewSpec {
        zones: Vec::new(),
        ..sample_spec()
    };
    let image = decode(&render_preview(&spec).expect("renders"));
    let panel_height = 480 - swatch_strip_height(480, spec.colours.len());
    assert_eq!(at(&image, 180, panel_height / 2), spec.background);
}

#[test]
fn zones_are_drawn_in_their_role_colours() {
    let spec = sample_spec();
    let image = decode(&render_preview(&spec).expect("renders"));
    let panel_height = (480 - swatch_strip_height(480, spec.colours.len())) as f32;
    let point = |x: f32, y: f32| at(&image, (x * 360.0) as u32, (y * panel_height) as u32);
    // Margin beside the product.
    assert_eq!(point(0.05, 0.5), spec.background);
    // Logo badge centre.
    assert_eq!(point(0.5, 0.125), spec.primary);
    // Product: solid accent near its edge, lighter inner shape at its centre.
    assert_eq!(point(0.2, 0.46), spec.accent);
    let inner = point(0.5, 0.46);
    assert_eq!(inner, lighten(spec.accent, PRODUCT_HIGHLIGHT_MIX));
    assert!(
        crate::colour::relative_luminance(inner) > crate::colour::relative_luminance(spec.accent)
    );
    // Heading bar at the top of the text zone.
    assert_eq!(point(0.5, 0.76), spec.text);
}

#[test]
fn swatch_strip_shows_every_palette_colour() {
    let spec = sample_spec();
    let image = decode(&render_preview(&spec).expect("renders"));
    let strip_height = swatch_strip_height(480, spec.colours.len());
    let row = 480 - strip_height / 2;
    for (index, colour) in spec.colours.iter().enumerate() {
        let column = (360 * (2 * index as u32 + 1)) / (2 * spec.colours.len() as u32);
        assert_eq!(at(&image, column, row), *colour, "swatch {index}");
    }
    assert_eq!(at(&image, 359, 479), spec.colours[4]);
    // The rule above the strip sets the background-coloured first swatch off the panel.
    let rule = at(&image, 10, 480 - strip_height);
    assert_ne!(rule, spec.background);
    assert_ne!(rule, spec.colours[0]);
}

#[test]
fn output_is_deterministic_and_small() {
    let first = render_preview(&sample_spec()).expect("renders");
    let second = render_preview(&sample_spec()).expect("renders");
    assert_eq!(first, second);
    assert!(first.len() < 30 * 1024, "{} bytes", first.len());
}

#[test]
fn zones_outside_the_panel_are_clamped_not_fatal() {
    let zone = Zone {
        x: -0.5,
        y: 0.9,
        w: 3.0,
        h: f32::NAN,
    };
    assert_eq!(
        zone.clamped(),
        Zone {
            x: 0.0,
            y: 0.9,
            w: 1.0,
            h: 0.0
        }
    );
    let spec = PreviewSpec {
        zones: vec![
            (
                ZoneKind::Product,
                Zone {
                    x: 0.8,
                    y: 0.8,
                    w: 5.0,
                    h: 5.0,
                },
            ),
            (
                ZoneKind::Logo,
                Zone {
                    x: f32::INFINITY,
                    y: f32::NEG_INFINITY,
                    w: f32::NAN,
                    h: 1.0,
                },
            ),
            (ZoneKind::Text, zone),
        ],
        ..sample_spec()
    };
    let image = decode(&render_preview(&spec).expect("renders"));
    // The product is cut at the panel edge (its rounded corner shows background) and the
    // swatch strip stays intact.
    let strip_top = 480 - swatch_strip_height(480, spec.colours.len());
    assert_eq!(at(&image, 357, strip_top - 8), spec.accent);
    assert_eq!(at(&image, 359, strip_top - 1), spec.background);
    assert_eq!(
        at(&image, 359, strip_top + swatch_rule_thickness(480)),
        spec.colours[4]
    );
}

#[test]
fn rejects_bad_sizes_and_too_many_colours() {
    for (width, height) in [(0, 480), (360, 0), (10, 10), (4096, 480)] {
        let spec = PreviewSpec {
            width,
            height,
            ..sample_spec()
        };
        assert_eq!(
            render_preview(&spec),
            Err(PreviewError::InvalidSize { width, height })
        );
    }
    let spec = PreviewSpec {
        colours: vec![hex("#000"); 13],
        ..sample_spec()
    };
    assert_eq!(
        render_preview(&spec),
        Err(PreviewError::TooManyColours { count: 13 })
    );
}

#[test]
fn without_colours_the_panel_fills_the_canvas() {
    let spec = PreviewSpec {
        colours: Vec::new(),
        zones: Vec::new(),
        ..sample_spec()
    };
    let image = decode(&render_preview(&spec).expect("renders"));
    assert_eq!(at(&image, 180, 479), spec.background);
}

#[test]
fn zone_kinds_round_trip_their_catalogue_names() {
    for kind in [ZoneKind::Logo, ZoneKind::Product, ZoneKind::Text] {
        assert_eq!(ZoneKind::from_name(kind.name()), Some(kind));
    }
    assert_eq!(ZoneKind::from_name("headline"), None);
}

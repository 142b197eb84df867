//! The layout of a reply: the model's three heatmaps, and zones taken from the layout template
//! they lie nearest to.

use crate::bundle::catalogue::{LayoutTemplate, ZoneBox};
use crate::bundle::raster_lanes::RasterLanes;
use crate::bundle::LAYOUT_CHANNELS;
use crate::reply::{Layout, LayoutMaps, Zone};

use super::{round3, RecommendError};

/// Heatmap cells at or above this share of the channel's peak make up its zone.
const ZONE_THRESHOLD: f32 = 0.5;

/// Splits the layout output into three heatmaps. The zones are those of the layout template the
/// heatmaps lie nearest to, so they form a layout a designer drew and never overlap unless that
/// template overlays them by design; boxes thresholded from each heatmap on its own did, for a
/// brief between two templates (issue 17). Without templates, each zone is its heatmap's box.
pub(super) fn layout_from(
    values: &[f32],
    grid: [usize; 2],
    templates: &[LayoutTemplate],
    drawings: &RasterLanes,
) -> Result<Layout, RecommendError> {
    let [rows, columns] = grid;
    let cells = rows * columns;
    if values.len() != LAYOUT_CHANNELS * cells || cells == 0 {
        return Err(RecommendError::Shape("layout"));
    }
    let channel = |index: usize| -> Vec<f32> {
        values[index * cells..(index + 1) * cells]
            .iter()
            .map(|&value| {
                if value.is_nan() {
                    0.0
                } else {
                    round3(value.clamp(0.0, 1.0))
                }
            })
            .collect()
    };
    let heatmaps = LayoutMaps {
        logo: channel(0),
        product: channel(1),
        text: channel(2),
    };
    let template = nearest_template(&heatmaps, drawings).and_then(|index| templates.get(index));
    let zones = match template {
        Some(template) => {
            let zone = |zone: ZoneBox| Zone {
                x: round3(zone.x),
                y: round3(zone.y),
                w: round3(zone.w),
                h: round3(zone.h),
            };
            LayoutMaps {
                logo: zone(template.zones.logo),
                product: zone(template.zones.product),
                text: zone(template.zones.text),
            }
        }
        None => LayoutMaps {
            logo: zone_of(&heatmaps.logo, rows, columns),
            product: zone_of(&heatmaps.product, rows, columns),
            text: zone_of(&heatmaps.text, rows, columns),
        },
    };
    Ok(Layout {
        grid,
        heatmaps,
        zones,
        template: template.map(|template| template.id.clone()),
    })
}

/// The template whose drawing (see [`LayoutTemplate::raster`]) has the least squared
/// difference from the three heatmaps; the first of equals. `None` without templates or when
/// the drawings do not fit the heatmaps' grid.
pub(crate) fn nearest_template(
    heatmaps: &LayoutMaps<Vec<f32>>,
    drawings: &RasterLanes,
) -> Option<usize> {
    let heat: Vec<f32> = heatmaps
        .logo
        .iter()
        .chain(&heatmaps.product)
        .chain(&heatmaps.text)
        .copied()
        .collect();
    drawings.nearest(&heat)
}

/// The bounding box of the cells at or above half the peak, normalised to the panel.
pub(crate) fn zone_of(heatmap: &[f32], rows: usize, columns: usize) -> Zone {
    let peak = heatmap.iter().copied().fold(0.0f32, f32::max);
    if peak <= 0.0 {
        return Zone {
            x: 0.0,
            y: 0.0,
            w: 0.0,
            h: 0.0,
        };
    }
    let (mut top, mut left, mut bottom, mut right) = (rows, columns, 0, 0);
    for (cell, &value) in heatmap.iter().enumerate() {
        if value >= peak * ZONE_THRESHOLD {
            let (row, column) = (cell / columns, cell % columns);
            top = top.min(row);
            bottom = bottom.max(row);
            left = left.min(column);
            right = right.max(column);
        }
    }
    Zone {
        x: round3(left as f32 / columns as f32),
        y: round3(top as f32 / rows as f32),
        w: round3((right + 1 - left) as f32 / columns as f32),
        h: round3((bottom + 1 - top) as f32 / rows as f32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend as _, ModelInputs};
    use crate::bundle::catalogue::TemplateZones;
    use crate::recommend::test_support::shipped;

    fn maps(values: &[f32], cells: usize) -> LayoutMaps<Vec<f32>> {
        LayoutMaps {
            logo: values[..cells].to_vec(),
            product: values[cells..2 * cells].to_vec(),
            text: values[2 * cells..].to_vec(),
        }
    }

    /// The definition: each template's squared difference summed over the cells in order, the
    /// least; the first of equals.
    fn nearest_one_template_at_a_time(heat: &[f32], rasters: &[Vec<f32>]) -> Option<usize> {
        rasters
            .iter()
            .enumerate()
            .filter(|(_, raster)| raster.len() == heat.len())
            .map(|(index, raster)| {
                let total: f32 = heat
                    .iter()
                    .zip(raster)
                    .map(|(h, d)| (h - d) * (h - d))
                    .sum();
                (index, total)
            })
            .min_by(|(_, a), (_, b)| a.total_cmp(b))
            .map(|(index, _)| index)
    }

    /// The shipped templates drawn on the model's grid, as the bundle lays them out.
    fn drawings(bundle: &crate::bundle::Bundle) -> Vec<Vec<f32>> {
        bundle
            .layouts
            .rasters(bundle.manifest.model.layout_grid)
            .expect("the shipped templates draw")
    }

    #[test]
    fn templates_summed_together_pick_what_one_at_a_time_did() {
        let bundle = &shipped().bundle;
        let [rows, columns] = bundle.manifest.model.layout_grid;
        let cells = rows * columns;
        let rasters = &drawings(bundle);
        let mut random = fastrand::Rng::with_seed(17);
        for round in 0..500 {
            // Blends of two templates, the near-ties a brief between them gives.
            let (a, b) = (random.usize(..rasters.len()), random.usize(..rasters.len()));
            let share = random.f32();
            let heat: Vec<f32> = rasters[a]
                .iter()
                .zip(&rasters[b])
                .map(|(x, y)| round3(share * x + (1.0 - share) * y + random.f32() * 0.05))
                .collect();
            assert_eq!(
                nearest_template(&maps(&heat, cells), &bundle.layout_lanes),
                nearest_one_template_at_a_time(&heat, rasters),
                "round {round}"
            );
        }
    }

    #[test]
    fn every_template_drawn_is_nearest_to_itself() {
        let bundle = &shipped().bundle;
        let [rows, columns] = bundle.manifest.model.layout_grid;
        let rasters = drawings(bundle);
        assert_eq!(rasters.len(), bundle.layouts.templates.len());
        for (index, raster) in rasters.iter().enumerate() {
            let heatmaps = maps(raster, rows * columns);
            assert_eq!(
                nearest_template(&heatmaps, &bundle.layout_lanes),
                Some(index),
                "{}",
                bundle.layouts.templates[index].id
            );
        }
        assert_eq!(
            nearest_template(&maps(&[0.5; 3], 1), &bundle.layout_lanes),
            None
        );
    }

    #[test]
    fn only_the_overlay_template_overlaps_its_zones() {
        let bundle = &shipped().bundle;
        let overlapping: Vec<&str> = bundle
            .layouts
            .templates
            .iter()
            .filter(|template| template.zones.largest_overlap() > 0.2)
            .map(|template| template.id.as_str())
            .collect();
        assert_eq!(overlapping, ["full_bleed_overlay"]);
    }

    /// Issue 17: zones from heatmap thresholds overlapped in 31 of 70 replies. Over the 220
    /// free-text briefs of the recipe's development set (EN and ZH, written the way store staff
    /// type), every reply's zones are one template's, and two zones overlap by more than a fifth
    /// of the smaller only where that template overlays them by design.
    #[test]
    fn replies_to_varied_briefs_have_a_template_layout_without_accidental_overlaps() {
        const MOST_OVERLAP: f32 = 0.2;
        let (bundle, backend) = (&shipped().bundle, &shipped().backend);
        let dev = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("engines/recipe/data/freetext_dev.jsonl"),
        )
        .expect("development set");
        let [rows, columns] = bundle.manifest.model.layout_grid;
        let (mut briefs, mut thresholded_overlaps, mut used) =
            (0, 0, std::collections::BTreeSet::new());
        for line in dev.lines().filter(|line| !line.trim().is_empty()) {
            let row: serde_json::Value = serde_json::from_str(line).expect("jsonl");
            let brief = crate::brief::decode(row["brief"].to_string().as_bytes()).expect("brief");
            let limits = crate::features::ImageLimits::default();
            let encoded = crate::features::encode(&brief, bundle, &limits).expect("encode");
            let inputs = ModelInputs {
                brief: &encoded.terms,
                image: &encoded.image,
                brand: &encoded.brand,
            };
            let outputs = backend.infer(&inputs).expect("infer");
            let reply = super::super::recommend(bundle, &outputs, &encoded, (&brief).into())
                .expect("recommend");
            let zones = &reply.layout.zones;
            let template = bundle
                .layouts
                .templates
                .iter()
                .find(|template| {
                    let drawn = template.zones.boxes().map(|zone| {
                        (
                            round3(zone.x),
                            round3(zone.y),
                            round3(zone.w),
                            round3(zone.h),
                        )
                    });
                    let given = [zones.logo, zones.product, zones.text]
                        .map(|zone| (zone.x, zone.y, zone.w, zone.h));
                    drawn == given
                })
                .unwrap_or_else(|| panic!("zones of no template: {zones:?} for {line}"));
            // The catalogue's one overlay template lays the logo and the copy over the picture.
            let by_design = template.id.contains("overlay");
            let overlap = template_zones([zones.logo, zones.product, zones.text]).largest_overlap();
            assert!(
                by_design || overlap <= MOST_OVERLAP,
                "{}: zones overlap by {overlap} in the reply to {line}",
                template.id
            );
            used.insert(template.id.clone());
            let heat = &reply.layout.heatmaps;
            let thresholded = template_zones(
                [&heat.logo, &heat.product, &heat.text].map(|map| zone_of(map, rows, columns)),
            )
            .largest_overlap();
            thresholded_overlaps += usize::from(thresholded > MOST_OVERLAP && !by_design);
            briefs += 1;
        }
        assert!(briefs >= 200, "{briefs} briefs");
        // Not one template for everything: the layouts still follow the briefs.
        assert!(used.len() >= 4, "templates used: {used:?}");
        eprintln!(
            "{briefs} briefs, {} templates used; zones thresholded from the heatmaps would have \
             overlapped by accident in {thresholded_overlaps}",
            used.len()
        );
    }

    /// A reply's zones (logo, product, text) as the catalogue's type, to measure their overlap.
    fn template_zones(zones: [Zone; 3]) -> TemplateZones {
        let [logo, product, text] = zones.map(|zone| ZoneBox {
            x: zone.x,
            y: zone.y,
            w: zone.w,
            h: zone.h,
        });
        TemplateZones {
            logo,
            product,
            text,
        }
    }

    #[test]
    fn zone_covers_the_hot_cells() {
        let (rows, columns) = (4, 4);
        let mut heatmap = vec![0.0; 16];
        heatmap[5] = 1.0; // row 1, column 1
        heatmap[10] = 0.6; // row 2, column 2
        heatmap[15] = 0.3; // below half the peak
        assert_eq!(
            zone_of(&heatmap, rows, columns),
            Zone {
                x: 0.25,
                y: 0.25,
                w: 0.5,
                h: 0.5
            }
        );
        assert_eq!(
            zone_of(&[0.0; 16], rows, columns),
            Zone {
                x: 0.0,
                y: 0.0,
                w: 0.0,
                h: 0.0
            }
        );
    }
}

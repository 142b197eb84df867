//! The layout templates' drawings laid out for matching: cell-major, a few templates side by
//! side, so one cell's differences from a group of templates are one vector operation.

/// Templates whose distances are summed side by side.
pub const LANES: usize = 16;

/// Every template's drawing (see [`crate::catalogue::LayoutTemplate::raster`]) in groups of
/// [`LANES`] templates, each group stored cell by cell.
#[derive(Debug, Clone, Default)]
pub struct RasterLanes {
    cells: usize,
    templates: usize,
    /// Per group, per cell, the group's templates' values; a short group's spare lanes are 0.
    groups: Vec<Vec<[f32; LANES]>>,
}

impl RasterLanes {
    /// Lays out `rasters`, which all have the same length.
    pub fn new(rasters: &[Vec<f32>]) -> RasterLanes {
        let cells = rasters.first().map_or(0, Vec::len);
        let groups = rasters
            .chunks(LANES)
            .map(|group| {
                (0..cells)
                    .map(|cell| {
                        std::array::from_fn(|lane| {
                            group
                                .get(lane)
                                .and_then(|raster| raster.get(cell))
                                .copied()
                                .unwrap_or(0.0)
                        })
                    })
                    .collect()
            })
            .collect();
        RasterLanes {
            cells,
            templates: rasters.len(),
            groups,
        }
    }

    /// The template with the least squared difference from `heat` (summed in cell order, the
    /// same float as one template at a time); the first of equals. `None` without templates or
    /// when `heat` is not a drawing's length.
    pub fn nearest(&self, heat: &[f32]) -> Option<usize> {
        if heat.len() != self.cells || self.templates == 0 {
            return None;
        }
        let mut nearest: Option<(usize, f32)> = None;
        for (group_index, group) in self.groups.iter().enumerate() {
            let mut totals = [0.0f32; LANES];
            for (&value, lanes) in heat.iter().zip(group) {
                for (total, &drawn) in totals.iter_mut().zip(lanes) {
                    let difference = value - drawn;
                    *total += difference * difference;
                }
            }
            let first = group_index * LANES;
            let real = self.templates.saturating_sub(first).min(LANES);
            for (lane, &total) in totals.iter().enumerate().take(real) {
                if nearest.is_none_or(|(_, least)| total.total_cmp(&least).is_lt()) {
                    nearest = Some((first + lane, total));
                }
            }
        }
        nearest.map(|(index, _)| index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_at_a_time(heat: &[f32], rasters: &[Vec<f32>]) -> Option<usize> {
        rasters
            .iter()
            .enumerate()
            .filter(|(_, raster)| raster.len() == heat.len())
            .map(|(index, raster)| {
                let total: f32 = heat
                    .iter()
                    .zip(raster)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
                (index, total)
            })
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
            .map(|(index, _)| index)
    }

    #[test]
    fn lanes_pick_what_one_template_at_a_time_picks() {
        let mut random = fastrand::Rng::with_seed(5);
        // Fewer, exactly and more templates than one group holds; ties included.
        for templates in [1, 3, LANES, LANES + 1, 2 * LANES + 5] {
            let cells = 37;
            let mut rasters: Vec<Vec<f32>> = (0..templates)
                .map(|_| (0..cells).map(|_| random.f32()).collect())
                .collect();
            if templates > 2 {
                rasters[templates - 1] = rasters[1].clone();
            }
            let lanes = RasterLanes::new(&rasters);
            for round in 0..200 {
                let heat: Vec<f32> = if round % 10 == 0 {
                    rasters[random.usize(..templates)].clone()
                } else {
                    (0..cells).map(|_| random.f32()).collect()
                };
                assert_eq!(
                    lanes.nearest(&heat),
                    one_at_a_time(&heat, &rasters),
                    "{templates} templates, round {round}"
                );
            }
            assert_eq!(lanes.nearest(&vec![0.5; cells + 1]), None);
        }
        assert_eq!(RasterLanes::new(&[]).nearest(&[]), None);
    }
}

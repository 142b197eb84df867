use super::*;

fn hex(text: &str) -> Rgb {
    Rgb::parse_hex(text).unwrap()
}

fn delta(first: Rgb, second: Rgb) -> f32 {
    delta_e_2000(first.to_lab(), second.to_lab())
}

fn seen_delta(first: Rgb, second: Rgb, deficiency: Deficiency) -> f32 {
    delta(simulate(first, deficiency), simulate(second, deficiency))
}

#[test]
fn matrices_are_machados_severity_one_rows() {
    assert_eq!(
        Deficiency::Protanopia.matrix()[0],
        [0.152286, 1.052583, -0.204868]
    );
    assert_eq!(
        Deficiency::Deuteranopia.matrix()[1],
        [0.280085, 0.672501, 0.047413]
    );
    assert_eq!(
        Deficiency::Tritanopia.matrix()[2],
        [0.004733, 0.691367, 0.303900]
    );
    // Every row sums to 1, so greys (white and black included) look the same to everyone.
    for deficiency in Deficiency::ALL {
        for row in deficiency.matrix() {
            assert!(
                (row.iter().sum::<f64>() - 1.0).abs() < 1e-5,
                "{deficiency:?}"
            );
        }
    }
}

#[test]
fn greys_survive_every_simulation() {
    for deficiency in Deficiency::ALL {
        for level in [0u8, 1, 64, 128, 200, 255] {
            let grey = Rgb::new(level, level, level);
            let seen = simulate(grey, deficiency);
            for channel in [seen.r, seen.g, seen.b] {
                assert!(
                    channel.abs_diff(level) <= 1,
                    "{deficiency:?} {grey} -> {seen}"
                );
            }
        }
    }
}

#[test]
fn wine_red_and_forest_green_collapse_for_deuteranopes() {
    let (red, green) = (hex("#771133"), hex("#005533"));
    assert!(delta(red, green) > 20.0, "{}", delta(red, green));
    let seen = seen_delta(red, green, Deficiency::Deuteranopia);
    assert!(seen < 5.0, "{seen}");
    let check = check_roles([hex("#FFFFFF"), red, green, hex("#000000")]);
    assert!(!check.safe);
    assert!(check.min_delta_e < 5.0, "{check:?}");
}

#[test]
fn blue_and_yellow_stay_apart_for_red_green_deficiencies() {
    let (blue, yellow) = (hex("#1F4FBF"), hex("#F2C14E"));
    for deficiency in [Deficiency::Protanopia, Deficiency::Deuteranopia] {
        let seen = seen_delta(blue, yellow, deficiency);
        assert!(seen > 30.0, "{deficiency:?}: {seen}");
    }
}

#[test]
fn a_high_contrast_palette_is_safe() {
    let check = check_roles([
        hex("#FFFFFF"),
        hex("#1F4FBF"),
        hex("#F2C14E"),
        hex("#000000"),
    ]);
    assert!(check.safe, "{check:?}");
    assert!(check.min_delta_e >= CVD_SAFE_MIN_DELTA_E);
}

#[test]
fn the_check_is_symmetric_bounded_and_rounded_down() {
    let roles = [
        hex("#DCE8E4"),
        hex("#3E6D74"),
        hex("#F2C14E"),
        hex("#1E2A2F"),
    ];
    let check = check_roles(roles);
    let mut reversed = roles;
    reversed.reverse();
    assert_eq!(check_roles(reversed), check);
    assert_eq!(check_roles([roles[2], roles[0], roles[3], roles[1]]), check);
    assert!(check.min_delta_e >= 0.0 && check.min_delta_e.is_finite());
    assert_eq!(check.min_delta_e, (check.min_delta_e * 10.0).round() / 10.0);
    assert_eq!(check.safe, check.min_delta_e >= CVD_SAFE_MIN_DELTA_E);
    // Never above what normal vision alone gives.
    let normal = roles.map(|colour| colour.to_lab());
    let normal_min = ROLE_PAIRS
        .iter()
        .map(|&(first, second)| super::delta_e_2000(normal[first], normal[second]))
        .fold(f32::INFINITY, f32::min);
    assert!(check.min_delta_e <= normal_min);
    // A palette with a repeated role cannot be told apart by anyone.
    let repeated = check_roles([roles[0], roles[1], roles[1], roles[3]]);
    assert_eq!(repeated.min_delta_e, 0.0);
    assert!(!repeated.safe);
    for first in roles {
        for second in roles {
            for deficiency in Deficiency::ALL {
                let forward = seen_delta(first, second, deficiency);
                assert_eq!(forward, seen_delta(second, first, deficiency));
                assert!(forward >= 0.0);
            }
        }
    }
}

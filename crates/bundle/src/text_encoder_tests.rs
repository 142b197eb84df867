use super::*;

/// A table file with the given pieces: (text, log probability, scale, row).
fn table(dim: u32, pieces: &[(&str, f32, f32, Vec<i8>)]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend(MAGIC);
    bytes.extend(VERSION.to_le_bytes());
    bytes.extend(dim.to_le_bytes());
    bytes.extend((pieces.len() as u32).to_le_bytes());
    bytes.extend(0.5f32.to_le_bytes());
    bytes.extend(0.05f32.to_le_bytes());
    bytes.extend(0.8f32.to_le_bytes());
    for (text, log_prob, scale, _) in pieces {
        bytes.push(text.len() as u8);
        bytes.extend(text.as_bytes());
        bytes.extend(log_prob.to_le_bytes());
        bytes.extend(scale.to_le_bytes());
    }
    for (_, _, _, row) in pieces {
        bytes.extend(row.iter().map(|&value| value as u8));
    }
    bytes
}

fn small() -> TextEncoder {
    TextEncoder::parse(&table(
        2,
        &[
            ("▁", -3.0, 0.0, vec![0, 0]),
            ("▁tea", -5.0, 1.0, vec![100, 0]),
            ("▁te", -6.0, 1.0, vec![0, 100]),
            ("a", -4.0, 1.0, vec![0, 100]),
            ("茶", -7.0, 1.0, vec![90, 10]),
            ("饮", -7.0, 0.5, vec![0, 127]),
        ],
    ))
    .unwrap()
}

fn ids(encoder: &TextEncoder, pieces: &[&str]) -> Vec<u32> {
    pieces
        .iter()
        .map(|piece| encoder.by_piece[*piece])
        .collect()
}

#[test]
fn the_most_probable_split_wins() {
    let encoder = small();
    // "▁tea" (-5) beats "▁te" + "a" (-10).
    assert_eq!(encoder.tokenize("tea"), ids(&encoder, &["▁tea"]));
    assert_eq!(encoder.tokenize("茶饮"), ids(&encoder, &["▁", "茶", "饮"]));
}

#[test]
fn unknown_characters_are_skipped_not_fatal() {
    let encoder = small();
    assert_eq!(encoder.tokenize("tea!"), ids(&encoder, &["▁tea"]));
    assert!(encoder.embed("???").is_none());
    assert!(encoder.embed("").is_none());
}

#[test]
fn vectors_are_unit_length_means_of_scaled_rows() {
    let encoder = small();
    let tea = encoder.embed("tea").unwrap();
    assert!((tea[0] - 1.0).abs() < 1e-6 && tea[1].abs() < 1e-6);
    // 茶 (90, 10) plus 饮 at half scale (0, 63.5): the scale weighs the row.
    let drink = encoder.embed("茶饮").unwrap();
    let expected = [90.0f32, 73.5];
    let norm = (expected[0] * expected[0] + expected[1] * expected[1]).sqrt();
    assert!((drink[0] - expected[0] / norm).abs() < 1e-5);
    assert!((drink[1] - expected[1] / norm).abs() < 1e-5);
}

#[test]
fn long_input_is_cut_not_slow() {
    let encoder = small();
    let long = "tea ".repeat(10_000);
    assert!(encoder.tokenize(&long).len() <= MAX_INPUT_CHARS);
}

#[test]
fn malformed_files_are_refused_with_the_reason() {
    let good = table(2, &[("▁tea", -5.0, 1.0, vec![1, 2])]);
    assert!(TextEncoder::parse(&good).is_ok());
    let cut = &good[..good.len() - 1];
    assert!(matches!(
        TextEncoder::parse(cut),
        Err(TextEncoderError::Truncated { part: "rows" })
    ));
    let mut longer = good.clone();
    longer.push(0);
    assert!(matches!(
        TextEncoder::parse(&longer),
        Err(TextEncoderError::Trailing { extra: 1 })
    ));
    let mut wrong_magic = good.clone();
    wrong_magic[0] = b'X';
    assert!(matches!(
        TextEncoder::parse(&wrong_magic),
        Err(TextEncoderError::Format { found: 0 })
    ));
    let twice = table(1, &[("a", -1.0, 1.0, vec![1]), ("a", -1.0, 1.0, vec![1])]);
    assert!(matches!(
        TextEncoder::parse(&twice),
        Err(TextEncoderError::Piece { index: 1, .. })
    ));
    let huge_dim = table(5000, &[]);
    assert!(matches!(
        TextEncoder::parse(&huge_dim),
        Err(TextEncoderError::Header { .. })
    ));
}

#[test]
fn every_prefix_of_a_file_is_refused_without_panicking() {
    let good = table(
        3,
        &[
            ("▁tea", -5.0, 1.0, vec![1, 2, 3]),
            ("茶", -6.0, 0.5, vec![3, 2, 1]),
        ],
    );
    for len in 0..good.len() {
        assert!(
            TextEncoder::parse(&good[..len]).is_err(),
            "prefix of {len} bytes"
        );
    }
}

#[test]
fn the_nearest_term_respects_the_allowed_set() {
    let similarities = [0.2, 0.9, 0.5];
    let best = TermIndex::nearest(&similarities, |_| true).unwrap();
    assert_eq!(best.term, 1);
    let best = TermIndex::nearest(&similarities, |term| term != 1).unwrap();
    assert_eq!((best.term, best.similarity), (2, 0.5));
    assert!(TermIndex::nearest(&similarities, |_| false).is_none());
}

#[test]
fn blocked_similarities_are_each_anchors_dot_product() {
    // 37 anchors over 5 terms: two full blocks and a short one.
    let dim = 11;
    let anchors: Vec<Vec<f32>> = (0..37)
        .map(|row| {
            (0..dim)
                .map(|i| ((row * dim + i) as f32 * 0.37).sin())
                .collect()
        })
        .collect();
    let term_of: Vec<usize> = (0..37).map(|row| row % 5).collect();
    let mut blocks = Vec::new();
    for block in anchors.chunks(ROWS_TOGETHER) {
        for dimension in 0..dim {
            blocks.push(std::array::from_fn(|row| {
                block.get(row).map_or(0.0, |vector| vector[dimension])
            }));
        }
    }
    let index = TermIndex {
        dim,
        blocks,
        term_of: term_of.clone(),
    };
    let value: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.11).cos()).collect();
    let similarities = index.similarities(&value, 6);
    for (term, similarity) in similarities.iter().enumerate().take(5) {
        let plain = anchors
            .iter()
            .zip(&term_of)
            .filter(|(_, &of)| of == term)
            .map(|(anchor, _)| anchor.iter().zip(&value).map(|(a, b)| a * b).sum::<f32>())
            .fold(f32::MIN, f32::max);
        assert!((similarity - plain).abs() < 1e-5, "term {term}");
    }
    assert_eq!(similarities[5], -1.0, "a term without anchors");
    assert_eq!(index.similarities(&value[1..], 6), vec![-1.0; 6]);
}

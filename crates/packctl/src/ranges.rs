//! Chunk ranges as `[start, end)` pairs: what an appliance holds or lacks of a transfer.

use packd_wire::bundle::ChunkRange;

/// Chunk ranges as `[start, end)` pairs, clamped to `[0, chunk_count)`, sorted and merged.
pub(crate) fn clamp_ranges(ranges: &[ChunkRange], chunk_count: u64) -> Vec<(u64, u64)> {
    let clamped = ranges
        .iter()
        .map(|&[start, end]| (start.min(chunk_count), end.min(chunk_count)))
        .collect();
    normalise(clamped)
}

/// Sorted, merged, non-empty ranges.
pub(crate) fn normalise(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.retain(|(start, end)| start < end);
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// The chunks of `[0, chunk_count)` not in `have` (which is normalised).
pub(crate) fn complement(have: &[(u64, u64)], chunk_count: u64) -> Vec<(u64, u64)> {
    let mut missing = Vec::new();
    let mut next = 0;
    for &(start, end) in have {
        if start > next {
            missing.push((next, start));
        }
        next = next.max(end);
    }
    if next < chunk_count {
        missing.push((next, chunk_count));
    }
    missing
}

/// `[0, 4) [5, 6)`: ranges as messages show them.
pub(crate) fn format_ranges(ranges: &[(u64, u64)]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|(start, end)| format!("[{start}, {end})"))
        .collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_parsed_clamped_and_complemented() {
        let have = clamp_ranges(&[[5, 6], [0, 3], [2, 4], [9, 99], [7, 7]], 10);
        assert_eq!(have, [(0, 4), (5, 6), (9, 10)]);
        assert_eq!(complement(&have, 10), [(4, 5), (6, 9)]);
        assert_eq!(complement(&[], 3), [(0, 3)]);
        assert_eq!(complement(&[(0, 3)], 3), []);
        assert_eq!(normalise(vec![(3, 5), (0, 3), (8, 9)]), [(0, 5), (8, 9)]);
    }
}

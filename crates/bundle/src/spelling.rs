//! Slips of the keyboard: how far a typed value may be from a synonym and still be read as it.
//! Store staff type fast ("traditonal", "premiun"); a near miss of a long word is that word,
//! while a short one too often meets another real word ("poppy" is not "puppy").

/// The shortest value read with one slip, and with two: chosen on the recipe's development set
/// (engines/recipe/data/freetext_dev.jsonl), never on the held-out set; `reading.py` mirrors them.
const ONE_EDIT_FROM: usize = 6;
const TWO_EDITS_FROM: usize = 10;
/// Longer values are phrases, not one mistyped word; the bound also keeps the distance's rows on
/// the stack (a value is compared with thousands of synonyms).
const LONGEST: usize = 32;

/// Whether normalised text is Latin letters and spaces only: the values and synonyms that can
/// be misspelt (digits, CJK and mixed text are left to the other readings).
pub(crate) fn is_latin(normalised: &str) -> bool {
    !normalised.is_empty()
        && normalised
            .bytes()
            .all(|b| b == b' ' || b.is_ascii_lowercase())
}

/// How many slips a normalised value may hold and still be read as a synonym, or `None` when
/// it is not a candidate at all.
pub(crate) fn edits_allowed(normalised: &str) -> Option<usize> {
    if !is_latin(normalised) || !(ONE_EDIT_FROM..=LONGEST).contains(&normalised.len()) {
        return None;
    }
    Some(if normalised.len() >= TWO_EDITS_FROM {
        2
    } else {
        1
    })
}

/// The nearest term offered so far, unless another was offered as near.
#[derive(Default)]
pub(crate) struct Nearest {
    best: Option<(usize, usize)>,
    tied: bool,
}

impl Nearest {
    /// Offers `term`, found `distance` slips away.
    pub(crate) fn offer(&mut self, distance: usize, term: usize) {
        match self.best {
            Some((best, found)) if distance == best => self.tied |= found != term,
            Some((best, _)) if distance > best => {}
            _ => {
                self.best = Some((distance, term));
                self.tied = false;
            }
        }
    }

    /// The one nearest term, if no other was as near.
    pub(crate) fn one(&self) -> Option<usize> {
        self.best.filter(|_| !self.tied).map(|(_, term)| term)
    }
}

/// Whether `synonym` may be a slip of `value` that keeps their starts in line: the same first
/// letter, or the first two letters moved by one place (a swap, a letter added or dropped at the
/// start). Slips of the first letters are rare in typing; the check skips most synonyms before
/// the distance is computed.
pub(crate) fn starts_in_line(value: &[u8], synonym: &[u8]) -> bool {
    let (v0, v1) = (value.first(), value.get(1));
    let (s0, s1) = (synonym.first(), synonym.get(1));
    s0 == v0 || s0 == v1 || s1 == v0
}

/// The optimal string alignment distance of `a` and `b` (insertions, deletions, substitutions
/// and swaps of neighbours), or `None` once it is certain to be over `limit`, or when `b` is
/// longer than [`LONGEST`] plus `limit` (then it is over `limit` from any value allowed one).
pub(crate) fn distance_within(a: &[u8], b: &[u8], limit: usize) -> Option<usize> {
    const ROW: usize = LONGEST + 3;
    if a.len().abs_diff(b.len()) > limit || b.len() >= ROW {
        return None;
    }
    // Distances never pass ROW, so a byte holds them and the rows stay small.
    let mut before = [0u8; ROW];
    let mut previous = [0u8; ROW];
    let mut current = [0u8; ROW];
    for (j, cell) in (0u8..).zip(previous.iter_mut().take(b.len() + 1)) {
        *cell = j;
    }
    for (i, row) in (1..=a.len()).zip(1u8..) {
        current[0] = row;
        let mut lowest = row;
        for j in 1..=b.len() {
            let cost = u8::from(a[i - 1] != b[j - 1]);
            let mut value = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                value = value.min(before[j - 2] + 1);
            }
            current[j] = value;
            lowest = lowest.min(value);
        }
        if usize::from(lowest) > limit {
            return None;
        }
        before = previous;
        previous = current;
    }
    Some(usize::from(previous[b.len()])).filter(|&distance| distance <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distance(a: &str, b: &str) -> Option<usize> {
        distance_within(a.as_bytes(), b.as_bytes(), 2)
    }

    #[test]
    fn one_slip_of_each_kind_is_one_edit() {
        assert_eq!(distance("traditonal", "traditional"), Some(1)); // dropped
        assert_eq!(distance("premiun", "premium"), Some(1)); // substituted
        assert_eq!(distance("elegnat", "elegant"), Some(1)); // swapped neighbours
        assert_eq!(distance("familys", "family"), Some(1)); // added
        assert_eq!(distance("elegant", "elegant"), Some(0));
    }

    #[test]
    fn distances_over_the_limit_are_none() {
        assert_eq!(distance("explosive", "exclusive"), Some(2));
        assert_eq!(distance_within(b"explosive", b"exclusive", 1), None);
        assert_eq!(distance("minimal", "maximalist"), None);
        assert_eq!(distance("abc", "abcdef"), None);
    }

    #[test]
    fn a_slip_at_the_start_is_seen_only_one_place_off() {
        assert!(starts_in_line(b"elegent", b"elegant"));
        assert!(starts_in_line(b"legant", b"elegant"));
        assert!(starts_in_line(b"eelgant", b"elegant"));
        assert!(!starts_in_line(b"xlegant", b"elegant"));
    }

    #[test]
    fn the_nearest_wins_and_a_tie_is_no_answer() {
        let mut nearest = Nearest::default();
        nearest.offer(2, 7);
        nearest.offer(1, 3);
        nearest.offer(1, 3);
        nearest.offer(2, 9);
        assert_eq!(nearest.one(), Some(3));
        nearest.offer(1, 4);
        assert_eq!(nearest.one(), None);
        nearest.offer(0, 4);
        assert_eq!(nearest.one(), Some(4));
    }

    #[test]
    fn only_long_latin_values_may_be_misspelt() {
        assert_eq!(edits_allowed("poppy"), None);
        assert_eq!(edits_allowed("elegent"), Some(1));
        assert_eq!(edits_allowed("traditonal"), Some(2));
        assert_eq!(edits_allowed("奶油疯"), None);
        assert_eq!(edits_allowed("y2k style"), None);
        assert_eq!(edits_allowed(&"a".repeat(33)), None);
        assert!(is_latin("old money"));
        assert!(!is_latin(""));
    }
}

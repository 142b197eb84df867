//! Reading a brief's values as vocabulary terms: exact name or synonym (in the field's own
//! groups first, then in any group; a misspelt synonym when no group has the value exactly, and
//! in the mood and palette fields a close encoder reading of their own terms, come between the
//! two), then synonyms contained in the value, then the bundle's text encoder. Each value read
//! becomes an `understood` entry; a value read as nothing a warning.

use crate::brief::Brief;
use crate::bundle::catalogue::{normalise, Term, Vocabulary};
use crate::bundle::text_encoder::TermIndex;
use crate::bundle::{Bundle, TextModel};
use crate::reply::{ReadVia, Understood};

/// Which vocabulary groups each brief field is matched against first.
const PRODUCT_GROUPS: &[&str] = &["product"];
const AUDIENCE_GROUPS: &[&str] = &["audience"];
const MOOD_GROUPS: &[&str] = &["mood", "season", "occasion"];
const PALETTE_GROUPS: &[&str] = &["palette"];
const ALL_GROUPS: &[&str] = &[
    "product", "audience", "mood", "season", "occasion", "palette", "keyword",
];

/// How close an encoder reading among a mood or palette field's own terms must be to come
/// before another group's exact synonym (see [`Reader::read`]); tuned on the recipe's
/// development set (engines/recipe/data/freetext_dev.jsonl), never on the held-out set.
const OWN_FIELD_SIMILARITY: f32 = 0.85;

/// How one brief field is read.
#[derive(Clone, Copy)]
struct Field {
    /// The groups its values are matched against first.
    groups: &'static [&'static str],
    /// Whether a close encoder reading in `groups` beats another group's exact synonym.
    own_first: bool,
    /// Whether a value names one thing of `groups` (a product, an audience), so that words of
    /// other groups inside it are modifiers, not its meaning.
    names_its_group: bool,
}

impl Field {
    /// The brief field `name` (`keywords` and any other name: every group).
    fn named(name: &str) -> Field {
        let (groups, own_first, names_its_group) = match name {
            "product" => (PRODUCT_GROUPS, false, true),
            "audience" => (AUDIENCE_GROUPS, false, true),
            "mood" => (MOOD_GROUPS, true, false),
            "palette" => (PALETTE_GROUPS, true, false),
            _ => (ALL_GROUPS, false, false),
        };
        Field {
            groups,
            own_first,
            names_its_group,
        }
    }
}

/// The brief's terms as the model's multi-hot input, with how each value was read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadTerms {
    /// Multi-hot over the vocabulary.
    pub vector: Vec<f32>,
    /// How each value that was read was read, in brief order.
    pub understood: Vec<Understood>,
    /// Values read as nothing, as sentences for the reply.
    pub warnings: Vec<String>,
}

/// Reads every value of the brief against the bundle's vocabulary and text encoder.
pub fn read_terms(brief: &Brief, bundle: &Bundle) -> ReadTerms {
    let reader = Reader {
        vocabulary: &bundle.vocabulary,
        text: bundle.text.as_ref(),
    };
    let mut read = ReadTerms {
        vector: vec![0.0; bundle.vocabulary.len()],
        ..ReadTerms::default()
    };
    let fields = [
        ("product", std::slice::from_ref(&brief.product)),
        ("audience", brief.audience.as_slice()),
        ("mood", brief.mood.as_slice()),
        ("palette", brief.palette.as_slice()),
        ("keywords", brief.keywords.as_slice()),
    ];
    let mut product_settled = false;
    for (field, values) in fields {
        for value in values {
            let Some(reading) = reader.read(value, Field::named(field)) else {
                read.warnings.push(unknown(field, value));
                product_settled |= field == "product";
                continue;
            };
            for term in &reading.terms {
                read.vector[term.index] = 1.0;
                product_settled |= field == "product" && term.group == "product";
            }
            read.understood.push(reading.understood(field, value));
        }
    }
    if !product_settled {
        read.warnings.push(format!(
            "product '{}' is not a product this bundle knows: suggestions are not specific to a product",
            brief.product
        ));
    }
    read
}

fn unknown(field: &str, value: &str) -> String {
    match field {
        "keywords" => format!("unknown keyword '{value}' ignored"),
        // The model answers anyway, so say what that answer is worth.
        "product" => {
            format!("unknown product '{value}' ignored: suggestions are not specific to a product")
        }
        _ => format!("unknown {field} '{value}' ignored"),
    }
}

/// The terms one value was read as, and how.
struct Reading<'a> {
    terms: Vec<&'a Term>,
    via: ReadVia,
    similarity: Option<f32>,
}

impl Reading<'_> {
    fn understood(&self, field: &str, value: &str) -> Understood {
        Understood {
            field: field.to_string(),
            text: value.to_string(),
            terms: self.terms.iter().map(|term| term.id.clone()).collect(),
            via: self.via,
            similarity: self.similarity,
        }
    }
}

struct Reader<'a> {
    vocabulary: &'a Vocabulary,
    text: Option<&'a TextModel>,
}

impl<'a> Reader<'a> {
    fn read(&self, value: &str, field: Field) -> Option<Reading<'a>> {
        let normalised = normalise(value);
        if normalised.is_empty() {
            return None;
        }
        let groups = field.groups;
        // Asked at most once per value, and only when a rule below needs it.
        let encoded = std::cell::OnceCell::new();
        let encoded = || *encoded.get_or_init(|| self.encoded(&normalised, groups));
        if let Some(reading) = self.exact(&normalised, groups) {
            return Some(reading);
        }
        let exact_elsewhere = self.exact(&normalised, ALL_GROUPS);
        if exact_elsewhere.is_none() {
            if let Some(reading) = self.misspelt(&normalised, groups) {
                return Some(reading);
            }
        }
        // In the mood and palette fields, a word another group owns exactly is often this
        // field's word for a kindred idea ("earthy" is the natural mood, but as a palette it
        // means earth tones; 复古 is nostalgic, as a palette vintage): a close encoder reading
        // among the field's own terms comes first.
        if field.own_first {
            let own = encoded().filter(|found| {
                found.accepted
                    && found.in_groups(groups)
                    && found.similarity >= OWN_FIELD_SIMILARITY
            });
            if let Some(found) = own {
                return Some(found.reading());
            }
        }
        // A term typed in another field (a festival in `mood`, 国潮 in `mood`) is still that term.
        if let Some(reading) = exact_elsewhere {
            return Some(reading);
        }
        let contained = focus(self.vocabulary.contained(&normalised), groups);
        if !contained.is_empty() {
            return Some(read_contained(contained, field, encoded));
        }
        encoded()
            .filter(|found| found.accepted)
            .map(Encoded::reading)
    }

    /// The value as a term's exact name or synonym in `groups`.
    fn exact(&self, normalised: &str, groups: &[&str]) -> Option<Reading<'a>> {
        let term = self.vocabulary.exact(normalised, groups)?;
        let via = if is_name_of(term, normalised) {
            ReadVia::Exact
        } else {
            ReadVia::Synonym
        };
        Some(Reading {
            terms: vec![term],
            via,
            similarity: None,
        })
    }

    /// A slip of a synonym ("traditonal", "premiun"): the nearest term in the field's own groups,
    /// else in any group. Reported as a synonym: the contract has no word for a spelling.
    fn misspelt(&self, normalised: &str, groups: &[&str]) -> Option<Reading<'a>> {
        let term = self.vocabulary.misspelt(normalised, groups)?;
        Some(Reading {
            terms: vec![term],
            via: ReadVia::Synonym,
            similarity: None,
        })
    }

    /// The encoder's reading: the field's own groups when a term there clears the threshold,
    /// else any group's best when it also clears the margin; `None` without an encoder or a
    /// vector. `accepted` says whether it clears its bar, `confident` whether it may overrule
    /// a `contains` reading.
    fn encoded(&self, normalised: &str, groups: &[&str]) -> Option<Encoded<'a>> {
        let text = self.text?;
        let encoder = &text.encoder;
        let vector = encoder.embed(normalised)?;
        let similarities = text.index.similarities(&vector, self.vocabulary.len());
        let terms = &self.vocabulary.terms;
        let in_groups = |term: usize| groups.contains(&terms[term].group.as_str());
        let own = TermIndex::nearest(&similarities, in_groups)?;
        let any = TermIndex::nearest(&similarities, |_| true)?;
        let (best, accepted) = if own.similarity >= encoder.threshold {
            (own, true)
        } else if any.similarity >= encoder.threshold + encoder.margin {
            (any, true)
        } else {
            (own, false)
        };
        Some(Encoded {
            term: &terms[best.term],
            similarity: (best.similarity * 1000.0).round() / 1000.0,
            accepted,
            confident: own.term == best.term && own.similarity >= encoder.confident,
        })
    }
}

/// The encoder's best term for a value, and how far it may be trusted.
#[derive(Clone, Copy)]
struct Encoded<'a> {
    term: &'a Term,
    similarity: f32,
    accepted: bool,
    confident: bool,
}

impl<'a> Encoded<'a> {
    fn in_groups(&self, groups: &[&str]) -> bool {
        groups.contains(&self.term.group.as_str())
    }

    fn reading(self) -> Reading<'a> {
        Reading {
            terms: vec![self.term],
            via: ReadVia::Encoder,
            similarity: Some(self.similarity),
        }
    }
}

/// A value with synonyms of `contained` terms in it (after [`focus`]), read as them unless the
/// encoder knows better.
fn read_contained<'a>(
    contained: Vec<&'a Term>,
    field: Field,
    encoded: impl Fn() -> Option<Encoded<'a>>,
) -> Reading<'a> {
    let groups = field.groups;
    // A product or audience value holding only other groups' words (能量小饮 holds the
    // energetic mood) still names a product or an audience: the encoder's, if it clears its bar.
    let only_modifiers = contained
        .iter()
        .all(|term| !groups.contains(&term.group.as_str()));
    if field.names_its_group && only_modifiers {
        if let Some(found) = encoded().filter(|found| found.accepted && found.in_groups(groups)) {
            return found.reading();
        }
    }
    // A contained synonym is often the generic word of a longer name ("sports recovery drink"
    // contains "drink"): a confident encoder reading of a more specific term of the same group
    // knows better. Contained terms of several groups ("kids snacks") are a reading of their
    // own and stay, so the encoder is not asked.
    let one_group = contained
        .iter()
        .all(|term| term.group == contained[0].group);
    let better = one_group
        .then(encoded)
        .flatten()
        .filter(|better| better.confident && refines(&contained, better.term));
    match better {
        Some(better) => better.reading(),
        None => Reading {
            terms: contained,
            via: ReadVia::Contains,
            similarity: None,
        },
    }
}

/// A value in a field of its own groups names a term of those groups; other groups' terms
/// contained in it are its modifiers ("children's picture books" are books, not also the kids
/// audience; "速冻汤圆" is frozen food, not also the lantern festival). Keywords take every
/// group, so they keep them all.
fn focus<'a>(contained: Vec<&'a Term>, groups: &[&str]) -> Vec<&'a Term> {
    let own: Vec<&'a Term> = contained
        .iter()
        .copied()
        .filter(|term| groups.contains(&term.group.as_str()))
        .collect();
    if own.is_empty() {
        contained
    } else {
        own
    }
}

/// Whether `term` is another term of the one group every contained term belongs to.
fn refines(contained: &[&Term], term: &Term) -> bool {
    contained
        .iter()
        .all(|found| found.group == term.group && found.index != term.index)
}

/// Whether normalised text is the term's own name (`product:energy_drink` → `energy drink`).
fn is_name_of(term: &Term, normalised: &str) -> bool {
    let name = term
        .id
        .split_once(':')
        .map_or(term.id.as_str(), |(_, name)| name);
    normalise(name) == normalised
}

#[cfg(test)]
#[path = "terms_tests.rs"]
mod tests;

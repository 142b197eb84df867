//! The bundle's text encoder: a static token-embedding table distilled at recipe time from a
//! multilingual sentence encoder (`engines/recipe`, REPORT.md), read through a unigram
//! tokenizer, so a brief value that no synonym lists is still read as the terms it means.
//!
//! Static rows instead of the transformer itself: a brief value is a few words, and a table
//! lookup plus a mean answers in microseconds on an Orin's CPU without a second model runtime.
//!
//! File format (`text_encoder.bin`, little endian):
//! `PKTE`, u32 version 1, u32 dim, u32 piece count, f32 threshold, f32 margin, f32 confident,
//! then per piece u8 byte length, UTF-8 bytes (SentencePiece's `▁` marks a word start), f32
//! unigram log probability, f32 row scale; then every row's `dim` i8 values, piece by piece.

use std::collections::HashMap;

use crate::catalogue::{normalise, Vocabulary};

const MAGIC: &[u8; 4] = b"PKTE";
const VERSION: u32 = 1;
/// SentencePiece's word-start marker.
const WORD_START: char = '\u{2581}';
/// Rows wider than this are not a table this service was built for.
const MAX_DIM: usize = 1024;
/// Longer inputs are cut: brief values are short, and the cut bounds the tokenizer's work.
const MAX_INPUT_CHARS: usize = 256;
/// Below the cheapest piece, so an unknown character is taken only when nothing else fits.
const UNKNOWN_PENALTY: f32 = 10.0;

/// Problems with a text-encoder file.
#[derive(Debug, thiserror::Error)]
pub enum TextEncoderError {
    /// The file does not start with the format's magic and version.
    #[error("not a packd text encoder (magic or version {found} wrong; this service reads version {VERSION})")]
    Format {
        /// The version the file claims, 0 when the magic is wrong.
        found: u32,
    },
    /// The file ends before the part it announces.
    #[error("text encoder is truncated in {part}")]
    Truncated {
        /// Which part was cut.
        part: &'static str,
    },
    /// A header value is out of range.
    #[error("text encoder header: {what}")]
    Header {
        /// Which value, and why.
        what: String,
    },
    /// A piece is not UTF-8 or appears twice.
    #[error("text encoder piece {index}: {what}")]
    Piece {
        /// The piece's position.
        index: usize,
        /// What is wrong with it.
        what: &'static str,
    },
    /// Bytes follow the last row.
    #[error("text encoder has {extra} bytes after its last row")]
    Trailing {
        /// How many.
        extra: usize,
    },
    /// The self-test file does not parse.
    #[error("text encoder self-test file: {0}")]
    SelfTestFile(#[from] serde_json::Error),
    /// The encoder does not reproduce what the recipe computed for a case.
    #[error("text encoder self-test '{text}': {what}")]
    SelfTest {
        /// The case's text.
        text: String,
        /// What differs.
        what: String,
    },
}

/// `selftest/text_encoder.json`: texts with the pieces and leading vector values the recipe's
/// reference encoder gave, so a table this code reads differently is refused before it serves.
#[derive(Debug, serde::Deserialize)]
struct SelfTestFile {
    tolerance: f32,
    cases: Vec<SelfTestCase>,
}

#[derive(Debug, serde::Deserialize)]
struct SelfTestCase {
    text: String,
    tokens: Vec<String>,
    vector_head: Vec<f32>,
}

/// The distilled token table and its tokenizer.
#[derive(Debug, Clone)]
pub struct TextEncoder {
    dim: usize,
    /// Similarity a reading needs to count.
    pub threshold: f32,
    /// What a term of another group than the field's needs above `threshold`.
    pub margin: f32,
    /// Similarity at which the encoder's reading replaces a `contains` reading that lacks its
    /// term ("energy drink" contains "drink", but means the energy drink).
    pub confident: f32,
    by_piece: HashMap<Box<str>, u32>,
    log_probs: Vec<f32>,
    scales: Vec<f32>,
    rows: Vec<i8>,
    longest_piece: usize,
    unknown_log_prob: f32,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, part: &'static str) -> Result<&'a [u8], TextEncoderError> {
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(TextEncoderError::Truncated { part })?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u32(&mut self, part: &'static str) -> Result<u32, TextEncoderError> {
        let bytes = self.take(4, part)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn f32(&mut self, part: &'static str) -> Result<f32, TextEncoderError> {
        self.u32(part).map(f32::from_bits)
    }
}

impl TextEncoder {
    /// Parses `text_encoder.bin`, checking every length against the file's size.
    pub fn parse(bytes: &[u8]) -> Result<TextEncoder, TextEncoderError> {
        let mut reader = Reader { bytes, at: 0 };
        let magic = reader.take(4, "header")?;
        let version = reader.u32("header")?;
        if magic != MAGIC || version != VERSION {
            let found = if magic == MAGIC { version } else { 0 };
            return Err(TextEncoderError::Format { found });
        }
        let dim = reader.u32("header")? as usize;
        let count = reader.u32("header")? as usize;
        let threshold = reader.f32("header")?;
        let margin = reader.f32("header")?;
        let confident = reader.f32("header")?;
        check_header(dim, count, [threshold, margin, confident])?;
        let mut encoder = TextEncoder {
            dim,
            threshold,
            margin,
            confident,
            by_piece: HashMap::with_capacity(count),
            log_probs: Vec::with_capacity(count),
            scales: Vec::with_capacity(count),
            rows: Vec::new(),
            longest_piece: 1,
            unknown_log_prob: 0.0,
        };
        for index in 0..count {
            encoder.read_piece(&mut reader, index)?;
        }
        let rows_len = count
            .checked_mul(dim)
            .ok_or(TextEncoderError::Truncated { part: "rows" })?;
        let rows = reader.take(rows_len, "rows")?;
        encoder.rows = rows.iter().map(|&byte| byte as i8).collect();
        let extra = bytes.len() - reader.at;
        if extra != 0 {
            return Err(TextEncoderError::Trailing { extra });
        }
        let cheapest = encoder.log_probs.iter().copied().fold(0.0f32, f32::min);
        encoder.unknown_log_prob = cheapest - UNKNOWN_PENALTY;
        Ok(encoder)
    }

    fn read_piece(
        &mut self,
        reader: &mut Reader<'_>,
        index: usize,
    ) -> Result<(), TextEncoderError> {
        let len = reader.take(1, "pieces")?[0] as usize;
        let text = std::str::from_utf8(reader.take(len, "pieces")?).map_err(|_| {
            TextEncoderError::Piece {
                index,
                what: "not UTF-8",
            }
        })?;
        let log_prob = reader.f32("pieces")?;
        let scale = reader.f32("pieces")?;
        if text.is_empty() || !log_prob.is_finite() || !scale.is_finite() {
            return Err(TextEncoderError::Piece {
                index,
                what: "empty, or a value is not finite",
            });
        }
        let slot = u32::try_from(index).map_err(|_| TextEncoderError::Piece {
            index,
            what: "too many pieces",
        })?;
        if self.by_piece.insert(text.into(), slot).is_some() {
            return Err(TextEncoderError::Piece {
                index,
                what: "listed twice",
            });
        }
        self.longest_piece = self.longest_piece.max(text.chars().count());
        self.log_probs.push(log_prob);
        self.scales.push(scale);
        Ok(())
    }

    /// Width of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Splits normalised text into known pieces: the most probable segmentation under the
    /// unigram model (Viterbi), as the teacher's SentencePiece tokenizer does; characters no
    /// piece covers are skipped.
    pub fn tokenize(&self, normalised: &str) -> Vec<u32> {
        let mut chars: Vec<char> = vec![WORD_START];
        chars.extend(normalised.chars().take(MAX_INPUT_CHARS).map(|c| {
            if c == ' ' {
                WORD_START
            } else {
                c
            }
        }));
        let n = chars.len();
        // best[i]: log probability of the best split of chars[..i]; back[i]: its last piece.
        let mut best = vec![f32::NEG_INFINITY; n + 1];
        let mut back: Vec<(usize, Option<u32>)> = vec![(0, None); n + 1];
        best[0] = 0.0;
        let mut piece = String::new();
        for start in 0..n {
            if best[start] == f32::NEG_INFINITY {
                continue;
            }
            piece.clear();
            for end in start + 1..=n.min(start + self.longest_piece) {
                piece.push(chars[end - 1]);
                if let Some(&id) = self.by_piece.get(piece.as_str()) {
                    let score = best[start] + self.log_probs[id as usize];
                    if score > best[end] {
                        best[end] = score;
                        back[end] = (start, Some(id));
                    }
                }
            }
            let unknown = best[start] + self.unknown_log_prob;
            if unknown > best[start + 1] {
                best[start + 1] = unknown;
                back[start + 1] = (start, None);
            }
        }
        let mut pieces = Vec::new();
        let mut at = n;
        while at > 0 {
            let (start, id) = back[at];
            pieces.extend(id);
            at = start;
        }
        pieces.reverse();
        pieces
    }

    /// The unit-length vector of normalised text; `None` when no piece of it carries meaning.
    pub fn embed(&self, normalised: &str) -> Option<Vec<f32>> {
        let mut sum = vec![0.0f32; self.dim];
        for id in self.tokenize(normalised) {
            let id = id as usize;
            let scale = self.scales[id];
            let row = &self.rows[id * self.dim..(id + 1) * self.dim];
            for (total, &value) in sum.iter_mut().zip(row) {
                *total += scale * f32::from(value);
            }
        }
        let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
        (norm > f32::EPSILON).then(|| sum.iter().map(|x| x / norm).collect())
    }
}

impl TextEncoder {
    /// Checks every case of `selftest/text_encoder.json`; returns how many passed.
    pub fn self_test(&self, json: &[u8]) -> Result<usize, TextEncoderError> {
        let file: SelfTestFile = serde_json::from_slice(json)?;
        // Built per call, not kept: the table is looked up by text when serving.
        let texts: HashMap<u32, &str> = self
            .by_piece
            .iter()
            .map(|(text, &id)| (id, text.as_ref()))
            .collect();
        for case in &file.cases {
            let failed = |what: String| TextEncoderError::SelfTest {
                text: case.text.clone(),
                what,
            };
            let normalised = normalise(&case.text);
            let pieces: Vec<&str> = self
                .tokenize(&normalised)
                .into_iter()
                .filter_map(|id| texts.get(&id).copied())
                .collect();
            if pieces != case.tokens {
                return Err(failed(format!(
                    "pieces {pieces:?}, expected {:?}",
                    case.tokens
                )));
            }
            let vector = self.embed(&normalised).unwrap_or_default();
            let close = vector.len() >= case.vector_head.len()
                && case
                    .vector_head
                    .iter()
                    .zip(&vector)
                    .all(|(want, got)| (want - got).abs() <= file.tolerance);
            if !close {
                let head = &vector[..vector.len().min(case.vector_head.len())];
                return Err(failed(format!(
                    "vector starts {head:?}, expected {:?} (tolerance {})",
                    case.vector_head, file.tolerance
                )));
            }
        }
        Ok(file.cases.len())
    }
}

fn check_header(dim: usize, count: usize, similarities: [f32; 3]) -> Result<(), TextEncoderError> {
    let invalid = |what: String| Err(TextEncoderError::Header { what });
    if dim == 0 || dim > MAX_DIM {
        return invalid(format!("dim {dim} is not in 1..={MAX_DIM}"));
    }
    if count == 0 || count > u32::MAX as usize {
        return invalid(format!("piece count {count} is out of range"));
    }
    if !similarities.iter().all(|value| (0.0..=1.0).contains(value)) {
        return invalid(format!(
            "threshold, margin and confident {similarities:?} must be in [0, 1]"
        ));
    }
    Ok(())
}

/// How many synonyms per language of each term the encoder compares a value with: the first,
/// curated names. The longer tail of a term's list (brand-like words, spellings, slang) serves
/// exact and contained matching; as anchors it bought no accuracy on the recipe's tuning set
/// and cost a comparison each (the recipe's `ANCHORS_PER_LANGUAGE`).
pub const ANCHORS_PER_LANGUAGE: usize = 4;

/// Each term's anchor synonyms as encoder vectors, so a value is compared with each way a term
/// is written rather than with a blurred average of them.
#[derive(Debug, Clone)]
pub struct TermIndex {
    dim: usize,
    /// The anchor vectors in blocks of [`ROWS_TOGETHER`] rows, each block stored dimension by
    /// dimension (a short last block's spare rows are 0), so one dimension of a value meets a
    /// block's rows in one vector operation and each row's sum keeps its own order.
    blocks: Vec<[f32; ROWS_TOGETHER]>,
    term_of: Vec<usize>,
}

/// Anchor rows whose similarities are summed side by side.
const ROWS_TOGETHER: usize = 16;

/// The term a value reads as, and how sure the encoder is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nearest {
    /// The term's input slot.
    pub term: usize,
    /// Cosine similarity of the value and the term's closest synonym.
    pub similarity: f32,
}

impl TermIndex {
    /// Embeds the anchor synonyms of every term.
    pub fn build(encoder: &TextEncoder, vocabulary: &Vocabulary) -> TermIndex {
        let dim = encoder.dim();
        let mut rows: Vec<Vec<f32>> = Vec::new();
        let mut term_of = Vec::new();
        for term in &vocabulary.terms {
            let anchors = term.en.iter().take(ANCHORS_PER_LANGUAGE);
            for synonym in anchors.chain(term.zh.iter().take(ANCHORS_PER_LANGUAGE)) {
                if let Some(vector) = encoder.embed(&normalise(synonym)) {
                    rows.push(vector);
                    term_of.push(term.index);
                }
            }
        }
        let mut blocks = Vec::with_capacity(rows.len().div_ceil(ROWS_TOGETHER) * dim);
        for block in rows.chunks(ROWS_TOGETHER) {
            for dimension in 0..dim {
                blocks.push(std::array::from_fn(|row| {
                    block.get(row).map_or(0.0, |vector| vector[dimension])
                }));
            }
        }
        TermIndex {
            dim,
            blocks,
            term_of,
        }
    }

    /// The best similarity per term slot (`-1` for a term with no synonym vector).
    pub fn similarities(&self, vector: &[f32], terms: usize) -> Vec<f32> {
        let mut best = vec![-1.0f32; terms];
        if vector.len() != self.dim || self.dim == 0 {
            return best;
        }
        for (block, rows) in self
            .blocks
            .chunks_exact(self.dim)
            .zip(self.term_of.chunks(ROWS_TOGETHER))
        {
            let mut sums = [0.0f32; ROWS_TOGETHER];
            for (dimension, &value) in block.iter().zip(vector) {
                for (sum, &anchor) in sums.iter_mut().zip(dimension) {
                    *sum += anchor * value;
                }
            }
            for (&term, &similarity) in rows.iter().zip(&sums) {
                if let Some(slot) = best.get_mut(term) {
                    *slot = slot.max(similarity);
                }
            }
        }
        best
    }

    /// The most similar term among those `allowed` accepts (the first on a tie), if any.
    pub fn nearest(similarities: &[f32], allowed: impl Fn(usize) -> bool) -> Option<Nearest> {
        similarities
            .iter()
            .enumerate()
            .filter(|&(term, _)| allowed(term))
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
            .map(|(term, &similarity)| Nearest { term, similarity })
    }
}

#[cfg(test)]
#[path = "text_encoder_tests.rs"]
mod tests;

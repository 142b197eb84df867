"""How packd reads a brief value as vocabulary terms: the Python mirror of src/features/terms.rs.

Order: exact name or synonym in the field's own groups; when no group has the value exactly,
a misspelt synonym (one slip from a value of 6 letters, two from 10: the one nearest term, the
field's own groups first); in the mood and palette fields, an encoder reading of their own terms
at OWN_FIELD_SIMILARITY or closer; an exact name or synonym in any group (a festival typed as a
mood is still that festival); synonyms contained in the value (ASCII synonyms only at word
boundaries, not inside a longer synonym, a bare colour name only when no palette or keyword is
named beside it, and only the field's own groups when it has some); then the text encoder, in the
field's groups above its threshold, or in any group above threshold + margin.
"""

import numpy as np

from .vocab import FIELD_GROUPS, GROUPS, Encoder as SynonymMatcher, normalise

FIELDS = ("product", "audience", "mood", "palette", "keywords")

# Fields where a close encoder reading of their own terms beats another group's exact synonym
# ("earthy" as a palette is earth tones, not the natural mood), and how close it must be: packd's
# `Field::own_first` and `OWN_FIELD_SIMILARITY`, tuned on data/freetext_dev.jsonl only.
OWN_FIRST_FIELDS = ("mood", "palette")
# Fields whose value names one thing of their own group.
NAMING_FIELDS = ("product", "audience")
OWN_FIELD_SIMILARITY = 0.85


# A value of Latin letters and spaces this long may be one slip (insertion, deletion, substitution
# or swap of neighbours) from a synonym, and this long two: packd's `spelling::edits_allowed`,
# chosen on data/freetext_dev.jsonl only (shorter values meet real words: "poppy" is not "puppy").
ONE_EDIT_FROM = 6
TWO_EDITS_FROM = 10
LONGEST = 32  # longer values are phrases, not one mistyped word


def _latin(normalised):
    return bool(normalised) and all(c == " " or "a" <= c <= "z" for c in normalised)


def edits_allowed(normalised):
    """How many slips a value may hold and still be read as a synonym (None: not a spelling)."""
    if not _latin(normalised) or not ONE_EDIT_FROM <= len(normalised) <= LONGEST:
        return None
    return 2 if len(normalised) >= TWO_EDITS_FROM else 1


def starts_in_line(value, synonym):
    """The same first letter, or the first two moved by one place (packd's `starts_in_line`)."""
    return synonym[:1] == value[:1] or synonym[:1] == value[1:2] or synonym[1:2] == value[:1]


def distance_within(a, b, limit):
    """Optimal string alignment distance of a and b, or None when it is over `limit`."""
    if abs(len(a) - len(b)) > limit:
        return None
    before, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, before[j - 2] + 1)
            cur[j] = v
        if min(cur) > limit:
            return None
        before, prev = prev, cur
    return prev[-1] if prev[-1] <= limit else None


# Basic colour terms (Berlin and Kay's eleven, grey spelt both ways) and their Chinese characters:
# packd's `COLOUR_WORDS` and `COLOUR_CHARACTERS`.
COLOUR_WORDS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "grey",
                "gray")
COLOUR_CHARACTERS = "红橙橘黄绿蓝紫粉棕黑白灰"


def is_colour_name(synonym):
    """Whether a normalised synonym is nothing but basic colour words ("pinks", 粉紫, 橙色)."""
    words = synonym.split()
    if words and all(w in COLOUR_WORDS or (w.endswith("s") and w[:-1] in COLOUR_WORDS) for w in words):
        return True
    core = synonym[:-1] if synonym.endswith("色") else synonym
    return bool(core) and all(c in COLOUR_CHARACTERS for c in core)


class _Lazy:
    """A value computed on first call, then kept (packd asks its encoder at most once a value)."""

    def __init__(self, compute):
        self.compute, self.done, self.value = compute, False, None

    def __call__(self):
        if not self.done:
            self.value, self.done = self.compute(), True
        return self.value


def values_of(brief):
    """(field, value) pairs in the order packd reads them."""
    for field in FIELDS:
        vals = brief.get(field)
        if vals is None:
            continue
        for v in [vals] if isinstance(vals, str) else vals:
            yield field, v


class Reader:
    """Reads values the way packd does; `encoder`/`index` None means synonyms only."""

    def __init__(self, vocab, encoder=None, index=None):
        self.vocab = vocab
        self.terms = vocab["terms"]
        self.synonyms = SynonymMatcher(vocab)
        self.by_synonym = {}
        for t in self.terms:
            for s in t["en"] + t["zh"]:
                self.by_synonym[normalise(s)] = t["index"]
        self.spelled = sorted((n, i) for n, i in self.by_synonym.items() if _latin(n))
        self.encoder = encoder
        self.index = index

    def _misspelt(self, normalised, groups):
        """The one term whose synonym the value is nearest to within its allowed slips, among
        `groups` first, else among all (packd's `Vocabulary::misspelt`, one pass for both), or
        None when none is, or several are."""
        limit = edits_allowed(normalised)
        if limit is None:
            return None
        own, any_group = {}, {}  # distance -> terms at it
        for syn, i in self.spelled:
            if not starts_in_line(normalised, syn):
                continue
            d = distance_within(normalised, syn, limit)
            if d is None:
                continue
            if self.terms[i]["group"] in groups:
                own.setdefault(d, set()).add(i)
            any_group.setdefault(d, set()).add(i)
        for found in (own, any_group):
            if found and len(found[min(found)]) == 1:
                return next(iter(found[min(found)]))
        return None

    def _exact(self, normalised, groups):
        i = self.by_synonym.get(normalised)
        if i is not None and self.terms[i]["group"] in groups:
            return i
        return None

    def _contained(self, normalised, groups):
        """Terms with a synonym in the value (packd's `Vocabulary::contained` and `focus`): a
        synonym inside a longer one of another term is part of it, and in a field of its own
        groups the terms of those groups are what the value names."""
        matches = []
        for syn, idx, ascii_only in self.synonyms.all_syn:
            start = normalised.find(syn)
            while start >= 0:
                end = start + len(syn)
                if not ascii_only or SynonymMatcher._word_at(normalised, start, end):
                    matches.append((idx, start, end))
                start = normalised.find(syn, start + 1)
        kept = [
            (idx, normalised[start:end]) for idx, start, end in matches
            if not any(o != idx and f <= start and end <= t and t - f > end - start for o, f, t in matches)
        ]
        # a bare colour name gives way to a palette or keyword named beside it ("vaporwave pinks",
        # "orange gradient", "vivid red": packd's `Vocabulary::contained`)
        names_a_look = any(
            not is_colour_name(syn) and self.terms[idx]["group"] in ("palette", "keyword") for idx, syn in kept
        )
        hits = sorted({
            idx for idx, _ in kept
            if not (names_a_look and all(is_colour_name(syn) for i, syn in kept if i == idx))
        })
        own = [i for i in hits if self.terms[i]["group"] in groups]
        return own or hits

    def read(self, field, value):
        """(term indices, via, similarity or None), or None when the value is read as nothing."""
        n = normalise(value)
        if not n:
            return None
        groups = FIELD_GROUPS[field]
        encoded = _Lazy(lambda: self._encoded(n, groups))
        if self._exact(n, groups) is None and self._exact(n, GROUPS) is None:
            i = self._misspelt(n, groups)
            if i is not None:
                return [i], "synonym", None
        for gs in (groups, GROUPS):
            i = self._exact(n, gs)
            if i is not None:
                name = normalise(self.terms[i]["id"].split(":", 1)[1])
                return [i], ("exact" if name == n else "synonym"), None
            if gs is groups and field in OWN_FIRST_FIELDS:
                # a close encoder reading among the field's own terms comes before another
                # group's exact synonym (packd's `OWN_FIELD_SIMILARITY`)
                e = encoded()
                if e is not None and e[2] and e[3] and e[1] >= OWN_FIELD_SIMILARITY:
                    return [e[0]], "encoder", e[1]
        contained = self._contained(n, groups)
        encoded = encoded()
        if contained:
            # a product or audience value that contains only other groups' words (能量小饮 holds
            # the energetic mood) still names a product or an audience: the encoder's reading
            # among them, when it clears the threshold (packd's `Field::names_its_group`)
            if (field in NAMING_FIELDS and encoded is not None and encoded[2] and encoded[3]
                    and all(self.terms[i]["group"] not in groups for i in contained)):
                return [encoded[0]], "encoder", encoded[1]
            # a confident encoder reading of a more specific term of the one group every contained
            # term belongs to knows better (packd's `refines`)
            group = self.terms[encoded[0]]["group"] if encoded is not None else None
            if encoded is not None and encoded[4] and all(
                self.terms[i]["group"] == group and i != encoded[0] for i in contained
            ):
                return [encoded[0]], "encoder", encoded[1]
            return contained, "contains", None
        if encoded is None or not encoded[2]:
            return None
        return [encoded[0]], "encoder", encoded[1]

    def _encoded(self, n, groups):
        """(term, similarity, accepted, own group?, confident) or None (packd's `Encoded`)."""
        if self.encoder is None:
            return None
        v = self.encoder.embed(n)
        if v is None:
            return None
        sims = self.index.similarities(v)
        e = self.encoder
        own = [i for i in range(len(self.terms)) if self.terms[i]["group"] in groups]
        best_own = max(own, key=lambda i: (sims[i], -i))
        best_any = max(range(len(self.terms)), key=lambda i: (sims[i], -i))
        if sims[best_own] >= e.threshold:
            best, accepted = best_own, True
        elif sims[best_any] >= e.threshold + e.margin:
            best, accepted = best_any, True
        else:
            best, accepted = best_own, False
        confident = best == best_own and sims[best_own] >= e.confident
        return best, round(float(sims[best]), 3), accepted, best == best_own, confident

    def encode(self, brief):
        """(multi-hot, readings, warnings) as packd would build them."""
        vec = np.zeros(len(self.terms), dtype=np.float32)
        readings, warnings = [], []
        for field, v in values_of(brief):
            r = self.read(field, v)
            if r is None:
                warnings.append((field, v))
                readings.append((field, v, [], None, None))
                continue
            for i in r[0]:
                vec[i] = 1.0
            readings.append((field, v, [self.terms[i]["id"] for i in r[0]], r[1], r[2]))
        return vec, readings, warnings


class LegacyReader:
    """The reading before issue 15 (exact synonyms in the field's groups; `contains` only in
    keywords): the baseline the report compares against."""

    def __init__(self, vocab):
        self.terms = vocab["terms"]
        self.synonyms = SynonymMatcher(vocab)

    def encode(self, brief):
        vec = np.zeros(len(self.terms), dtype=np.float32)
        readings, warnings = [], []
        for field, v in values_of(brief):
            hits = self.synonyms.match(field, v)
            for i in hits:
                vec[i] = 1.0
            if not hits:
                warnings.append((field, v))
            readings.append((field, v, [self.terms[i]["id"] for i in hits], "legacy" if hits else None, None))
        return vec, readings, warnings

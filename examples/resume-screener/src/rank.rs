//! Ranking: tokenization and Okapi BM25 over the job description's terms.
//!
//! # Tokens
//!
//! [`tokenize`] lowercases the text and splits it on every character that is neither
//! alphanumeric (Unicode) nor a `+` or `#` following an alphanumeric (so `C++`, `C#` and `F#`
//! stay whole, while `node.js` becomes `node`, `js`). English function words ([`STOPWORDS`]) and
//! one-character tokens are dropped. A light plural folding maps `technologies` to
//! `technology` and `engineers` to `engineer` (`-ies` → `-y`; a final `s` is dropped from words
//! of four or more letters that do not end in `ss`, `us` or `is`). The description and the
//! resumes go through the same function, so a folding that is not a real word (`kubernetes` →
//! `kubernete`) still matches itself.
//!
//! # Scores
//!
//! The query is the set of distinct terms of the description ([`query_terms`]). Each resume of a
//! batch is a document; the batch is the collection. For a document `D` of `|D|` tokens, with
//! `avgdl` the mean document length of the batch, `N` the number of documents and `n(q)` the
//! number of documents containing `q`:
//!
//! ```text
//! score(D) = Σ_q  idf(q) · f(q,D)·(k1 + 1) / (f(q,D) + k1·(1 − b + b·|D|/avgdl))
//! idf(q)   = ln(1 + (N − n(q) + 0.5) / (n(q) + 0.5))
//! ```
//!
//! with `k1 = 1.2` and `b = 0.75`. The `1 +` inside the logarithm (as in Lucene) keeps the idf
//! positive: with the classic Robertson–Spärck Jones form a term found in half of a two-resume
//! batch would weigh exactly zero, and one found in most resumes would count against them.
//! Everything is deterministic: equal scores keep the upload order.

use std::collections::{HashMap, HashSet};

/// BM25 term-frequency saturation.
pub const K1: f64 = 1.2;
/// BM25 length normalization.
pub const B: f64 = 0.75;

/// Words that carry no meaning for matching, dropped by [`tokenize`].
pub const STOPWORDS: &[&str] = &[
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "etc",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "may",
    "me",
    "might",
    "more",
    "most",
    "must",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "per",
    "same",
    "shall",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "us",
    "very",
    "via",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "within",
    "would",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

fn is_stopword(t: &str) -> bool {
    STOPWORDS.binary_search(&t).is_ok()
}

/// Folds simple English plurals (see the [module docs](self)).
fn fold(token: String) -> String {
    let chars = token.chars().count();
    if chars > 4 && token.ends_with("ies") {
        let mut t = token;
        t.truncate(t.len() - 3);
        t.push('y');
        return t;
    }
    if chars >= 4
        && token.ends_with('s')
        && !token.ends_with("ss")
        && !token.ends_with("us")
        && !token.ends_with("is")
    {
        let mut t = token;
        t.pop();
        return t;
    }
    token
}

/// Splits `text` into normalized terms (see the [module docs](self)).
///
/// ```
/// use sse_example_resume_screener::rank::tokenize;
/// assert_eq!(
///     tokenize("Senior Rust engineers: C++, Node.js and Kubernetes!"),
///     ["senior", "rust", "engineer", "c++", "node", "js", "kubernete"]
/// );
/// ```
pub fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut flush = |cur: &mut String| {
        if cur.is_empty() {
            return;
        }
        let t = fold(std::mem::take(cur));
        if t.chars().count() > 1 && !is_stopword(&t) {
            out.push(t);
        }
    };
    for c in text.chars() {
        if c.is_alphanumeric() || ((c == '+' || c == '#') && !cur.is_empty()) {
            cur.extend(c.to_lowercase());
        } else {
            flush(&mut cur);
        }
    }
    flush(&mut cur);
    out
}

/// The distinct terms of `description`, in order of first appearance: the BM25 query.
pub fn query_terms(description: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    tokenize(description)
        .into_iter()
        .filter(|t| seen.insert(t.clone()))
        .collect()
}

/// One resume as BM25 sees it: its length in tokens and each term's frequency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    length: usize,
    tf: HashMap<String, u32>,
}

impl Document {
    /// A document from the terms [`tokenize`] made.
    pub fn from_tokens(tokens: Vec<String>) -> Self {
        let length = tokens.len();
        let mut tf: HashMap<String, u32> = HashMap::new();
        for t in tokens {
            *tf.entry(t).or_insert(0) += 1;
        }
        Document { length, tf }
    }

    /// A document from raw text.
    pub fn from_text(text: &str) -> Self {
        Document::from_tokens(tokenize(text))
    }

    /// Its length in tokens.
    pub fn len(&self) -> usize {
        self.length
    }

    /// Whether it has no tokens.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// How often `term` occurs.
    pub fn term_frequency(&self, term: &str) -> u32 {
        self.tf.get(term).copied().unwrap_or(0)
    }
}

/// The BM25 score of one document, with each matched term's share.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The document's index in the slice given to [`bm25`].
    pub index: usize,
    /// The document's BM25 score (0 when no query term occurs in it).
    pub score: f64,
    /// The query terms found in the document with their contribution to the score, largest
    /// first (ties in query order).
    pub matched: Vec<(String, f64)>,
}

/// `ln(1 + (N − n + 0.5) / (n + 0.5))`: the weight of a term found in `n` of `total` documents.
pub fn idf(total: usize, n: usize) -> f64 {
    let (total, n) = (total as f64, n as f64);
    (1.0 + (total - n + 0.5) / (n + 0.5)).ln()
}

/// Scores every document of `docs` (the whole batch: the idf and the mean length come from it)
/// against `query`. The result is in the order of `docs`; see [`rank`] for the ranking.
pub fn bm25(query: &[String], docs: &[Document]) -> Vec<Scored> {
    let total = docs.len();
    let avgdl = if total == 0 {
        0.0
    } else {
        docs.iter().map(|d| d.length as f64).sum::<f64>() / total as f64
    };
    let weights: Vec<f64> = query
        .iter()
        .map(|q| idf(total, docs.iter().filter(|d| d.tf.contains_key(q)).count()))
        .collect();
    docs.iter()
        .enumerate()
        .map(|(index, d)| {
            // |D| / avgdl; an all-empty batch has nothing to normalize (and nothing matches).
            let rel_len = if avgdl > 0.0 {
                d.length as f64 / avgdl
            } else {
                1.0
            };
            let norm = K1 * (1.0 - B + B * rel_len);
            let mut matched: Vec<(String, f64)> = query
                .iter()
                .zip(&weights)
                .filter_map(|(q, w)| {
                    let f = f64::from(d.term_frequency(q));
                    (f > 0.0).then(|| (q.clone(), w * f * (K1 + 1.0) / (f + norm)))
                })
                .collect();
            let score = matched.iter().map(|(_, s)| s).sum();
            matched.sort_by(|a, b| b.1.total_cmp(&a.1));
            Scored {
                index,
                score,
                matched,
            }
        })
        .collect()
}

/// [`bm25`], best first; equal scores keep the order of `docs`.
pub fn rank(query: &[String], docs: &[Document]) -> Vec<Scored> {
    let mut scored = bm25(query, docs);
    scored.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
    scored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(s: &str) -> Vec<String> {
        query_terms(s)
    }

    #[test]
    fn stopwords_are_sorted_for_binary_search() {
        let mut sorted = STOPWORDS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, STOPWORDS);
    }

    #[test]
    fn tokenizer() {
        assert_eq!(
            tokenize("The C# and F# developer's résumé — 10 years, PostgreSQL/Redis; a I"),
            [
                "c#",
                "f#",
                "developer",
                "résumé",
                "10",
                "year",
                "postgresql",
                "redis"
            ]
        );
        assert_eq!(
            tokenize("Technologies TECHNOLOGY"),
            ["technology", "technology"]
        );
        assert_eq!(
            tokenize("class status analysis"),
            ["class", "status", "analysis"]
        );
        assert_eq!(tokenize("++ + #"), Vec::<String>::new());
        assert_eq!(query_terms("rust Rust RUST tokio"), ["rust", "tokio"]);
    }

    #[test]
    fn idf_is_positive_and_decreasing() {
        assert!(idf(2, 1) > 0.0);
        assert!(idf(2, 2) > 0.0);
        assert!(idf(10, 1) > idf(10, 5));
        assert!((idf(2, 1) - (1.0f64 + 1.5 / 1.5).ln()).abs() < 1e-12);
    }

    #[test]
    fn hand_computed_scores() {
        // doc 0: "rust rust tokio" (3 tokens); doc 1: "java spring" (2 tokens).
        let docs = [
            Document::from_text("rust rust tokio"),
            Document::from_text("java spring"),
        ];
        let q = terms("rust tokio");
        let s = bm25(&q, &docs);
        let avgdl = 2.5;
        let norm0 = K1 * (1.0 - B + B * 3.0 / avgdl);
        let idf1 = idf(2, 1);
        let rust = idf1 * 2.0 * (K1 + 1.0) / (2.0 + norm0);
        let tokio = idf1 * 1.0 * (K1 + 1.0) / (1.0 + norm0);
        assert!((s[0].score - (rust + tokio)).abs() < 1e-12, "{s:?}");
        assert_eq!(s[0].matched[0].0, "rust");
        assert_eq!(s[1].score, 0.0);
        assert!(s[1].matched.is_empty());
    }

    #[test]
    fn ranking_prefers_matches_and_short_documents() {
        let q = terms("Rust developer with Tokio and PostgreSQL");
        let docs = [
            Document::from_text("Java developer. Spring, Oracle."),
            Document::from_text("Rust developer: tokio, axum, PostgreSQL."),
            Document::from_text(
                "Rust developer: tokio, PostgreSQL. Also gardening, cooking, hiking, chess, \
                 painting, travel, music, cycling, swimming, running, reading.",
            ),
        ];
        let r = rank(&q, &docs);
        let order: Vec<usize> = r.iter().map(|s| s.index).collect();
        assert_eq!(order, [1, 2, 0]);
        assert!(r[0].score > r[1].score && r[1].score > r[2].score);
        // Equal documents tie and keep their order.
        let same = [Document::from_text("rust"), Document::from_text("rust")];
        let r = rank(&terms("rust"), &same);
        assert_eq!(r[0].index, 0);
        assert_eq!(r[0].score, r[1].score);
    }

    #[test]
    fn empty_batch_and_empty_documents() {
        assert!(bm25(&terms("rust"), &[]).is_empty());
        let s = bm25(&terms("rust"), &[Document::default()]);
        assert_eq!(s[0].score, 0.0);
    }
}

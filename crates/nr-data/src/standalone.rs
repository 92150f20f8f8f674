//! Standalone turns: one-turn conversations whose question is a text the teacher embeds as is.
//!
//! Extra training data for native heads, with no new labels. In a standalone turn the LLM reads a
//! text as the only question, and the target is the teacher's embedding of that same text, so the
//! head sees the mapping from "the LLM read X" to "the teacher embeds X" without a history to
//! resolve. Three sources: the human rewrites of training turns ([`standalone_rewrite_turns`]), the
//! first sentences of passages of the collection ([`corpus_sentence_turns`]), and windows of
//! consecutive sentences anywhere in them ([`passage_window_turns`], the unlabelled text a head is
//! pre-trained on).

use std::collections::HashSet;
use std::path::Path;

use sha1::{Digest, Sha1};
use unicode_segmentation::UnicodeSegmentation;

use crate::collection::Passage;
use crate::error::{DataError, Result};
use crate::qrecc::QreccTurn;

fn standalone_turn(text: &str, conversation_no: u32, source: String) -> QreccTurn {
    QreccTurn {
        context: Vec::new(),
        question: text.to_string(),
        rewrite: text.to_string(),
        answer: String::new(),
        answer_url: String::new(),
        conversation_no,
        turn_no: 1,
        conversation_source: source,
    }
}

/// One standalone turn per distinct rewrite of a turn with history, numbered as conversations
/// `first_conversation_no`, `first_conversation_no + 1`, ... (turn 1 each), with the source
/// `{source}-standalone` and no answer. Turns without history are standalone already and are
/// skipped, as are empty and repeated rewrites.
pub fn standalone_rewrite_turns(turns: &[QreccTurn], first_conversation_no: u32) -> Vec<QreccTurn> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for turn in turns.iter().filter(|t| !t.context.is_empty()) {
        let rewrite = turn.rewrite.trim();
        if rewrite.is_empty() || !seen.insert(rewrite.to_string()) {
            continue;
        }
        let no = first_conversation_no + out.len() as u32;
        out.push(standalone_turn(
            rewrite,
            no,
            format!("{}-standalone", turn.conversation_source),
        ));
    }
    out
}

/// Words a corpus sentence must have to become a standalone turn: shorter ones are headings and
/// fragments, longer ones run-ons unlike any query.
pub const CORPUS_SENTENCE_WORDS: std::ops::RangeInclusive<usize> = 6..=30;

/// The first sentence of a passage (Unicode sentence boundaries, whitespace collapsed).
pub fn first_sentence(text: &str) -> String {
    collapse_whitespace(text.split_sentence_bounds().next().unwrap_or(""))
}

/// `text` with every run of whitespace made one space, trimmed.
fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Standalone turns of the first `n` distinct `texts`, numbered from `first_conversation_no`.
fn distinct_turns(
    texts: impl Iterator<Item = String>,
    n: usize,
    first_conversation_no: u32,
    source: &str,
) -> Vec<QreccTurn> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for text in texts {
        if out.len() == n {
            break;
        }
        if !seen.insert(text.clone()) {
            continue;
        }
        let no = first_conversation_no + out.len() as u32;
        out.push(standalone_turn(&text, no, source.to_string()));
    }
    out
}

/// Up to `n` standalone turns made of the first sentences of passages (source `corpus-sentence`),
/// numbered from `first_conversation_no`. Passages are taken in the order of the SHA-1 of their
/// ids, a fixed pseudo-random order that does not depend on the rest of the collection; passages
/// whose ids are in `exclude` (the gold passages of evaluation turns) are skipped, as are sentences
/// outside [`CORPUS_SENTENCE_WORDS`] and repeated ones.
pub fn corpus_sentence_turns(
    passages: &[Passage],
    exclude: &HashSet<&str>,
    n: usize,
    first_conversation_no: u32,
) -> Vec<QreccTurn> {
    let mut order: Vec<([u8; 20], &Passage)> = passages
        .iter()
        .filter(|p| !exclude.contains(p.id.as_str()))
        .map(|p| (Sha1::digest(p.id.as_bytes()).into(), p))
        .collect();
    order.sort_unstable_by_key(|(hash, _)| *hash);
    let sentences = order
        .into_iter()
        .map(|(_, passage)| first_sentence(&passage.contents))
        .filter(|s| CORPUS_SENTENCE_WORDS.contains(&s.split(' ').count()));
    distinct_turns(sentences, n, first_conversation_no, "corpus-sentence")
}

/// Words a passage window must have: as many as a short query up to a long one.
pub const WINDOW_WORDS: std::ops::RangeInclusive<usize> = 4..=60;

/// Up to `n` standalone turns (source `passage-window`, numbered from `first_conversation_no`), each
/// a window of 1 to `max_sentences` consecutive sentences of a passage (whitespace collapsed,
/// [`WINDOW_WORDS`] words). Windows overlap, so a passage of s sentences gives up to
/// `max_sentences * s` of them. They come in the order of the SHA-1 of (passage id, first sentence,
/// length), a fixed pseudo-random order over every window of the collection: any first `n` are a
/// sample of all passages, and a longer list extends a shorter one. Passages whose ids are in
/// `exclude` (the gold passages of evaluation turns) are never read; repeated windows are dropped.
pub fn passage_window_turns(
    passages: &[Passage],
    exclude: &HashSet<&str>,
    max_sentences: usize,
    n: usize,
    first_conversation_no: u32,
) -> Vec<QreccTurn> {
    window_turns(
        passages,
        exclude,
        max_sentences,
        n,
        first_conversation_no,
        "passage-window",
    )
}

/// [`passage_window_turns`] of any documents (a text corpus's paragraphs, [`read_text_corpus`]),
/// with the turns' source named `source`.
pub fn window_turns(
    passages: &[Passage],
    exclude: &HashSet<&str>,
    max_sentences: usize,
    n: usize,
    first_conversation_no: u32,
    source: &str,
) -> Vec<QreccTurn> {
    let mut windows: Vec<([u8; 20], String)> = Vec::new();
    for passage in passages.iter().filter(|p| !exclude.contains(p.id.as_str())) {
        let sentences: Vec<String> = passage
            .contents
            .split_sentence_bounds()
            .map(collapse_whitespace)
            .filter(|s| !s.is_empty())
            .collect();
        for start in 0..sentences.len() {
            for len in 1..=max_sentences.min(sentences.len() - start) {
                let text = sentences[start..start + len].join(" ");
                if !WINDOW_WORDS.contains(&text.split(' ').count()) {
                    continue;
                }
                let mut h = Sha1::new();
                h.update(passage.id.as_bytes());
                h.update([0]);
                h.update((start as u64).to_le_bytes());
                h.update((len as u64).to_le_bytes());
                windows.push((h.finalize().into(), text));
            }
        }
    }
    windows.sort_unstable_by_key(|w| w.0);
    let texts = windows.into_iter().map(|(_, text)| text);
    distinct_turns(texts, n, first_conversation_no, source)
}

/// The paragraphs of a plain-text corpus (UTF-8, one paragraph per non-empty line), as documents
/// with ids `<file name>:<line>`, for pre-training on text outside the collection
/// (`pretrain.corpus`). An empty corpus, or one that is not UTF-8, is an error naming the file.
pub fn read_text_corpus(path: &Path) -> Result<Vec<Passage>> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| DataError::Content {
        path: path.into(),
        problem: format!("not UTF-8 text ({e})"),
    })?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let docs: Vec<Passage> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| Passage {
            id: format!("{name}:{}", i + 1),
            contents: line.trim().to_string(),
        })
        .collect();
    if docs.is_empty() {
        return Err(DataError::Content {
            path: path.into(),
            problem: "no paragraph (a text corpus holds one paragraph per non-empty line)".into(),
        });
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(
        conversation_no: u32,
        turn_no: u32,
        context: &[&str],
        question: &str,
        rewrite: &str,
    ) -> QreccTurn {
        QreccTurn {
            context: context.iter().map(|s| s.to_string()).collect(),
            question: question.into(),
            rewrite: rewrite.into(),
            answer: "an answer".into(),
            answer_url: "http://a".into(),
            conversation_no,
            turn_no,
            conversation_source: "quac".into(),
        }
    }

    #[test]
    fn rewrites_of_turns_with_history_become_one_turn_conversations_once_each() {
        let turns = [
            turn(1, 1, &[], "who wrote dune?", "who wrote dune?"),
            turn(
                1,
                2,
                &["who wrote dune?", "Frank Herbert."],
                "when?",
                " When was Dune written? ",
            ),
            turn(
                2,
                2,
                &["q", "a"],
                "when was it written?",
                "When was Dune written?",
            ),
            turn(2, 3, &["q", "a", "q2", "a2"], "and him?", ""),
            turn(
                3,
                2,
                &["q", "a"],
                "his sons?",
                "Did Frank Herbert have sons?",
            ),
        ];
        let out = standalone_rewrite_turns(&turns, 500);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].question, "When was Dune written?");
        assert_eq!(out[0].rewrite, out[0].question);
        assert!(out[0].context.is_empty() && out[0].answer.is_empty());
        assert_eq!(
            (out[0].id(), out[1].id()),
            ("500_1".to_string(), "501_1".to_string())
        );
        assert_eq!(out[1].question, "Did Frank Herbert have sons?");
        assert_eq!(out[1].conversation_source, "quac-standalone");
    }

    fn passage(id: &str, contents: &str) -> Passage {
        Passage {
            id: id.into(),
            contents: contents.into(),
        }
    }

    #[test]
    fn first_sentences_end_at_the_sentence_boundary() {
        assert_eq!(
            first_sentence("Dune is a 1965 novel.  It won the Hugo Award."),
            "Dune is a 1965 novel."
        );
        assert_eq!(first_sentence("Is it long?\nYes, very."), "Is it long?");
        assert_eq!(first_sentence("no   ending at all"), "no ending at all");
    }

    #[test]
    fn corpus_sentences_follow_the_id_hash_order_and_skip_excluded_short_and_repeated_ones() {
        let long = "Frank Herbert wrote the novel Dune in nineteen sixty five.";
        let passages = [
            passage("p1", long),
            passage(
                "p2",
                "Too short. Then a much longer second sentence follows here.",
            ),
            passage(
                "p3",
                "The Hugo Award is given every year for science fiction works.",
            ),
            passage("p4", long),
            passage(
                "gold",
                "Arrakis is the desert planet where the whole story takes place.",
            ),
        ];
        let exclude: HashSet<&str> = ["gold"].into();
        let out = corpus_sentence_turns(&passages, &exclude, 10, 7);
        // Kept: p1's and p3's sentences once each (p4 repeats p1, p2's first sentence has 2 words,
        // "gold" is excluded), in the order of SHA-1(id): p1 = b78f5766..., p3 = e4fbe62d...
        let texts: Vec<&str> = out.iter().map(|t| t.question.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                long,
                "The Hugo Award is given every year for science fiction works."
            ]
        );
        assert!(out.iter().all(|t| t.rewrite == t.question
            && t.context.is_empty()
            && t.conversation_source == "corpus-sentence"));
        assert_eq!(
            (out[0].id(), out[1].id()),
            ("7_1".to_string(), "8_1".to_string())
        );
        assert_eq!(
            corpus_sentence_turns(&passages, &exclude, 1, 7).len(),
            1,
            "at most n"
        );
    }

    #[test]
    fn passage_windows_cover_every_run_of_one_to_n_sentences_once_outside_excluded_passages() {
        let passages = [
            passage(
                "p1",
                "Dune is a novel by Frank Herbert.  It won the Hugo Award in 1966. Sequels followed soon.",
            ),
            passage("p2", "Dune is a novel by Frank Herbert. Ok."),
            passage("gold", "Arrakis is the desert planet of the whole story."),
        ];
        let exclude: HashSet<&str> = ["gold"].into();
        let out = passage_window_turns(&passages, &exclude, 2, 100, 5);
        let mut texts: Vec<&str> = out.iter().map(|t| t.question.as_str()).collect();
        // p1: its 3 sentences, and the 2 runs of two; p2: its first sentence repeats p1's, "Ok."
        // is one word, and the pair of both has 8 words.
        let listed = texts.clone();
        texts.sort_unstable();
        assert_eq!(
            texts,
            vec![
                "Dune is a novel by Frank Herbert.",
                "Dune is a novel by Frank Herbert. It won the Hugo Award in 1966.",
                "Dune is a novel by Frank Herbert. Ok.",
                "It won the Hugo Award in 1966.",
                "It won the Hugo Award in 1966. Sequels followed soon.",
            ]
        );
        assert!(!listed.iter().any(|t| t.contains("Arrakis")));
        assert!(!listed.contains(&"Sequels followed soon."), "3 words");
        assert!(out.iter().all(|t| t.rewrite == t.question
            && t.context.is_empty()
            && t.conversation_source == "passage-window"));
        assert_eq!(out[0].id(), "5_1");
        // A shorter list is the beginning of a longer one.
        let three = passage_window_turns(&passages, &exclude, 2, 3, 5);
        assert_eq!(
            three.iter().map(|t| &t.question).collect::<Vec<_>>(),
            out[..3].iter().map(|t| &t.question).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_text_corpus_gives_one_document_per_paragraph_and_its_windows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wiki.txt");
        std::fs::write(
            &path,
            "  Dune is a novel by Frank Herbert. It won the Hugo Award in 1966.\n\n\
             Arrakis is the desert planet of the whole story.\n",
        )
        .unwrap();
        let docs = read_text_corpus(&path).unwrap();
        let listed: Vec<(&str, &str)> = docs
            .iter()
            .map(|d| (d.id.as_str(), d.contents.as_str()))
            .collect();
        assert_eq!(
            listed,
            [
                (
                    "wiki.txt:1",
                    "Dune is a novel by Frank Herbert. It won the Hugo Award in 1966."
                ),
                (
                    "wiki.txt:3",
                    "Arrakis is the desert planet of the whole story."
                )
            ]
        );
        let out = window_turns(&docs, &HashSet::new(), 2, 100, 7, "corpus-window");
        let mut texts: Vec<&str> = out.iter().map(|t| t.question.as_str()).collect();
        texts.sort_unstable();
        assert_eq!(
            texts,
            [
                "Arrakis is the desert planet of the whole story.",
                "Dune is a novel by Frank Herbert.",
                "Dune is a novel by Frank Herbert. It won the Hugo Award in 1966.",
                "It won the Hugo Award in 1966.",
            ]
        );
        assert!(out.iter().all(|t| t.conversation_source == "corpus-window"));
        assert_eq!(out[0].id(), "7_1");

        std::fs::write(&path, "\n  \n").unwrap();
        let err = read_text_corpus(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&path.display().to_string()) && err.contains("no paragraph"),
            "{err}"
        );
        std::fs::write(&path, b"caf\xe9\n").unwrap();
        let err = read_text_corpus(&path).unwrap_err().to_string();
        assert!(err.contains("not UTF-8"), "{err}");
        let err = read_text_corpus(&dir.path().join("missing.txt"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.txt"), "{err}");
    }
}

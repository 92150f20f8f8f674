//! The data of native retrieval, model-free: QReCC conversations, passage collections, TREC qrels
//! and run files, conversations as chat messages, the answers-as-passages corpus builder, and the
//! content-addressed caches of embeddings and hidden states.

pub mod cache;
pub mod chat;
pub mod collection;
pub mod corpus;
pub mod error;
pub mod feature_store;
pub mod infocqr;
pub mod qrecc;
pub mod qrels;
pub mod run;
pub mod shared;
pub mod standalone;

pub use cache::{
    CacheKey, CacheKeyBuilder, CacheLookup, CachedTensor, StorageDtype, TensorCache, TensorSet,
    file_sha256,
};
pub use chat::{
    ChatMessage, FittedChat, ROLE_ASSISTANT, ROLE_SYSTEM, ROLE_USER, conversation_messages,
    fit_conversation,
};
pub use collection::{
    Passage, PassageReader, read_collection, read_unique_passages, write_collection,
};
pub use corpus::{
    AnswerCorpus, AnswerSources, MIN_ANSWER_CHARS, answer_passage_id, normalize_whitespace,
};
pub use error::{DataError, Result};
pub use feature_store::{FEATURE_STORE_FORMAT, FeatureStore, FeatureStoreWriter};
pub use infocqr::{parse_infocqr_turns, read_infocqr_turns};
pub use qrecc::{
    QreccTurn, parse_qrecc_turns, read_qrecc_turns, source_by_turn_id, write_qrecc_turns,
};
pub use qrels::{Judgment, Qrels, QueryQrels};
pub use run::{QueryRun, Run, ScoredDoc};
pub use shared::{qrecc_offline, shared_path, shared_root};
pub use standalone::{
    CORPUS_SENTENCE_WORDS, WINDOW_WORDS, corpus_sentence_turns, first_sentence,
    passage_window_turns, read_text_corpus, standalone_rewrite_turns, window_turns,
};

/// The README examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

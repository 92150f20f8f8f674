//! The lexicon file: a round trip through f16, the sidecar in its metadata, and the errors of a
//! lexicon read against another setup or from a damaged file.

mod common;

use common::{D, meta};
use nr_head::{ConversationWeights, LexicalMix, Lexicon, Speaker, lexicon_path};

fn mix() -> LexicalMix {
    LexicalMix {
        conversation: ConversationWeights {
            user: 0.2,
            assistant: 0.7,
            decay: 0.5,
        },
        dense_weight: 0.25,
    }
}

fn lexicon() -> Lexicon {
    // vocab 4, the teacher's width; 0.1 is not an f16 value, so rounding is visible, the other
    // values (multiples of 1/8 up to 4) are exact in f16.
    let mut table: Vec<f32> = (0..4 * D).map(|i| (i as f32 - 13.0) / 8.0).collect();
    table[0] = 0.1;
    Lexicon::new(D, table).unwrap()
}

#[test]
fn a_saved_lexicon_reads_back_as_its_f16_rounding() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("head");
    let lex = lexicon();
    lex.save(&stem, &mix(), &meta(2)).unwrap();
    assert!(lexicon_path(&stem).ends_with("head.lexicon.safetensors"));
    let (loaded, how) = Lexicon::load(&stem, &meta(2)).unwrap();
    assert_eq!(how, mix());
    let mut rounded = lex.clone();
    rounded.round_to_f16();
    assert_eq!(loaded, rounded);
    // 0.1 as f16 is 0.0999755859375; exact values stay exact.
    assert_eq!(loaded.table[0], 0.099_975_586);
    assert_eq!(&loaded.table[1..], &lex.table[1..]);
    let history = vec![(Speaker::User, vec![1]), (Speaker::Assistant, vec![2, 3])];
    assert_eq!(loaded.vocab(), 4);
    assert_eq!(
        loaded
            .conversation(&[0], &history, &how.conversation)
            .unwrap(),
        rounded
            .conversation(&[0], &history, &how.conversation)
            .unwrap()
    );
}

#[test]
fn another_setup_or_a_damaged_file_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("head");
    lexicon().save(&stem, &mix(), &meta(2)).unwrap();
    let err = Lexicon::load(&stem, &meta(1)).unwrap_err().to_string();
    assert!(
        err.contains("backbone.layers") && err.contains("head.lexicon.safetensors"),
        "{err}"
    );

    let path = lexicon_path(&stem);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
    let err = Lexicon::load(&stem, &meta(2)).unwrap_err().to_string();
    assert!(
        err.contains("head.lexicon.safetensors") && !err.contains('\n'),
        "{err}"
    );

    std::fs::write(&path, b"not safetensors").unwrap();
    let err = Lexicon::load(&stem, &meta(2)).unwrap_err().to_string();
    assert!(err.contains("not a safetensors file"), "{err}");

    let missing = Lexicon::load(&dir.path().join("nothing"), &meta(2))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("nothing.lexicon.safetensors"), "{missing}");
}

//! The BERT encoder as burn modules: embeddings, then a stack of [`BertLayer`]s.

use burn::module::Module;
use burn::nn::{Embedding, LayerNorm};
use burn::tensor::{Bool, Device, Int, Tensor};

use super::config::BertConfig;
use super::layer::BertLayer;
use crate::error::{BackboneError, Result};
use crate::weights::{WeightSource, embedding, layer_norm};

/// Word + absolute position + token-type embeddings, summed and LayerNorm-ed.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    pub word: Embedding,
    pub position: Embedding,
    pub token_type: Embedding,
    pub norm: LayerNorm,
}

impl BertEmbeddings {
    fn load(
        src: &dyn WeightSource,
        prefix: &str,
        cfg: &BertConfig,
        device: &Device,
    ) -> Result<Self> {
        let d = cfg.hidden_size;
        let name = |n: &str| format!("{prefix}embeddings.{n}");
        Ok(Self {
            word: embedding(
                src,
                &name("word_embeddings.weight"),
                cfg.vocab_size,
                d,
                device,
            )?,
            position: embedding(
                src,
                &name("position_embeddings.weight"),
                cfg.max_position_embeddings,
                d,
                device,
            )?,
            token_type: embedding(
                src,
                &name("token_type_embeddings.weight"),
                cfg.type_vocab_size,
                d,
                device,
            )?,
            norm: layer_norm(src, &name("LayerNorm"), d, cfg.layer_norm_eps, device)?,
        })
    }

    /// `input_ids` `[batch, seq]` -> `[batch, seq, hidden]`, positions `0..seq`, every token of
    /// segment 0 (single-text encoding, as sentence-transformers does).
    fn forward(&self, input_ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, seq] = input_ids.dims();
        let [_, d] = self.position.weight.dims();
        let words = self.word.forward(input_ids);
        let positions = self
            .position
            .weight
            .val()
            .narrow(0, 0, seq)
            .reshape([1, seq, d]);
        let segment = self
            .token_type
            .weight
            .val()
            .narrow(0, 0, 1)
            .reshape([1, 1, d]);
        self.norm.forward(words + positions + segment)
    }
}

/// A BERT encoder without its pooler: token ids in, last-layer token states out.
#[derive(Module, Debug)]
pub struct BertModel {
    pub embeddings: BertEmbeddings,
    pub layers: Vec<BertLayer>,
    /// Longest sequence the position table covers.
    pub max_positions: usize,
}

impl BertModel {
    /// Builds the encoder from HF-named weights, with or without the `bert.` prefix that
    /// `BertForMaskedLM`-style checkpoints carry. Shapes are checked against `cfg`.
    pub fn load(src: &dyn WeightSource, cfg: &BertConfig, device: &Device) -> Result<Self> {
        let prefix = if src.contains("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else {
            ""
        };
        let embeddings = BertEmbeddings::load(src, prefix, cfg, device)?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| BertLayer::load(src, &format!("{prefix}encoder.layer.{i}"), cfg, device))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embeddings,
            layers,
            max_positions: cfg.max_position_embeddings,
        })
    }

    /// Token states of the last layer, `[batch, seq, hidden]`.
    ///
    /// `input_ids` `[batch, seq]`; `padding` `[batch, 1, seq, seq]` is true where the key (last axis)
    /// is a padding position, shared by all heads and layers (`None` when no row is padded; see
    /// [`PaddedBatch`](super::batching::PaddedBatch)). Padded positions still get (meaningless)
    /// states: pool over the mask.
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        padding: Option<Tensor<4, Bool>>,
    ) -> Result<Tensor<3>> {
        let [batch, seq] = input_ids.dims();
        if seq == 0 || seq > self.max_positions {
            return Err(BackboneError::Input(format!(
                "teacher: sequence length {seq} outside 1..={}",
                self.max_positions
            )));
        }
        if let Some(p) = &padding
            && p.dims() != [batch, 1, seq, seq]
        {
            return Err(BackboneError::Input(format!(
                "teacher: padding mask has shape {:?}, expected {:?}",
                p.dims(),
                [batch, 1, seq, seq]
            )));
        }
        let mut x = self.embeddings.forward(input_ids);
        for layer in &self.layers {
            x = layer.forward(x, padding.clone());
        }
        Ok(x)
    }
}

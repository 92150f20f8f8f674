//! GGUF v3 (being written).

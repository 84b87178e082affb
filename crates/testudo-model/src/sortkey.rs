//! Order-preserving key encoding of values (placeholder).

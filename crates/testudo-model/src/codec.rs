//! The versioned binary encoding of stored documents.

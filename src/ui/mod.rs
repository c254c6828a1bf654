//! Drawing (placeholder).

//! `rules test`.

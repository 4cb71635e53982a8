//! `rules schema`.

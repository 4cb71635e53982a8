//! codegen-sentinel: an automation daemon around Codegen agent runs.
//!
//! # Layout
//! - [`api`]: the typed Codegen REST client, its wire models, errors and the shared rate budget.
//! - [`sim`]: an in-process Codegen simulator (tests, benches, `demo`, `simulate serve`).
//! - [`config`]: `sentinel.yaml` loaded into validated settings; secrets resolved and held in secrecy types.
//! - [`cli`]: one module per command group; `main.rs` only parses and dispatches.
//! - [`store`]: the sled database (the only code touching sled): named trees, typed keys, versioned records, transactions, retention.

pub mod store;

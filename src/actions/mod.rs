//! Actions rules can run (DESIGN §6): the catalogue used to check rules when they load, and
//! (with the executor) their implementations.

pub mod spec;

pub use spec::{action, ActionSpec, ParamKind, ParamSpec, ACTIONS};

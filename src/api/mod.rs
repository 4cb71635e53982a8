//! The Codegen REST API: a typed client for every operation of the official spec, its wire
//! models, its errors, and the process-wide rate budget.

pub mod client;
pub mod error;
pub mod limits;
pub mod models;

pub use client::{collect_pages, ClientBuilder, CodegenClient, PageRequest, RunFilter};
pub use error::ApiError;
pub use limits::{LimitClass, RateBudget};
pub use models::*;

//! Reading a webhook body: at most `max_body` bytes, within a process-wide memory budget for
//! bodies in flight, before a deadline. An oversized body is refused as soon as its
//! `Content-Length` or its running size says so, without reading the rest.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bodies held in memory at once never exceed this (or twice `max_body`, if larger): beyond it,
/// new reads wait for earlier deliveries to finish.
pub const MIN_BODY_BUDGET: u64 = 32 << 20;

/// A body must arrive within this; slower senders are cut off (a slow client must not hold a
/// share of the memory budget for long).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Memory is accounted in KiB units of the budget semaphore.
const UNIT: u64 = 1024;

/// Why a body was not read.
#[derive(Debug)]
pub enum BodyError {
    /// Longer than `max_body` (declared or counted).
    TooLarge,
    /// Not received within [`BODY_TIMEOUT`].
    Timeout,
    /// The connection failed while reading.
    Read(axum::Error),
}

/// A body read in full, as the chunks it arrived in, holding its share of the memory budget
/// until dropped (also after its bytes were taken: they live on as the delivery's payload
/// text).
///
/// The chunks are joined only once the signature holds: a refused body is never copied (nor
/// allocated whole, which for a 28 KB body also made the allocator sort its free lists).
pub struct HeldBody {
    chunks: Vec<Bytes>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl HeldBody {
    /// The body as received, in parts.
    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    /// The body's bytes in one piece; the budget stays held by `self`.
    pub fn take_bytes(&mut self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.chunks.iter().map(Bytes::len).sum());
        for chunk in self.chunks.drain(..) {
            bytes.extend_from_slice(&chunk);
        }
        bytes
    }
}

/// Reads bodies up to `max_body` bytes within a shared memory budget.
#[derive(Debug, Clone)]
pub struct BodyReader {
    max_body: u64,
    budget: Arc<Semaphore>,
}

impl BodyReader {
    pub fn new(max_body: u64) -> BodyReader {
        let budget = MIN_BODY_BUDGET.max(max_body.saturating_mul(2));
        let units = usize::try_from(budget.div_ceil(UNIT)).unwrap_or(usize::MAX >> 4);
        BodyReader {
            max_body,
            budget: Arc::new(Semaphore::new(units.min(Semaphore::MAX_PERMITS))),
        }
    }

    pub fn max_body(&self) -> u64 {
        self.max_body
    }

    /// Refuses a declared length over the limit before anything is read.
    pub fn check_declared(&self, content_length: Option<u64>) -> Result<(), BodyError> {
        match content_length {
            Some(len) if len > self.max_body => Err(BodyError::TooLarge),
            _ => Ok(()),
        }
    }

    /// Reads the whole body, stopping at the first chunk that goes over `max_body`.
    pub async fn read(
        &self,
        body: Body,
        content_length: Option<u64>,
    ) -> Result<HeldBody, BodyError> {
        self.check_declared(content_length)?;
        tokio::time::timeout(BODY_TIMEOUT, self.read_capped(body))
            .await
            .map_err(|_| BodyError::Timeout)?
    }

    async fn read_capped(&self, body: Body) -> Result<HeldBody, BodyError> {
        let mut chunks = Vec::with_capacity(2);
        let mut len = 0u64;
        let mut permit: Option<OwnedSemaphorePermit> = None;
        let mut held_units = 0u64;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(BodyError::Read)?;
            let total = len + chunk.len() as u64;
            if total > self.max_body {
                return Err(BodyError::TooLarge);
            }
            let need = total.div_ceil(UNIT).saturating_sub(held_units);
            if need > 0 {
                held_units += need;
                // `need` is at most max_body / UNIT, below the budget by construction. The
                // semaphore is never closed, so acquiring cannot fail.
                let units = u32::try_from(need).unwrap_or(u32::MAX);
                if let Ok(more) = self.budget.clone().acquire_many_owned(units).await {
                    match permit.as_mut() {
                        Some(p) => p.merge(more),
                        None => permit = Some(more),
                    }
                }
            }
            len = total;
            chunks.push(chunk);
        }
        Ok(HeldBody {
            chunks,
            _permit: permit,
        })
    }
}

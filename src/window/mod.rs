//! Five-minute tumbling windows per account: arithmetic, batches, and the engine.

mod batch;

pub use batch::{Batch, BatchEvent, BatchId, BatchKind};

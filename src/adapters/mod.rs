//! Adapters: the ports' implementations that do I/O (or keep state in memory).

pub mod kinesis;
pub mod memory;
pub mod metrics;
pub mod stdout;
pub mod system_clock;

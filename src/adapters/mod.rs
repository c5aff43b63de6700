//! Adapters: the ports' implementations that do I/O (or keep state in memory).

#[cfg(feature = "cloud")]
pub mod bedrock;
#[cfg(feature = "cloud")]
pub mod dynamo;
pub mod either;
#[cfg(feature = "cloud")]
pub mod kinesis;
pub mod memory;
pub mod metrics;
#[cfg(feature = "cloud")]
pub mod organizations;
pub mod retry;
#[cfg(feature = "cloud")]
pub mod secrets;
#[cfg(feature = "cloud")]
pub mod slack;
pub mod spill;
pub mod stdout;
pub mod system_clock;

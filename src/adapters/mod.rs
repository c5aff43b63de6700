//! Adapters: the ports' implementations that do I/O (or keep state in memory).

pub mod bedrock;
pub mod dynamo;
pub mod either;
pub mod kinesis;
pub mod memory;
pub mod metrics;
pub mod organizations;
pub mod retry;
pub mod secrets;
pub mod slack;
pub mod spill;
pub mod stdout;
pub mod system_clock;

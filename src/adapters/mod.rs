//! Adapters: the ports' implementations that do I/O (or keep state in memory).

pub mod bedrock;
pub mod dynamo;
pub mod memory;
pub mod secrets;
pub mod slack;
pub mod system_clock;

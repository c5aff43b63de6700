//! Adapters: the ports' implementations that do I/O (or keep state in memory).

pub mod bedrock;
pub mod memory;
pub mod system_clock;

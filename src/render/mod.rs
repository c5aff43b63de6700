//! Rendering of deliveries: Slack Block Kit, the HTML and text previews, and escaping of
//! event text. A leaf: only the adapters and `app` use it, never the engine or the ports.

pub mod console;
pub mod escape;
pub mod html;
mod mrkdwn;
pub mod slack;
pub mod text;

pub use escape::{code, escape, plain, truncate_chars};
pub use html::preview;
pub use slack::{SlackMessage, render_batch};
pub use text::text;

//! Rendering: Slack Block Kit, the HTML preview, and escaping of event text.

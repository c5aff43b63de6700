//! Redaction: credentials and secret-looking values never leave the process.

//! The real Claude Code client for end-to-end tests: being written.

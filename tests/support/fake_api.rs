//! A scriptable fake Anthropic Messages API: being written.

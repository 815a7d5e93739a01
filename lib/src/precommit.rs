//! The config-validator git pre-commit hook: installing it (chained to an existing hook) and
//! removing it.
//!
//! IN PROGRESS — being written.

//! Registering ctxopt's hooks in a project's settings, and removing exactly that again.
//!
//! IN PROGRESS — being written.

//! Snapshot of protected files before a tool call, comparison and repair after it.
//! IN PROGRESS — being written.

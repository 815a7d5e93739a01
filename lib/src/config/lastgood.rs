//! Last-known-good copies, the SessionStart validation cache, drift audit, restore.
//!
//! IN PROGRESS — being written.

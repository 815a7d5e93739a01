//! Shared test support: temporary HOME and project per test, paths of the real binaries.
//! Each integration test file includes it with `mod support;`.

#![allow(dead_code, reason = "each test binary uses a different part of the support code")]

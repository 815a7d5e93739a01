//! Masking of secrets and trimming of free text before it is stored.
//!
//! The record writer passes every free-text field through [`clean`], so no caller can store a
//! raw command line or error text by accident. The rules are deliberately simple token
//! checks (no regex engine: it would cost start-up time on every hook run): a token is
//! masked when it starts with a known credential prefix, follows a `Bearer`/`Basic` keyword,
//! is the value of a `key=value` / `key: value` pair whose key names a secret, or is a long
//! run of base64/hex characters. Known limit: a secret split across tokens, or a short
//! secret under an innocent name, passes through.

use std::borrow::Cow;

/// What a masked secret is replaced with.
pub const MASK: &str = "[REDACTED]";

const PREFIXES: &[&str] = &[
    "sk-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxs-",
    "AKIA",
    "ASIA",
    "AIza",
    "ya29.",
    "npm_",
    "pypi-",
    "hf_",
    "eyJ",
];

const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "private_key",
    "auth",
    "credential",
    "session",
];

/// Masks secrets in `text`, keeps only its first line, and truncates it to `max_chars`
/// characters (an ellipsis marks a cut).
#[must_use]
pub fn clean(text: &str, max_chars: usize) -> String {
    let first = text.lines().next().unwrap_or("");
    let masked = mask(first);
    truncate(&masked, max_chars)
}

/// Truncates to at most `max_chars` characters, marking a cut with `…`.
#[must_use]
pub fn truncate(text: &str, max_chars: usize) -> String {
    if text.char_indices().nth(max_chars).is_none() {
        return text.to_owned();
    }
    let keep: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    keep + "…"
}

/// Masks every token of `text` that looks like a secret; returns the input untouched when
/// nothing matched.
#[must_use]
pub fn mask(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut changed = false;
    let mut mask_next = false;
    let mut last = 0;
    for (start, token) in tokens(text) {
        let bare = token.trim_matches(|c: char| "'\"`,;()[]{}<>".contains(c));
        let secret = mask_next && !bare.is_empty() || looks_secret(bare);
        mask_next = is_auth_scheme(bare) || ends_with_secret_key(bare);
        let value_start = secret_value_offset(bare);
        if secret || value_start.is_some() {
            let offset_in_token = token.find(bare).unwrap_or(0);
            let begin = start + offset_in_token + value_start.unwrap_or(0);
            let end = start + offset_in_token + bare.len();
            if begin < end {
                out.push_str(&text[last..begin]);
                out.push_str(MASK);
                last = end;
                changed = true;
            }
        }
    }
    if !changed {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

fn tokens(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_whitespace()
        .map(move |t| (t.as_ptr() as usize - text.as_ptr() as usize, t))
}

fn is_auth_scheme(token: &str) -> bool {
    token.eq_ignore_ascii_case("bearer") || token.eq_ignore_ascii_case("basic")
}

fn is_secret_key(key: &str) -> bool {
    let key = key.trim_start_matches('-').to_ascii_lowercase();
    SECRET_KEYS.iter().any(|k| key.ends_with(k))
}

/// `--password` or `Authorization:` followed by the value in the next token.
fn ends_with_secret_key(token: &str) -> bool {
    let key = token.trim_end_matches(':');
    (token.ends_with(':') || token.starts_with("--"))
        && !key.contains('=')
        && (is_secret_key(key) || key.eq_ignore_ascii_case("authorization"))
}

/// For `key=value` / `key:value` with a secret key, where the value starts.
fn secret_value_offset(token: &str) -> Option<usize> {
    let split = token.find(['=', ':'])?;
    let (key, value) = token.split_at(split);
    (is_secret_key(key) && value.len() > 1).then_some(split + 1)
}

fn looks_secret(token: &str) -> bool {
    if token.len() >= 12 && PREFIXES.iter().any(|p| token.starts_with(p)) {
        return true;
    }
    token.len() >= 32
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=_-".contains(c))
        && token.chars().any(|c| c.is_ascii_digit())
        && token.chars().any(|c| c.is_ascii_alphabetic())
        && !token.contains("__")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_bearer_tokens_and_known_prefixes() {
        let s = "curl -H 'Authorization: Bearer abc.def' -d key=sk-ant-api03-XXXXXXXXXXXXXXXX x";
        let m = mask(s);
        assert!(!m.contains("abc.def"), "{m}");
        assert!(!m.contains("sk-ant"), "{m}");
        assert!(m.starts_with("curl -H"), "{m}");
    }

    #[test]
    fn masks_secret_key_values() {
        assert_eq!(mask("PASSWORD=hunter2 make"), "PASSWORD=[REDACTED] make");
        assert_eq!(
            mask("mysql --password s3cr3t db"),
            "mysql --password [REDACTED] db"
        );
        assert_eq!(
            mask("export GITHUB_TOKEN=ghp_abc"),
            "export GITHUB_TOKEN=[REDACTED]"
        );
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        let s = "cargo test --workspace --locked";
        assert!(matches!(mask(s), Cow::Borrowed(_)));
        assert_eq!(
            mask("ls mcp__memory__read_graph"),
            "ls mcp__memory__read_graph"
        );
    }

    #[test]
    fn masks_long_high_entropy_tokens() {
        let m = mask("use 0123456789abcdef0123456789abcdef0123 now");
        assert_eq!(m, "use [REDACTED] now");
    }

    #[test]
    fn clean_keeps_first_line_and_caps_length() {
        assert_eq!(clean("Exit code 3\nsecret output", 200), "Exit code 3");
        let long = "x".repeat(300);
        let c = clean(&long, 200);
        assert_eq!(c.chars().count(), 200);
        assert!(c.ends_with('…'));
    }
}

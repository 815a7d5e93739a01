//! The embedded JSON Schemas (`lib/schemas/*.schema.json`), one per [`Kind`], and validation
//! against them: each schema error becomes one `E100` [`Diagnostic`] a person can act on.
//!
//! The schemas are compiled once per kind, on first use ([`LazyLock`]), with `jsonschema`
//! built without network features: every `$ref` is local to its file. So that each schema
//! stands alone (for editors too), the MCP server definitions are repeated in
//! `mcp.schema.json` and `claude-json.schema.json`; a unit test keeps the copies equal.
//!
//! Messages: jsonschema's own texts name neither the key nor what it should be, so each error
//! is rewritten from its kind and from two annotations our schemas carry beside the keyword
//! that failed: `x-expected` (what a valid value is, in words: "a number greater than 0
//! (seconds)") and `x-required-hint` (why a required key is needed). Both are ignored by other
//! validators.
//!
//! This module only judges shape; checks that need more than the value (hook event names,
//! regexes, executables) live in [`super::checks`].

use std::fmt::Write as _;
use std::sync::LazyLock;

use jsonschema::error::{ValidationError, ValidationErrorKind};
use jsonschema::{Draft, Validator};
use serde_json::Value;

use super::Kind;
use crate::diagnostic::{Code, Diagnostic, Level, Position};

/// One embedded schema, parsed and compiled.
struct Compiled {
    /// The schema document, to read `x-expected` and friends from.
    schema: Value,
    /// The compiled validator.
    validator: Validator,
}

/// A compiled schema, or why the embedded text did not compile (a bug caught by the tests).
type Slot = LazyLock<Result<Compiled, String>>;

static SETTINGS: Slot = LazyLock::new(|| compile(SETTINGS_TEXT));
static CLAUDE_JSON: Slot = LazyLock::new(|| compile(CLAUDE_JSON_TEXT));
static MCP_JSON: Slot = LazyLock::new(|| compile(MCP_JSON_TEXT));
static CANARY: Slot = LazyLock::new(|| compile(CANARY_TEXT));
static SKILL_JSON: Slot = LazyLock::new(|| compile(SKILL_JSON_TEXT));
static SKILL_MD: Slot = LazyLock::new(|| compile(SKILL_MD_TEXT));
static POLICY: Slot = LazyLock::new(|| compile(POLICY_TEXT));

const SETTINGS_TEXT: &str = include_str!("../../schemas/settings.schema.json");
const CLAUDE_JSON_TEXT: &str = include_str!("../../schemas/claude-json.schema.json");
const MCP_JSON_TEXT: &str = include_str!("../../schemas/mcp.schema.json");
const CANARY_TEXT: &str = include_str!("../../schemas/canary.schema.json");
const SKILL_JSON_TEXT: &str = include_str!("../../schemas/skill-json.schema.json");
const SKILL_MD_TEXT: &str = include_str!("../../schemas/skill-md.schema.json");
const POLICY_TEXT: &str = include_str!("../../schemas/policy.schema.json");

/// The embedded schema text for `kind`, as shipped in `lib/schemas/` (for editors and docs).
#[must_use]
pub fn source(kind: Kind) -> &'static str {
    match kind {
        Kind::ProjectSettings
        | Kind::LocalSettings
        | Kind::UserSettings
        | Kind::ManagedSettings => SETTINGS_TEXT,
        Kind::ClaudeJson => CLAUDE_JSON_TEXT,
        Kind::McpJson => MCP_JSON_TEXT,
        Kind::Canary => CANARY_TEXT,
        Kind::SkillJson => SKILL_JSON_TEXT,
        Kind::SkillMd => SKILL_MD_TEXT,
        Kind::Policy => POLICY_TEXT,
    }
}

fn compiled(kind: Kind) -> &'static Result<Compiled, String> {
    match kind {
        Kind::ProjectSettings
        | Kind::LocalSettings
        | Kind::UserSettings
        | Kind::ManagedSettings => &SETTINGS,
        Kind::ClaudeJson => &CLAUDE_JSON,
        Kind::McpJson => &MCP_JSON,
        Kind::Canary => &CANARY,
        Kind::SkillJson => &SKILL_JSON,
        Kind::SkillMd => &SKILL_MD,
        Kind::Policy => &POLICY,
    }
}

fn compile(text: &str) -> Result<Compiled, String> {
    let schema: Value = serde_json::from_str(text).map_err(|err| err.to_string())?;
    let validator = jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(false)
        .build(&schema)
        .map_err(|err| err.to_string())?;
    Ok(Compiled { schema, validator })
}

/// Validates `value` against `kind`'s schema; `at` maps a JSON pointer to its position.
#[must_use]
pub fn validate(
    kind: Kind,
    display: &str,
    value: &Value,
    at: &dyn Fn(&str) -> Position,
) -> Vec<Diagnostic> {
    let compiled = match compiled(kind) {
        Ok(compiled) => compiled,
        Err(reason) => {
            return vec![Diagnostic::new(
                display,
                Position::default(),
                Level::Error,
                Code::E100,
                format!(
                    "ctxopt's embedded schema for this file does not compile ({reason}); this is a bug in ctxopt"
                ),
                "",
            )];
        }
    };
    let mut found = Vec::new();
    for error in compiled.validator.iter_errors(value) {
        for (pointer, message) in describe(&error, &compiled.schema) {
            found.push(Diagnostic::new(
                display,
                at(&pointer),
                Level::Error,
                Code::E100,
                message,
                pointer,
            ));
        }
    }
    found.dedup();
    found
}

/// The findings (pointer, message) for one schema error; several for unknown keys.
fn describe(error: &ValidationError<'_>, schema: &Value) -> Vec<(String, String)> {
    let pointer = error.instance_path().as_str().to_owned();
    let keyword_at = error.schema_path().as_str();
    let here = schema.pointer(parent(keyword_at));
    let expected = here
        .and_then(|s| s.get("x-expected"))
        .and_then(Value::as_str);
    let name = subject(&pointer);
    let found = found(error.instance());
    let must_be = |what: &str| format!("{name} must be {what}, found {found}");
    let message = match error.kind() {
        ValidationErrorKind::Type { .. } => {
            must_be(&expected.map_or_else(|| type_words(here), str::to_owned))
        }
        ValidationErrorKind::Enum { options } => {
            let mut message = must_be(&expected.map_or_else(|| one_of(options), str::to_owned));
            if let (Some(given), Some(options)) = (error.instance().as_str(), options.as_array()) {
                let names = options.iter().filter_map(Value::as_str);
                if let Some(near) = closest(given, names) {
                    let _ = write!(message, "; did you mean \"{near}\"?");
                }
            }
            message
        }
        ValidationErrorKind::Constant { expected_value } => {
            must_be(&expected.map_or_else(|| expected_value.to_string(), str::to_owned))
        }
        ValidationErrorKind::Minimum { limit } => bound(expected, &must_be, "at least", limit),
        ValidationErrorKind::Maximum { limit } => bound(expected, &must_be, "at most", limit),
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            bound(expected, &must_be, "greater than", limit)
        }
        ValidationErrorKind::ExclusiveMaximum { limit } => {
            bound(expected, &must_be, "less than", limit)
        }
        ValidationErrorKind::MinLength { limit } => must_be(&expected.map_or_else(
            || format!("at least {limit} character{}", plural(*limit)),
            str::to_owned,
        )),
        ValidationErrorKind::MaxLength { limit } => {
            let length = error.instance().as_str().map_or(0, |s| s.chars().count());
            let what = expected.map_or_else(
                || format!("at most {limit} character{}", plural(*limit)),
                str::to_owned,
            );
            format!("{name} must be {what}, found {length} characters")
        }
        ValidationErrorKind::Pattern { pattern } => must_be(
            &expected.map_or_else(|| format!("a string matching `{pattern}`"), str::to_owned),
        ),
        ValidationErrorKind::Required { property } => {
            let key = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            let mut message = if pointer.is_empty() {
                format!("missing the required key `{key}`")
            } else {
                format!("{name} is missing the required key `{key}`")
            };
            if let Some(hint) = here
                .and_then(|s| s.get("x-required-hint"))
                .and_then(Value::as_str)
            {
                let _ = write!(message, ": {hint}");
            }
            message
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let known = here.map(known_keys).unwrap_or_default();
            return unexpected
                .iter()
                .map(|key| (child(&pointer, key), unknown_key(key, &known)))
                .collect();
        }
        ValidationErrorKind::PropertyNames { error: inner } => {
            let key = inner.instance();
            let key = key.as_str().unwrap_or_default();
            let text =
                |annotation: &str| here.and_then(|s| s.get(annotation)).and_then(Value::as_str);
            let what = text("x-key-name").unwrap_or("the key");
            let rule = text("x-rule").unwrap_or("choose another name");
            return vec![(
                child(&pointer, key),
                format!("{what} \"{key}\" is not allowed: {rule}"),
            )];
        }
        _ => format!("{name} is not valid: {error}"),
    };
    vec![(pointer, message)]
}

/// The JSON pointer of the schema object holding the keyword at `keyword_at`.
fn parent(keyword_at: &str) -> &str {
    keyword_at.rfind('/').map_or("", |i| &keyword_at[..i])
}

/// `pointer` extended by one object key, escaped as RFC 6901 says.
#[must_use]
pub(crate) fn child(pointer: &str, key: &str) -> String {
    format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// How a message names the value at `pointer`: its key, with the indexes below it
/// (`/hooks/Stop/0` → `` `Stop[0]` ``); the whole document is "the file".
#[must_use]
pub(crate) fn subject(pointer: &str) -> String {
    let segments: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let is_index = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let Some(last_key) = segments.iter().rposition(|s| !is_index(s)) else {
        return if segments.is_empty() {
            String::from("the file")
        } else {
            format!("item {}", segments.join("."))
        };
    };
    if last_key == segments.len() - 1 && last_key > 0 && segments[last_key - 1] == "mcpServers" {
        return format!("MCP server `{}`", segments[last_key]);
    }
    let mut name = format!("`{}", segments[last_key]);
    for index in &segments[last_key + 1..] {
        let _ = write!(name, "[{index}]");
    }
    name.push('`');
    name
}

/// The value as a message shows it: short scalars as JSON, containers by their type.
fn found(value: &Value) -> String {
    const MAX: usize = 40;
    match value {
        Value::Object(_) => String::from("an object"),
        Value::Array(_) => String::from("an array"),
        Value::String(s) if s.chars().count() > MAX => {
            let head: String = s.chars().take(MAX).collect();
            format!("\"{}…\"", head.escape_debug())
        }
        other => other.to_string(),
    }
}

/// "a string", "an integer or an array", … from the schema's `type`.
fn type_words(schema: Option<&Value>) -> String {
    let word = |t: &str| match t {
        "string" => "a string",
        "number" => "a number",
        "integer" => "an integer",
        "boolean" => "a boolean (true or false)",
        "object" => "an object",
        "array" => "an array",
        "null" => "null",
        _ => "another type",
    };
    match schema.and_then(|s| s.get("type")) {
        Some(Value::String(t)) => word(t).to_owned(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .map(word)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => String::from("of another type"),
    }
}

/// `one of "command", "http"` (or `"command"` when there is only one).
fn one_of(options: &Value) -> String {
    let listed: Vec<String> = options
        .as_array()
        .map(|a| a.iter().map(Value::to_string).collect())
        .unwrap_or_default();
    match listed.as_slice() {
        [only] => only.clone(),
        _ => format!("one of {}", listed.join(", ")),
    }
}

fn bound(
    expected: Option<&str>,
    must_be: &dyn Fn(&str) -> String,
    relation: &str,
    limit: &Value,
) -> String {
    must_be(&expected.map_or_else(|| format!("{relation} {limit}"), str::to_owned))
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The keys a schema object declares (`properties`), in schema order.
fn known_keys(schema: &Value) -> Vec<String> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn unknown_key(key: &str, known: &[String]) -> String {
    let mut message = format!("unknown key `{key}`");
    if let Some(near) = closest(key, known.iter().map(String::as_str)) {
        let _ = write!(message, " (did you mean `{near}`?)");
    }
    if !known.is_empty() {
        let listed: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
        let _ = write!(message, "; the keys known here are {}", listed.join(", "));
    }
    message
}

/// The candidate nearest to `given` — same letters in another case, a start of it (at least
/// four letters), or at most two edits away on a word long enough for that to mean a typo —
/// if there is one.
#[must_use]
pub(crate) fn closest<'a>(
    given: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let is_prefix = given.len() >= 4 && candidate.starts_with(given);
        let distance = if candidate.eq_ignore_ascii_case(given) {
            0
        } else if is_prefix {
            1
        } else {
            edit_distance(given, candidate)
        };
        let allowed = (candidate.chars().count() / 3).clamp(1, 2);
        if distance <= allowed && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// Edit distance in characters, a swap of two neighbours counting as one edit (optimal
/// string alignment).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0_usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use serde_json::json;

    const ALL: [Kind; 10] = [
        Kind::ProjectSettings,
        Kind::LocalSettings,
        Kind::UserSettings,
        Kind::ManagedSettings,
        Kind::ClaudeJson,
        Kind::McpJson,
        Kind::Canary,
        Kind::SkillJson,
        Kind::SkillMd,
        Kind::Policy,
    ];

    fn messages(kind: Kind, value: &Value) -> Vec<String> {
        validate(kind, "f", value, &|_| Position::default())
            .into_iter()
            .map(|d| format!("{} {}", d.pointer, d.message))
            .collect()
    }

    #[test]
    fn every_schema_compiles() {
        for kind in ALL {
            if let Err(reason) = compiled(kind) {
                panic!("{kind:?}: {reason}");
            }
        }
    }

    #[test]
    fn mcp_definitions_are_the_same_in_both_files() {
        let mcp: Value = serde_json::from_str(MCP_JSON_TEXT).unwrap();
        let claude: Value = serde_json::from_str(CLAUDE_JSON_TEXT).unwrap();
        assert_eq!(mcp["$defs"], claude["$defs"]);
    }

    #[test]
    fn timeout_message_names_key_and_unit() {
        let value = json!({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "x", "timeout": "10"}]}]}});
        assert_eq!(
            messages(Kind::ProjectSettings, &value),
            [
                "/hooks/Stop/0/hooks/0/timeout `timeout` must be a number greater than 0 (seconds), found \"10\""
            ]
        );
    }

    #[test]
    fn unknown_policy_section_lists_known_ones() {
        let m = messages(Kind::Policy, &json!({"limts": {}}));
        assert_eq!(m.len(), 1);
        assert!(
            m[0].starts_with("/limts unknown key `limts` (did you mean `limits`?)"),
            "{m:?}"
        );
        assert!(m[0].contains("`retention`"), "{m:?}");
    }

    #[test]
    fn subject_names_key_and_indexes() {
        assert_eq!(subject(""), "the file");
        assert_eq!(subject("/hooks/Stop/0"), "`Stop[0]`");
        assert_eq!(subject("/a~1b/2/3"), "`a/b[2][3]`");
    }

    #[test]
    fn closest_catches_case_and_typos_only() {
        let events = ["PreToolUse", "Stop", "SessionStart"];
        assert_eq!(
            closest("preToolUse", events.into_iter()),
            Some("PreToolUse")
        );
        assert_eq!(closest("Stpo", events.into_iter()), Some("Stop"));
        assert_eq!(closest("Banana", events.into_iter()), None);
    }

    /// The schema's `default`s are policy.rs's defaults, and both are valid.
    #[test]
    fn policy_defaults_agree_with_policy_rs() {
        let schema: Value = serde_json::from_str(POLICY_TEXT).unwrap();
        assert!(messages(Kind::Policy, &json!({})).is_empty());
        let empty: Policy = serde_json::from_value(json!({})).unwrap();
        assert_eq!(empty, Policy::default());

        let mut defaults = serde_json::Map::new();
        let sections = schema["properties"].as_object().unwrap();
        for (section, section_schema) in sections.iter().filter(|(k, _)| *k != "$schema") {
            let mut values = serde_json::Map::new();
            for (key, key_schema) in section_schema["properties"].as_object().unwrap() {
                let default = key_schema
                    .get("default")
                    .unwrap_or_else(|| panic!("{section}.{key} has no default in the schema"));
                values.insert(key.clone(), default.clone());
            }
            defaults.insert(section.clone(), Value::Object(values));
        }
        let defaults = Value::Object(defaults);
        assert!(messages(Kind::Policy, &defaults).is_empty());
        let from_schema: Policy = serde_json::from_value(defaults.clone()).unwrap();
        assert_eq!(from_schema, Policy::default());

        // Every field policy.rs has is in the schema (Policy has no Serialize: read its Debug).
        let debug = format!("{:?}", Policy::default());
        let field = regex::Regex::new(r"(\w+): (\w+ \{[^}]*\})").unwrap();
        let inner = regex::Regex::new(r"(\w+): ").unwrap();
        for section in field.captures_iter(&debug) {
            let name = &section[1];
            for key in inner.captures_iter(&section[2]) {
                assert!(
                    defaults[name].get(&key[1]).is_some(),
                    "policy.rs has {name}.{} but the schema does not",
                    &key[1]
                );
            }
        }
        // And every key the schema has changes the policy when set (policy.rs reads it).
        for (section, values) in defaults.as_object().unwrap() {
            for (key, default) in values.as_object().unwrap() {
                let other = match default {
                    Value::String(s) if s == "warn" => json!("enforce"),
                    Value::String(_) => json!("warn"),
                    Value::Number(n) if n.is_f64() => json!(0.5),
                    Value::Array(_) => json!(["x"]),
                    _ => json!(3),
                };
                let changed: Policy =
                    serde_json::from_value(json!({ section: { key: other } })).unwrap();
                assert_ne!(
                    changed,
                    Policy::default(),
                    "{section}.{key} is not read by policy.rs"
                );
            }
        }
    }
}

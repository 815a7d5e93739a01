//! The session's token numbers from its transcript (PROTOCOL.md §6), and the small
//! per-session state file that carries them between hook runs.
//!
//! - **Measured initial tokens** ([`measure_initial`]): `input_tokens +
//!   cache_creation_input_tokens + cache_read_input_tokens` of the first main-chain API
//!   response — the whole context of the session's first request. The transcript is read
//!   incrementally: from the byte offset the last run stopped at, at most [`READ_CAP`] per run,
//!   complete lines only (the client writes it asynchronously, so the last line may be half
//!   written and the usage may arrive after the first PostToolUse — OBSERVED.md). Once found,
//!   the value is kept in the state file and the transcript is never read for it again.
//! - **Current context size** ([`current_context`]): the same sum for the *latest* main-chain
//!   response, read backwards from the end of the file in a growing window, never the whole
//!   file.
//! - **The state file** `state/tokens-<session>.json` ([`SessionTokens`]): SessionStart's
//!   estimate ([`record_estimate`]), the measured value, and the reading position. Written with
//!   `write_atomic(NoFsync)`: losing it costs a re-read of the transcript's head.
//!
//! One API response becomes several assistant lines (one per content block) with the same
//! `message.id` and the same `usage`; both numbers are one response's usage, so a repeated id
//! is never added twice. Skipped: sidechain lines (`isSidechain: true`), lines without
//! `message.usage`, the client's synthetic messages (`model: "<synthetic>"`) and API error
//! messages (`isApiErrorMessage: true`), as ccusage does.
//!
//! Known limit: a transcript line longer than [`READ_CAP`] (a huge tool result, or a tool use
//! writing a huge file) is skipped unread; if it was the only line of the first response, the
//! next response's usage is taken instead.
//!
//! Nothing here writes a record; the hooks do ([`crate::hook`]).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::record::TokenSource;
use crate::store::{self, DataDir, Durability, StoreError};

/// Most transcript bytes [`measure_initial`] reads in one hook run.
pub const READ_CAP: u64 = 4 << 20;
/// The first window [`current_context`] reads from the end of the transcript: 16 KiB holds
/// the latest assistant line and the tool result after it in most sessions, and costs four
/// pages (this read runs on every PostToolUse; BENCHMARKS.md).
pub const TAIL_WINDOW: u64 = 16 << 10;
/// How many windows [`current_context`] reads, each ×4 the one before, before giving up:
/// 16 KiB, 64 KiB, 256 KiB, 1 MiB, 4 MiB — about 5.3 MiB read at most.
pub const TAIL_STEPS: u32 = 5;

/// The state file's name prefix in `state/`: `tokens-<session>.json`.
pub const STATE_PREFIX: &str = "tokens-";

/// A session's token numbers and how far its transcript has been read:
/// `state/tokens-<session>.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionTokens {
    /// SessionStart's estimate of the initial tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated: Option<u64>,
    /// The estimate's visible components (everything but the client's own overhead), for
    /// learning the overhead once the measured value is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visible_tokens: Option<u64>,
    /// The estimate's overhead variant (`estimate::overhead_variant`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The measured initial tokens, once found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured: Option<u64>,
    /// The client version of the record the measured value came from (`version`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_version: Option<String>,
    /// The transcript the offset belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript: Option<PathBuf>,
    /// Bytes of the transcript already read (always the start of a line unless `skipping`).
    pub offset: u64,
    /// The line at `offset` is longer than [`READ_CAP`] and is being skipped.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipping: bool,
}

/// Why the token state or the transcript could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// The state file or the transcript could not be read.
    #[error("failed to {action} {}", path.display())]
    Io {
        /// What was being done: "read", "open", "seek in", …
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The state file is not the expected JSON.
    #[error("failed to parse {}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The state file could not be written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> TokensError {
    let path = path.to_path_buf();
    move |source| TokensError::Io {
        action,
        path,
        source,
    }
}

/// `state/tokens-<session>.json`; `None` for an unknown (empty) session. Characters other
/// than ASCII letters, digits, `-` and `_` become `_`.
#[must_use]
pub fn state_path(data: &DataDir, session_id: &str) -> Option<PathBuf> {
    if session_id.is_empty() {
        return None;
    }
    let name: String = session_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    Some(data.state_dir().join(format!("{STATE_PREFIX}{name}.json")))
}

impl SessionTokens {
    /// The session's state; a missing file (or an unknown session) is the empty state, with no
    /// parse.
    pub fn load(data: &DataDir, session_id: &str) -> Result<Self, TokensError> {
        match state_path(data, session_id) {
            Some(path) => Self::load_from(&path),
            None => Ok(Self::default()),
        }
    }

    fn load_from(path: &Path) -> Result<Self, TokensError> {
        match crate::fsx::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| TokensError::Parse {
                path: path.to_path_buf(),
                source,
            }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(err) => Err(io_error("read", path)(err)),
        }
    }

    /// Writes the state atomically, without fsync. An unknown session writes nothing.
    pub fn save(&self, data: &DataDir, session_id: &str) -> Result<(), TokensError> {
        let Some(path) = state_path(data, session_id) else {
            return Ok(());
        };
        store::ensure_dir(&data.state_dir())?;
        self.save_to(&path)
    }

    fn save_to(&self, path: &Path) -> Result<(), TokensError> {
        let mut bytes = serde_json::to_vec(self).unwrap_or_default();
        bytes.push(b'\n');
        store::write_atomic(path, &bytes, store::FILE_MODE, Durability::NoFsync)?;
        Ok(())
    }

    /// The session's initial tokens as the envelope carries them: measured when known, else
    /// the estimate.
    #[must_use]
    pub fn initial(&self) -> Option<(u64, TokenSource)> {
        self.measured
            .map(|m| (m, TokenSource::Measured))
            .or_else(|| self.estimated.map(|e| (e, TokenSource::Estimated)))
    }
}

/// The session's initial tokens for the record envelope (see [`SessionTokens::initial`]). One
/// small read; a missing or unreadable state file is `None` (the hook that writes it reports
/// its faults).
#[must_use]
pub fn initial(data: &DataDir, session_id: &str) -> Option<(u64, TokenSource)> {
    SessionTokens::load(data, session_id)
        .ok()
        .and_then(|s| s.initial())
}

/// The session's lock file, held while the state is read, changed and written, so two
/// concurrent hook runs of one session do not both measure (and learn) the same value.
fn lock_path(state: &Path) -> PathBuf {
    state.with_extension("lock")
}

fn open_lock(state: &Path) -> Result<File, TokensError> {
    let path = lock_path(state);
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(store::FILE_MODE)
        .open(&path)
        .map_err(io_error("open", &path))
}

/// The state for an update, under the session's lock. A file that does not parse is taken as
/// the empty state and returned with its error: the caller rewrites it, so it is reported
/// once and the session's numbers are recomputed, not lost for good.
fn load_for_update(path: &Path) -> Result<(SessionTokens, Option<TokensError>), TokensError> {
    match SessionTokens::load_from(path) {
        Ok(state) => Ok((state, None)),
        Err(err @ TokensError::Parse { .. }) => Ok((SessionTokens::default(), Some(err))),
        Err(err) => Err(err),
    }
}

/// Keeps SessionStart's estimate for the session: the initial tokens, the visible components'
/// tokens and the overhead variant (so PostToolUse can learn the overhead without estimating
/// again). A measured value already known is kept. A state file that does not parse is
/// replaced (and its error returned after the estimate is saved).
pub fn record_estimate(
    data: &DataDir,
    session_id: &str,
    tokens: u64,
    visible_tokens: u64,
    variant: &str,
) -> Result<(), TokensError> {
    let Some(path) = state_path(data, session_id) else {
        return Ok(());
    };
    store::ensure_dir(&data.state_dir())?;
    let lock = open_lock(&path)?;
    lock.lock().map_err(io_error("lock", &lock_path(&path)))?;
    let (mut state, corrupt) = load_for_update(&path)?;
    let before = state.clone();
    state.estimated = Some(tokens);
    state.visible_tokens = Some(visible_tokens);
    state.variant = Some(variant.to_owned());
    // A session started again (`resume`, `clear`, `compact`) with the same estimate: nothing
    // to write.
    if state != before || corrupt.is_some() {
        state.save_to(&path)?;
    }
    corrupt.map_or(Ok(()), Err)
}

/// What [`measure_session`] found in the run that found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The measured initial tokens.
    pub tokens: u64,
    /// The client version of the record it came from.
    pub client_version: Option<String>,
    /// The estimate's visible tokens, when SessionStart recorded an estimate.
    pub visible_tokens: Option<u64>,
    /// The estimate's overhead variant, when SessionStart recorded an estimate.
    pub variant: Option<String>,
}

/// One PostToolUse step of the measurement: nothing when the value is already known (one
/// small read); else, under the session's lock (skipped when another run holds it), reads on
/// in the transcript ([`measure_initial`]) and saves the new position. `Some` only in the run
/// that found the value. A state file that does not parse is replaced by a fresh reading and
/// its error returned (unless this run found the value).
pub fn measure_session(
    data: &DataDir,
    session_id: &str,
    transcript: &Path,
) -> Result<Option<Found>, TokensError> {
    let Some(path) = state_path(data, session_id) else {
        return Ok(None);
    };
    if matches!(SessionTokens::load_from(&path), Ok(s) if s.measured.is_some()) {
        return Ok(None);
    }
    store::ensure_dir(&data.state_dir())?;
    let lock = open_lock(&path)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(None),
        Err(TryLockError::Error(err)) => return Err(io_error("lock", &lock_path(&path))(err)),
    }
    let (mut state, corrupt) = load_for_update(&path)?;
    if state.measured.is_some() {
        return Ok(None);
    }
    let before = state.clone();
    let measured = measure_initial(transcript, &mut state);
    if state != before || corrupt.is_some() {
        state.save_to(&path)?;
    }
    match (measured?, corrupt) {
        (Some(tokens), _) => Ok(Some(Found {
            tokens,
            client_version: state.client_version,
            visible_tokens: state.visible_tokens,
            variant: state.variant,
        })),
        (None, Some(err)) => Err(err),
        (None, None) => Ok(None),
    }
}

/// The session's measured initial tokens: the known value from `state`, or the first
/// main-chain assistant usage found reading on from `state.offset` (at most [`READ_CAP`]
/// bytes, complete lines only). Updates `state` (offset, value, client version); the caller
/// saves it. A transcript that does not exist yet is `Ok(None)`; one that shrank below the
/// offset, or another path, is read from the start.
pub fn measure_initial(path: &Path, state: &mut SessionTokens) -> Result<Option<u64>, TokensError> {
    measure_with_cap(path, state, READ_CAP)
}

fn measure_with_cap(
    path: &Path,
    state: &mut SessionTokens,
    cap: u64,
) -> Result<Option<u64>, TokensError> {
    if let Some(known) = state.measured {
        return Ok(Some(known));
    }
    if state.transcript.as_deref() != Some(path) {
        state.transcript = Some(path.to_path_buf());
        state.offset = 0;
        state.skipping = false;
    }
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_error("open", path)(err)),
    };
    let len = file.metadata().map_err(io_error("stat", path))?.len();
    if len < state.offset {
        state.offset = 0;
        state.skipping = false;
    }
    if len == state.offset {
        return Ok(None);
    }
    let start = state.offset;
    file.seek(SeekFrom::Start(start))
        .map_err(io_error("seek in", path))?;
    let want = (len - start).min(cap);
    let mut buf = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
    file.take(want)
        .read_to_end(&mut buf)
        .map_err(io_error("read", path))?;

    let mut pos = 0;
    while let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') {
        let line = &buf[pos..pos + nl];
        pos += nl + 1;
        if std::mem::take(&mut state.skipping) {
            continue;
        }
        if let Some(usage) = main_usage(line) {
            state.offset = start + pos as u64;
            state.measured = Some(usage.tokens);
            state.client_version = usage.version;
            return Ok(Some(usage.tokens));
        }
    }
    if state.skipping || (pos == 0 && buf.len() as u64 >= cap) {
        state.skipping = true;
        state.offset = start + buf.len() as u64;
    } else {
        state.offset = start + pos as u64;
    }
    Ok(None)
}

/// The current context size: the usage sum of the transcript's latest main-chain API
/// response, found scanning backwards from the end in a window of [`TAIL_WINDOW`] that grows
/// ×4 up to [`TAIL_STEPS`] times. `None` when there is none in reach, or when a compaction
/// came after it (the size is unknown until the next response, PROTOCOL.md §6).
pub fn current_context(path: &Path) -> Result<Option<u64>, TokensError> {
    let mut file = File::open(path).map_err(io_error("open", path))?;
    let len = file.metadata().map_err(io_error("stat", path))?.len();
    let mut end = len;
    let mut window = TAIL_WINDOW;
    for _ in 0..TAIL_STEPS {
        let start = end.saturating_sub(window);
        window = window.saturating_mul(4);
        file.seek(SeekFrom::Start(start))
            .map_err(io_error("seek in", path))?;
        let mut buf = Vec::with_capacity(usize::try_from(end - start).unwrap_or(0));
        (&mut file)
            .take(end - start)
            .read_to_end(&mut buf)
            .map_err(io_error("read", path))?;
        let first = if start == 0 {
            0
        } else {
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => continue,
            }
        };
        for line in buf[first..].rsplit(|&b| b == b'\n') {
            match classify(line) {
                Tail::Usage(tokens) => return Ok(Some(tokens)),
                Tail::Compacted => return Ok(None),
                Tail::Other => {}
            }
        }
        if start == 0 {
            return Ok(None);
        }
        end = start + first as u64;
    }
    Ok(None)
}

/// One transcript line, as far as the token numbers need it. Lenient: unknown fields are
/// ignored; a line whose fields have other types does not count.
#[derive(Deserialize)]
struct Line {
    #[serde(rename = "type")]
    kind: Option<String>,
    subtype: Option<String>,
    #[serde(rename = "isSidechain")]
    is_sidechain: Option<bool>,
    #[serde(rename = "isApiErrorMessage")]
    is_api_error: Option<bool>,
    version: Option<String>,
    message: Option<Message>,
}

#[derive(Deserialize)]
struct Message {
    model: Option<String>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
#[expect(
    clippy::struct_field_names,
    reason = "the API's own field names (PROTOCOL.md §6)"
)]
struct Usage {
    input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

struct MainUsage {
    tokens: u64,
    version: Option<String>,
}

/// Whether `needle` occurs in `hay` (a cheap pre-filter before parsing a JSON line).
pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The usage of a main-chain assistant line (see the module doc for what is skipped).
fn main_usage(line: &[u8]) -> Option<MainUsage> {
    if !contains(line, b"\"usage\"") || !contains(line, b"\"assistant\"") {
        return None;
    }
    let line: Line = serde_json::from_slice(line).ok()?;
    usage_of(line)
}

fn usage_of(line: Line) -> Option<MainUsage> {
    if line.kind.as_deref() != Some("assistant")
        || line.is_sidechain == Some(true)
        || line.is_api_error == Some(true)
    {
        return None;
    }
    let message = line.message?;
    if message.model.as_deref() == Some("<synthetic>") {
        return None;
    }
    let usage = message.usage?;
    let tokens = usage
        .input_tokens?
        .saturating_add(usage.cache_creation_input_tokens.unwrap_or(0))
        .saturating_add(usage.cache_read_input_tokens.unwrap_or(0));
    Some(MainUsage {
        tokens,
        version: line.version,
    })
}

enum Tail {
    Usage(u64),
    Compacted,
    Other,
}

fn classify(line: &[u8]) -> Tail {
    let usage = contains(line, b"\"usage\"") && contains(line, b"\"assistant\"");
    if !usage && !contains(line, b"compact_boundary") {
        return Tail::Other;
    }
    let Ok(line) = serde_json::from_slice::<Line>(line) else {
        return Tail::Other;
    };
    if line.kind.as_deref() == Some("system")
        && line.subtype.as_deref() == Some("compact_boundary")
        && line.is_sidechain != Some(true)
    {
        return Tail::Compacted;
    }
    usage_of(line).map_or(Tail::Other, |u| Tail::Usage(u.tokens))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write as _;

    use super::*;

    fn assistant(id: &str, input: u64, creation: u64, read: u64, sidechain: bool) -> String {
        format!(
            r#"{{"type":"assistant","uuid":"u-{id}","parentUuid":null,"isSidechain":{sidechain},"sessionId":"s","version":"2.1.331","message":{{"id":"{id}","model":"claude-x","role":"assistant","content":[{{"type":"text","text":"hi"}}],"stop_reason":"tool_use","usage":{{"input_tokens":{input},"cache_creation_input_tokens":{creation},"cache_read_input_tokens":{read},"output_tokens":7}}}}}}"#
        ) + "\n"
    }

    fn user(text: &str) -> String {
        format!(
            r#"{{"type":"user","isSidechain":false,"message":{{"role":"user","content":"{text}"}}}}"#
        ) + "\n"
    }

    fn write(path: &Path, text: &str) {
        fs::write(path, text).unwrap();
    }

    fn append(path: &Path, text: &str) {
        let mut f = OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn partial_last_line_is_left_for_the_next_run() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.jsonl");
        let first = user("hello");
        let line = assistant("m1", 3, 8655, 15030, false);
        let (head, tail) = line.split_at(line.len() / 2);
        write(&path, &format!("{first}{head}"));
        let mut state = SessionTokens::default();
        assert_eq!(measure_initial(&path, &mut state).unwrap(), None);
        assert_eq!(state.offset, first.len() as u64);
        append(&path, tail);
        assert_eq!(measure_initial(&path, &mut state).unwrap(), Some(23_688));
        assert_eq!(state.measured, Some(23_688));
        assert_eq!(state.client_version.as_deref(), Some("2.1.331"));
        assert_eq!(state.offset, (first.len() + line.len()) as u64);
    }

    #[test]
    fn a_repeated_message_id_counts_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.jsonl");
        let block = assistant("m1", 10, 100, 1000, false);
        write(
            &path,
            &format!(
                "{}{block}{block}{block}{}",
                user("q"),
                assistant("m2", 1, 1, 5000, false)
            ),
        );
        let mut state = SessionTokens::default();
        assert_eq!(measure_initial(&path, &mut state).unwrap(), Some(1110));
    }

    #[test]
    fn sidechain_user_synthetic_and_usageless_records_are_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.jsonl");
        let text = [
            assistant("side", 9, 9, 9, true),
            user(r#"the \"assistant\" said \"usage\": 5"#),
            r#"{"type":"assistant","isSidechain":false,"message":{"id":"nousage","model":"claude-x","content":[]}}"#.to_owned() + "\n",
            r#"{"type":"assistant","isSidechain":false,"message":{"id":"syn","model":"<synthetic>","usage":{"input_tokens":0}}}"#.to_owned() + "\n",
            r#"{"type":"assistant","isSidechain":false,"isApiErrorMessage":true,"message":{"id":"err","model":"claude-x","usage":{"input_tokens":4}}}"#.to_owned() + "\n",
            "not json but \"assistant\" \"usage\"\n".to_owned(),
            assistant("main", 2, 30, 400, false),
        ]
        .concat();
        write(&path, &text);
        let mut state = SessionTokens::default();
        assert_eq!(measure_initial(&path, &mut state).unwrap(), Some(432));
    }

    #[test]
    fn a_known_value_is_not_read_again() {
        let mut state = SessionTokens {
            measured: Some(77),
            ..SessionTokens::default()
        };
        let missing = Path::new("/nonexistent/transcript.jsonl");
        assert_eq!(measure_initial(missing, &mut state).unwrap(), Some(77));
    }

    #[test]
    fn a_transcript_not_written_yet_is_no_value_and_no_error() {
        let tmp = tempfile::tempdir().unwrap();
        let mut state = SessionTokens::default();
        let path = tmp.path().join("later.jsonl");
        assert_eq!(measure_initial(&path, &mut state).unwrap(), None);
        assert_eq!(state.offset, 0);
    }

    #[test]
    fn a_shrunk_or_other_transcript_is_read_from_the_start() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.jsonl");
        write(&path, &user("x").repeat(10));
        let mut state = SessionTokens::default();
        assert_eq!(measure_initial(&path, &mut state).unwrap(), None);
        assert!(state.offset > 0);
        write(&path, &assistant("m", 1, 2, 3, false));
        assert_eq!(measure_initial(&path, &mut state).unwrap(), Some(6));

        let other = tmp.path().join("u.jsonl");
        write(&other, &assistant("m", 5, 5, 5, false));
        let mut state = SessionTokens {
            transcript: Some(path.clone()),
            offset: 10_000,
            ..SessionTokens::default()
        };
        assert_eq!(measure_initial(&other, &mut state).unwrap(), Some(15));
    }

    #[test]
    fn reading_is_bounded_per_run_and_skips_lines_longer_than_the_cap() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.jsonl");
        let long = user(&"y".repeat(1000));
        let short = user("z");
        let text = format!("{short}{long}{short}{}", assistant("m", 100, 0, 0, false));
        write(&path, &text);
        let cap = 400;
        let mut state = SessionTokens::default();
        let mut runs = 0;
        let mut skipped = false;
        let found = loop {
            runs += 1;
            let before = state.offset;
            if let Some(v) = measure_with_cap(&path, &mut state, cap).unwrap() {
                break v;
            }
            assert!(state.offset - before <= cap, "read more than the cap");
            assert!(state.offset > before, "no progress");
            assert!(runs < 20);
            skipped |= state.skipping;
        };
        assert_eq!(found, 100);
        assert!(runs >= 4, "{runs}");
        assert!(skipped, "the long line was not skipped");
    }

    #[test]
    fn state_file_round_trip_and_initial() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::of_project(tmp.path());
        assert_eq!(initial(&data, "s/1"), None);
        assert_eq!(
            SessionTokens::load(&data, "").unwrap(),
            SessionTokens::default()
        );
        record_estimate(&data, "s/1", 40_000, 12_000, "full-tools+mcp").unwrap();
        assert!(data.state_dir().join("tokens-s_1.json").is_file());
        assert_eq!(
            initial(&data, "s/1"),
            Some((40_000, TokenSource::Estimated))
        );
        let mut state = SessionTokens::load(&data, "s/1").unwrap();
        state.measured = Some(41_234);
        state.save(&data, "s/1").unwrap();
        assert_eq!(initial(&data, "s/1"), Some((41_234, TokenSource::Measured)));
        record_estimate(&data, "s/1", 39_000, 11_000, "full-tools+mcp").unwrap();
        let state = SessionTokens::load(&data, "s/1").unwrap();
        assert_eq!(state.measured, Some(41_234));
        assert_eq!(state.estimated, Some(39_000));
        assert_eq!(state.visible_tokens, Some(11_000));
        assert_eq!(initial(&data, "other"), None);
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_not_a_value() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::of_project(tmp.path());
        store::ensure_dir(&data.state_dir()).unwrap();
        fs::write(data.state_dir().join("tokens-s.json"), "{nope").unwrap();
        assert!(matches!(
            SessionTokens::load(&data, "s"),
            Err(TokensError::Parse { .. })
        ));
        assert_eq!(initial(&data, "s"), None);

        // Reported once, then replaced by a fresh reading.
        let path = tmp.path().join("t.jsonl");
        write(&path, &user("q"));
        assert!(matches!(
            measure_session(&data, "s", &path),
            Err(TokensError::Parse { .. })
        ));
        assert_eq!(measure_session(&data, "s", &path).unwrap(), None);
        append(&path, &assistant("m", 1, 1, 1, false));
        assert_eq!(
            measure_session(&data, "s", &path).unwrap().unwrap().tokens,
            3
        );

        fs::write(data.state_dir().join("tokens-e.json"), "{nope").unwrap();
        assert!(record_estimate(&data, "e", 10, 5, "v").is_err());
        assert_eq!(initial(&data, "e"), Some((10, TokenSource::Estimated)));
    }

    #[test]
    fn measure_session_finds_once_and_hands_over_the_estimate() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::of_project(tmp.path());
        let path = tmp.path().join("t.jsonl");
        record_estimate(&data, "s", 30_000, 9_000, "full-tools+no-mcp").unwrap();
        assert_eq!(measure_session(&data, "s", &path).unwrap(), None);
        write(
            &path,
            &format!("{}{}", user("q"), assistant("m", 1, 2, 3, false)),
        );
        let found = measure_session(&data, "s", &path).unwrap().unwrap();
        assert_eq!(
            found,
            Found {
                tokens: 6,
                client_version: Some("2.1.331".into()),
                visible_tokens: Some(9_000),
                variant: Some("full-tools+no-mcp".into()),
            }
        );
        assert_eq!(measure_session(&data, "s", &path).unwrap(), None);
        assert_eq!(initial(&data, "s"), Some((6, TokenSource::Measured)));
    }

    #[test]
    fn measure_session_skips_while_another_run_holds_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::of_project(tmp.path());
        let path = tmp.path().join("t.jsonl");
        write(&path, &assistant("m", 1, 2, 3, false));
        store::ensure_dir(&data.state_dir()).unwrap();
        let state = state_path(&data, "s").unwrap();
        let held = open_lock(&state).unwrap();
        held.lock().unwrap();
        assert_eq!(measure_session(&data, "s", &path).unwrap(), None);
        held.unlock().unwrap();
        assert_eq!(
            measure_session(&data, "s", &path).unwrap().unwrap().tokens,
            6
        );
    }

    #[test]
    fn current_context_is_the_latest_main_response() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.jsonl");
        write(
            &path,
            &[
                assistant("a", 1, 1, 1, false),
                user("q"),
                assistant("b", 10, 20, 30, false),
                assistant("b", 10, 20, 30, false),
                assistant("side", 5, 5, 5, true),
                user("r"),
                "{\"type\":\"assistant\",\"message\":{\"id\":\"c\"".to_owned(),
            ]
            .concat(),
        );
        assert_eq!(current_context(&path).unwrap(), Some(60));
        append(
            &path,
            &format!(
                "\n{}",
                r#"{"type":"system","subtype":"compact_boundary","compactMetadata":{"trigger":"auto","preTokens":99}}"#
            ),
        );
        assert_eq!(current_context(&path).unwrap(), None);
        append(&path, &format!("\n{}", assistant("d", 4, 0, 0, false)));
        assert_eq!(current_context(&path).unwrap(), Some(4));
    }

    #[test]
    fn current_context_grows_its_window_past_a_long_line() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.jsonl");
        let long = user(&"x".repeat(300 << 10));
        write(
            &path,
            &format!("{}{long}{}", assistant("a", 7, 0, 0, false), user("q")),
        );
        assert_eq!(current_context(&path).unwrap(), Some(7));
    }

    #[test]
    fn current_context_reads_the_tail_of_a_50_mb_file_only() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.jsonl");
        let mut file = File::create(&path).unwrap();
        file.write_all(assistant("first", 1, 1, 1, false).as_bytes())
            .unwrap();
        let filler = user(&"f".repeat(1000));
        let chunk = filler.repeat(1024);
        while file.metadata().unwrap().len() < 50 << 20 {
            file.write_all(chunk.as_bytes()).unwrap();
        }
        drop(file);
        // The only response is 50 MB back: out of reach, so unknown rather than a full read.
        assert_eq!(current_context(&path).unwrap(), None);
        append(
            &path,
            &format!("{}{}", assistant("last", 3, 400, 50_000, false), user("q")),
        );
        assert_eq!(current_context(&path).unwrap(), Some(50_403));
    }
}

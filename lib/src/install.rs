//! Registering ctxopt's hooks in a project's settings, and removing exactly that again.
//!
//! Responsible for the decisions below and for every write `ctxopt install` and
//! `ctxopt uninstall` make. It must not print (the CLI prints the reports), touch any file
//! besides the ones named here, or change a handler, group or key it did not add.
//!
//! - **File**: `<project>/.claude/settings.local.json`. It is machine-specific and kept out of
//!   git (see **Git exclude**), so an absolute path to this machine's binaries belongs there
//!   and not in the committed `.claude/settings.json`.
//! - **Command**: the absolute path of each installed binary, shell-quoted when it holds
//!   anything but `[A-Za-z0-9/._+,:@%-]` (Claude Code runs the string with `sh -c`). Claude
//!   Code lets a hook whose command is not found fail open without a word, so install refuses
//!   (changing nothing) unless all three binaries exist and are executable in the bin dir.
//! - **Registration**: SessionStart → `ctxopt-session-start` (no matcher: every source);
//!   PreToolUse `"*"` → `ctxopt-pre-tool-use`; PostToolUse `"*"` and PostToolUseFailure `"*"`
//!   → `ctxopt-post-tool-use`; each handler `{"type":"command","command":…,"timeout":10}`.
//!   Each goes in a new matcher group appended to the end of the event's array.
//! - **Merge**: the file is a `serde_json::Value` with `preserve_order`, so every existing key,
//!   hook and key order is kept (removal uses `shift_remove`, never the order-breaking
//!   `remove`); output is 2-space pretty JSON with a trailing newline.
//! - **Idempotent**: a handler with the exact command already present is left alone; when
//!   nothing is missing nothing is written ("already installed", same bytes). When the
//!   binaries moved, the handlers whose command the manifest recorded are updated in place.
//! - **Refusal**: a file that does not parse, a top level that is not an object, a `hooks`
//!   that is not an object or one of our events whose value is not an array is refused with
//!   the path (and line and column), and nothing is changed.
//! - **Atomic**: every write goes through [`store::write_atomic`] with fsync. The settings
//!   file keeps its mode (0644 when created); the data-dir files are 0600.
//! - **Pre-install copy**: before the first modifying write the original bytes are saved to
//!   `.claude/hooks/data/install/settings.local.json.pre-install` (not `X.backup`: that name is
//!   reserved for last-known-good copies).
//! - **Manifest**: `.claude/hooks/data/install-manifest.json` records exactly what was added:
//!   the file, whether it existed, whether the `hooks` key and each event key were created by
//!   us, the commands per event, the bin dir, ctxopt's version and timestamps. It is written
//!   before the settings file, so a crash between the two leaves something uninstall can read.
//! - **Uninstall** removes the manifest's commands (matched by command string), groups that
//!   removal leaves empty, and the event keys and `hooks` key we created if they are left
//!   empty. A file we created that is now `{}` is deleted; a result equal to the pre-install
//!   copy gets that copy's original bytes back, so install + uninstall is a byte-for-byte
//!   no-op. Then the manifest and the copy are removed. No manifest: nothing to uninstall.
//! - **Git pre-commit hook**: install also puts the config validator into the project's git
//!   hooks, chained to an existing hook, and records it in the manifest (`precommit`);
//!   uninstall removes it and moves the chained hook back. A project outside git gets no hook
//!   and a note. The decisions are in [`precommit`].
//! - **Git exclude**: install also adds a marked block to the repository's local exclude file
//!   (`.git/info/exclude`, never the committed `.gitignore`) so that `settings.local.json`,
//!   the data dir and the config backups are never committed, and records it in the manifest
//!   (`git_exclude`); uninstall removes exactly the block. The decisions are in [`gitexclude`].
//! - **Other hooks** (`--wrap-existing`): the project's other hook commands are rewritten to
//!   run through `ctxopt-run` (only in `settings.local.json` unless `--wrap-committed`), each
//!   rewrite recorded in the manifest (`wrapped`) so uninstall puts back the exact original
//!   command; a later plain install keeps them, updating the runner's path if it moved. The
//!   decisions are in [`crate::wrap`].

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::gitexclude::{self, ExcludeError};
use crate::hook::Hook;
use crate::precommit::{self, PrecommitError};
use crate::project;
use crate::record;
use crate::store::{self, DataDir, Durability, StoreError};
use crate::wrap::command::RUN_PROGRAM;
use crate::wrap::settings::{self as wrap_settings, SettingsError};

/// The settings file ctxopt registers its hooks in, under `<project>/.claude/`.
pub const SETTINGS_FILE: &str = "settings.local.json";
/// Seconds Claude Code waits for one of our hooks; far above their budget, far below the
/// 600 s default that would stall a session on a hung hook.
pub const TIMEOUT_SECS: u64 = 10;
/// Mode of a settings file install creates (a user file, like the ones Claude Code writes).
pub const NEW_SETTINGS_MODE: u32 = 0o644;
/// Layout version of the manifest.
pub const MANIFEST_VERSION: u32 = 1;
/// The ops CLI's file name in the bin dir: the git pre-commit hook runs it.
pub const CTXOPT_PROGRAM: &str = "ctxopt";

/// Whether install and uninstall write or only report what they would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Make the changes.
    Write,
    /// Compute and report the changes; write nothing, create nothing.
    DryRun,
}

/// An install or uninstall that could not run. Nothing was changed unless the error came
/// from a write ([`InstallError::Store`]).
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The project directory is missing or not a directory.
    #[error("failed to find project directory {}", path.display())]
    NoProject {
        /// The project directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A hook binary is missing or cannot be run.
    #[error(
        "failed to find executable hook binary {} ({reason}); nothing was changed \
         (Claude Code silently skips a hook command it cannot run)",
        path.display()
    )]
    MissingBinary {
        /// Where the binary should be.
        path: PathBuf,
        /// "not found", "not a file", "not executable".
        reason: String,
    },
    /// A path that cannot be written into a JSON string.
    #[error("failed to use {} as a hook command: the path is not UTF-8", path.display())]
    NonUtf8Path {
        /// The path.
        path: PathBuf,
    },
    /// The running `ctxopt`'s own path is unknown (to default the bin dir).
    #[error("failed to locate the running ctxopt binary (pass --bin-dir)")]
    CurrentExe(#[source] io::Error),
    /// A file could not be read.
    #[error("failed to read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The settings file is not JSON.
    #[error("failed to parse {}:{line}:{column} (left unchanged)", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's message.
        #[source]
        source: serde_json::Error,
    },
    /// The settings file is JSON but not the shape Claude Code reads.
    #[error(
        "failed to edit {}: {at} is {found}, expected {expected} (left unchanged)",
        path.display()
    )]
    Shape {
        /// The file.
        path: PathBuf,
        /// Where: "the top level", "`hooks`", "`hooks.PreToolUse`".
        at: String,
        /// What is there: "a string", "an array", …
        found: &'static str,
        /// What Claude Code expects there.
        expected: &'static str,
    },
    /// The install manifest is not readable JSON of the expected layout.
    #[error("failed to parse install manifest {}", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// The parser's message.
        #[source]
        source: serde_json::Error,
    },
    /// A value could not be serialised (not expected to happen for JSON values).
    #[error("failed to serialise {}", path.display())]
    Render {
        /// The file it was for.
        path: PathBuf,
        /// The serialiser's message.
        #[source]
        source: serde_json::Error,
    },
    /// A write, rename, delete or directory creation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The git pre-commit hook could not be read, written or moved.
    #[error(transparent)]
    Precommit(#[from] PrecommitError),
    /// The repository's git exclude file could not be read or written.
    #[error(transparent)]
    GitExclude(#[from] ExcludeError),
    /// The runbook's `scripts/*.sh` could not be written or removed.
    #[error(transparent)]
    Scripts(#[from] crate::runbook_scripts::ScriptsError),
    /// A settings file holding hooks to wrap or unwrap could not be read or written.
    #[error(transparent)]
    Wrap(#[from] SettingsError),
}

/// Where install and uninstall read and write, for one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The project root.
    pub project: PathBuf,
    /// `<project>/.claude/settings.local.json`.
    pub settings: PathBuf,
    /// The project's data dir.
    pub data: DataDir,
    /// `<data>/install-manifest.json`.
    pub manifest: PathBuf,
    /// `<data>/install/settings.local.json.pre-install`.
    pub pre_install: PathBuf,
}

impl Paths {
    /// The paths of `project`.
    #[must_use]
    pub fn of_project(project: &Path) -> Self {
        let data = DataDir::of_project(project);
        Self {
            project: project.to_owned(),
            settings: project.join(".claude").join(SETTINGS_FILE),
            manifest: data.root().join("install-manifest.json"),
            pre_install: data
                .root()
                .join("install")
                .join(format!("{SETTINGS_FILE}.pre-install")),
            data,
        }
    }
}

/// What install recorded about one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventEntry {
    /// The event key, e.g. `PreToolUse`.
    pub event: String,
    /// The matcher of the group we added (`None`: no matcher key).
    pub matcher: Option<String>,
    /// Whether the event key did not exist before we added it.
    pub event_key_created: bool,
    /// The handler commands we added under this event.
    pub commands: Vec<String>,
}

/// `install-manifest.json`: exactly what install added, so uninstall removes that and no more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub manifest_version: u32,
    /// The ctxopt version that last wrote it.
    pub ctxopt_version: String,
    /// When the first install wrote it (RFC 3339 UTC).
    pub installed_at: String,
    /// When an install last changed the settings (RFC 3339 UTC).
    pub updated_at: String,
    /// The settings file, relative to the project (so a moved project still uninstalls).
    pub settings_file: String,
    /// Whether the settings file existed before the first install.
    pub file_existed: bool,
    /// The pre-install copy, relative to the project, when the file existed.
    pub pre_install_copy: Option<String>,
    /// Whether the `hooks` key did not exist before we added it.
    pub hooks_key_created: bool,
    /// The directory the registered binaries are in.
    pub bin_dir: String,
    /// Per event, what we added.
    pub events: Vec<EventEntry>,
    /// The git pre-commit hook install wrote (absent in manifests of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precommit: Option<precommit::Entry>,
    /// The block install added to the repository's git exclude file (absent in manifests of
    /// older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_exclude: Option<gitexclude::Entry>,
    /// The project's other hook commands install routed through `ctxopt-run` (absent when
    /// none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wrapped: Vec<wrap_settings::Entry>,
    /// The runbook's `scripts/*.sh` install wrote (uninstall removes those still unchanged).
    #[serde(default, skip_serializing_if = "scripts_none")]
    pub runbook_scripts: crate::runbook_scripts::Record,
}

impl Manifest {
    fn entry(&self, event: &str) -> Option<&EventEntry> {
        self.events.iter().find(|e| e.event == event)
    }
}

/// One registration: an event, its matcher and the binary handling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    /// The Claude Code event key.
    pub event: &'static str,
    /// The group's matcher; `None` writes no matcher key.
    pub matcher: Option<&'static str>,
    /// The binary.
    pub hook: Hook,
}

/// Every registration, in the order they are added (without the opt-in ConfigChange).
#[must_use]
pub fn registrations() -> Vec<Registration> {
    registrations_for(false)
}

/// The event `ctxopt install --config-change` adds: Claude Code 2.1.49+ reports settings
/// changes made during a session; `ctxopt-pre-tool-use` blocks those the agent made. Opt-in,
/// because a client before 2.1.101 that meets an event it does not know drops the whole
/// settings file — ctxopt's own hooks with it.
pub const CONFIG_CHANGE: &str = "ConfigChange";

/// [`registrations`], plus ConfigChange → `ctxopt-pre-tool-use` (no matcher: every source)
/// when `config_change`.
#[must_use]
pub fn registrations_for(config_change: bool) -> Vec<Registration> {
    let mut regs: Vec<Registration> = Hook::ALL
        .iter()
        .flat_map(|&hook| {
            hook.events().iter().map(move |&event| Registration {
                event,
                matcher: matcher_for(event),
                hook,
            })
        })
        .collect();
    if config_change {
        regs.push(Registration {
            event: CONFIG_CHANGE,
            matcher: None,
            hook: Hook::PreToolUse,
        });
    }
    regs
}

/// SessionStart's matcher tests the source (startup, resume, …); we want all of them, and no
/// matcher says so on every Claude Code version. Tool events match every tool with `"*"`.
fn matcher_for(event: &str) -> Option<&'static str> {
    (event != "SessionStart").then_some("*")
}

/// What happened to one registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// A new group with our handler was appended.
    Added,
    /// Our handler's command was changed from `previous` (the binaries moved).
    Updated {
        /// The command before.
        previous: String,
    },
    /// Our handler was already there with this exact command.
    Present,
}

/// One registration's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The event key.
    pub event: &'static str,
    /// The command registered.
    pub command: String,
    /// What happened.
    pub kind: ChangeKind,
}

/// What `install` did (or, in [`Mode::DryRun`], would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallReport {
    /// The paths involved.
    pub paths: Paths,
    /// Per registration.
    pub changes: Vec<Change>,
    /// Whether the settings file was (would be) written.
    pub changed: bool,
    /// Whether the settings file did not exist and was (would be) created.
    pub created_file: bool,
    /// Whether the original bytes were (would be) saved to the pre-install copy on this run.
    pub saved_pre_install: bool,
    /// The git pre-commit hook: installed (and how) or skipped (and why).
    pub precommit: precommit::Plan,
    /// The git exclude block: written (and how) or skipped (and why).
    pub git_exclude: gitexclude::Plan,
    /// The project's other hooks routed through `ctxopt-run`.
    pub wrap: wrap_settings::InstallPlan,
    /// The runbook's `scripts/*.sh`.
    pub scripts: crate::runbook_scripts::ScriptsPlan,
    /// Whether the run wrote or was a dry run.
    pub mode: Mode,
}

/// What `uninstall` did to the settings file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAction {
    /// The pre-install copy's original bytes were written back.
    Restored,
    /// The file was rewritten without our entries.
    Rewritten,
    /// The file install created, now `{}`, was deleted.
    Deleted,
    /// Nothing of ours was in it; it was left as is.
    Unchanged,
    /// The file does not exist; there was nothing to edit.
    Missing,
}

/// One handler uninstall removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The event key.
    pub event: String,
    /// The handler's command.
    pub command: String,
}

/// What `uninstall` did (or, in [`Mode::DryRun`], would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UninstallReport {
    /// The paths involved.
    pub paths: Paths,
    /// Whether a manifest was found; without one there is nothing to uninstall.
    pub manifest_found: bool,
    /// The handlers removed.
    pub removed: Vec<Removal>,
    /// Keys removed because we created them and they were left empty (`hooks.PreToolUse`,
    /// `hooks`).
    pub removed_keys: Vec<String>,
    /// What happened to the settings file (`None` without a manifest).
    pub file: Option<FileAction>,
    /// What happened to the git pre-commit hook (`None`: the manifest records none).
    pub precommit: Option<precommit::UninstallReport>,
    /// What happened to the git exclude block (`None`: the manifest records none).
    pub git_exclude: Option<gitexclude::UninstallReport>,
    /// The wrapped hooks given back their original commands, and those left as they were.
    pub unwrap: wrap_settings::Unwrap,
    /// The runbook scripts removed (`None`: a dry run, or no manifest).
    pub scripts: Option<crate::runbook_scripts::Removed>,
    /// Whether the run wrote or was a dry run.
    pub mode: Mode,
}

fn scripts_none(record: &crate::runbook_scripts::Record) -> bool {
    record.scripts.is_empty() && !record.created_dir
}

/// The directory of the running executable: where `ctxopt` and its sibling hook binaries are.
pub fn default_bin_dir() -> Result<PathBuf, InstallError> {
    let exe = std::env::current_exe().map_err(InstallError::CurrentExe)?;
    exe.parent().map(Path::to_path_buf).ok_or_else(|| {
        InstallError::CurrentExe(io::Error::other("the executable path has no parent"))
    })
}

/// Registers the hooks of `bin_dir` in `project` (see the module doc).
pub fn install(
    project: &Path,
    bin_dir: &Path,
    mode: Mode,
    now: DateTime<Utc>,
) -> Result<InstallReport, InstallError> {
    install_wrapping(
        project,
        bin_dir,
        wrap_settings::Scope::Keep,
        false,
        mode,
        now,
    )
}

/// [`install`], also choosing which of the project's other hooks run through `ctxopt-run`
/// (`ctxopt install --wrap-existing [--wrap-committed]`), and whether ConfigChange is
/// registered (`--config-change`; kept once installed).
#[expect(
    clippy::too_many_lines,
    reason = "one install transaction: every part planned, then written in crash-safe order"
)]
pub fn install_wrapping(
    project: &Path,
    bin_dir: &Path,
    scope: wrap_settings::Scope,
    config_change: bool,
    mode: Mode,
    now: DateTime<Utc>,
) -> Result<InstallReport, InstallError> {
    check_project(project)?;
    let bin_dir = project::absolute(bin_dir);
    let paths = Paths::of_project(project);
    let commands = commands_in(&bin_dir)?;
    let settings = Settings::read(&paths.settings)?;
    let previous = read_manifest(&paths.manifest)?;

    let mut root = settings.value.clone();
    let config_change = config_change
        || previous
            .as_ref()
            .is_some_and(|m| m.entry(CONFIG_CHANGE).is_some());
    let merged = merge(
        &mut root,
        &commands,
        previous.as_ref(),
        &settings,
        config_change,
    )?;
    let runner = bin_dir.join(RUN_PROGRAM);
    let recorded_wraps = previous.as_ref().map_or(&[][..], |m| m.wrapped.as_slice());
    let wrap = wrap_settings::InstallPlan::new(
        project,
        &root,
        &shell_quote(utf8(&runner)?),
        recorded_wraps,
        scope,
    )?;
    if wrap.edits() {
        check_executable(&runner)?;
    }
    wrap.local.edits.apply(&mut root);
    let wrapped = wrap.entries();
    let modified = merged.changes.iter().any(|c| c.kind != ChangeKind::Present)
        || !wrap.local.edits.is_empty();
    let wrap_writes = wrap.edits() || recorded_wraps != wrapped.as_slice();
    let hook = precommit::plan(project, &bin_dir.join(CTXOPT_PROGRAM))?;
    let hook_entry = match &hook {
        precommit::Plan::Install(plan) => Some(plan.entry()),
        precommit::Plan::Skip(_) => previous.as_ref().and_then(|m| m.precommit.clone()),
    };
    let hook_writes = matches!(&hook, precommit::Plan::Install(plan) if plan.writes());
    let hook_recorded = previous.as_ref().and_then(|m| m.precommit.as_ref()) == hook_entry.as_ref();
    let recorded_exclude = previous.as_ref().and_then(|m| m.git_exclude.as_ref());
    let exclude = gitexclude::plan(project, recorded_exclude)?;
    let exclude_entry = match &exclude {
        gitexclude::Plan::Write(plan) => Some(plan.entry.clone()),
        gitexclude::Plan::Skip(_) => recorded_exclude.cloned(),
    };
    let exclude_writes = matches!(&exclude, gitexclude::Plan::Write(plan) if plan.writes());
    let exclude_recorded = recorded_exclude == exclude_entry.as_ref();
    let scripts = crate::runbook_scripts::plan(project, &bin_dir);
    let mut scripts_record = scripts.record();
    if let Some(old) = &previous {
        scripts_record.created_dir |= old.runbook_scripts.created_dir;
    }
    let scripts_recorded = previous.as_ref().map(|m| &m.runbook_scripts) == Some(&scripts_record);
    let report = InstallReport {
        created_file: modified && !settings.existed,
        paths,
        changes: merged.changes,
        changed: modified,
        saved_pre_install: modified && previous.is_none() && settings.existed,
        precommit: hook,
        git_exclude: exclude,
        wrap,
        scripts,
        mode,
    };
    let unchanged = !modified
        && !hook_writes
        && hook_recorded
        && !wrap_writes
        && !report.scripts.changes()
        && scripts_recorded;
    if (unchanged && !exclude_writes && exclude_recorded) || mode == Mode::DryRun {
        return Ok(report);
    }

    let stamp = record::timestamp(now);
    let file_existed = settings.existed && previous.as_ref().is_none_or(|m| m.file_existed);
    let manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        ctxopt_version: env!("CARGO_PKG_VERSION").to_owned(),
        installed_at: previous
            .as_ref()
            .map_or_else(|| stamp.clone(), |m| m.installed_at.clone()),
        updated_at: stamp,
        settings_file: format!(".claude/{SETTINGS_FILE}"),
        file_existed,
        pre_install_copy: file_existed
            .then(|| format!(".claude/hooks/data/install/{SETTINGS_FILE}.pre-install")),
        hooks_key_created: merged.hooks_created
            || previous.as_ref().is_some_and(|m| m.hooks_key_created),
        bin_dir: utf8(&bin_dir)?.to_owned(),
        events: merged.entries,
        precommit: hook_entry,
        git_exclude: exclude_entry,
        wrapped,
        runbook_scripts: scripts_record,
    };
    write_install(&report, &settings, &Value::Object(root), &manifest)?;
    report.wrap.write_committed(&report.paths.data)?;
    if let precommit::Plan::Install(plan) = &report.precommit {
        precommit::apply(plan)?;
    }
    if let gitexclude::Plan::Write(plan) = &report.git_exclude {
        gitexclude::apply(plan)?;
    }
    crate::runbook_scripts::apply(&report.scripts)?;
    Ok(report)
}

/// What [`merge`] changed in the settings and what the manifest should say about it.
struct Merged {
    changes: Vec<Change>,
    entries: Vec<EventEntry>,
    hooks_created: bool,
}

/// Registers every hook in `root` (see [`register`]).
fn merge(
    root: &mut Map<String, Value>,
    commands: &[(Hook, String)],
    previous: Option<&Manifest>,
    settings: &Settings,
    config_change: bool,
) -> Result<Merged, InstallError> {
    let hooks_created = !root.contains_key("hooks");
    let hooks = root
        .entry("hooks")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| settings.shape("`hooks`", &Value::Null, "an object"))?;
    let mut changes = Vec::new();
    let mut entries = Vec::new();
    for reg in registrations_for(config_change) {
        let command = commands
            .iter()
            .find(|(hook, _)| *hook == reg.hook)
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        let old = previous.and_then(|m| m.entry(reg.event));
        let event_created = !hooks.contains_key(reg.event);
        let groups = hooks
            .entry(reg.event)
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut()
            .ok_or_else(|| settings.shape(reg.event, &Value::Null, "an array"))?;
        let kind = register(groups, reg, &command, old.map_or(&[][..], |e| &e.commands));
        // A handler found already in place is ours only if a manifest says so: the user may
        // have registered the same command by hand, and uninstall must leave theirs alone.
        let ours =
            kind != ChangeKind::Present || old.is_some_and(|e| e.commands.contains(&command));
        entries.push(EventEntry {
            event: reg.event.to_owned(),
            matcher: reg.matcher.map(str::to_owned),
            event_key_created: event_created || old.is_some_and(|e| e.event_key_created),
            commands: if ours {
                vec![command.clone()]
            } else {
                Vec::new()
            },
        });
        changes.push(Change {
            event: reg.event,
            command,
            kind,
        });
    }
    Ok(Merged {
        changes,
        entries,
        hooks_created,
    })
}

/// The writes of an install, in crash-safe order: the pre-install copy first, then the
/// manifest, then the settings file (when it changed), then (by the caller) the pre-commit
/// hook and the git exclude block — at every point uninstall finds what it needs.
fn write_install(
    report: &InstallReport,
    settings: &Settings,
    root: &Value,
    manifest: &Manifest,
) -> Result<(), InstallError> {
    let paths = &report.paths;
    let bytes = render(root, &paths.settings)?;
    let manifest_bytes = render_manifest(manifest, &paths.manifest)?;
    let claude_dir = paths.project.join(".claude");
    fs::create_dir_all(&claude_dir)
        .map_err(|err| store_error("create directory", &claude_dir, err))?;
    paths.data.ensure()?;
    if report.saved_pre_install {
        if let Some(dir) = paths.pre_install.parent() {
            store::ensure_dir(dir)?;
        }
        store::write_atomic(
            &paths.pre_install,
            &settings.bytes,
            store::FILE_MODE,
            Durability::Fsync,
        )?;
    }
    store::write_atomic(
        &paths.manifest,
        &manifest_bytes,
        store::FILE_MODE,
        Durability::Fsync,
    )?;
    if report.changed {
        store::write_atomic(&settings.target, &bytes, settings.mode, Durability::Fsync)?;
        crate::config::lastgood::note_own_write(
            &paths.data,
            &settings.path,
            settings.existed.then_some(settings.bytes.as_slice()),
            Some(&bytes),
            "install",
        )?;
    }
    Ok(())
}

/// Tells the drift audit that uninstall itself changed (or, with `after: None`, removed) the
/// settings file, so the next session start does not report it as a change by someone else.
fn note_uninstall(
    paths: &Paths,
    settings: &Settings,
    after: Option<&[u8]>,
) -> Result<(), InstallError> {
    crate::config::lastgood::note_own_write(
        &paths.data,
        &settings.path,
        Some(settings.bytes.as_slice()),
        after,
        "uninstall",
    )?;
    Ok(())
}

/// Removes what the manifest says install added to `project` (see the module doc).
#[expect(
    clippy::too_many_lines,
    reason = "one uninstall transaction, the mirror of install_wrapping"
)]
pub fn uninstall(project: &Path, mode: Mode) -> Result<UninstallReport, InstallError> {
    check_project(project)?;
    let paths = Paths::of_project(project);
    let mut report = UninstallReport {
        paths,
        manifest_found: false,
        removed: Vec::new(),
        removed_keys: Vec::new(),
        file: None,
        precommit: None,
        git_exclude: None,
        unwrap: wrap_settings::Unwrap::default(),
        scripts: None,
        mode,
    };
    let Some(manifest) = read_manifest(&report.paths.manifest)? else {
        return Ok(report);
    };
    report.manifest_found = true;
    let settings = Settings::read(&report.paths.settings)?;

    let action = if settings.existed {
        let mut root = settings.value.clone();
        let (removed, removed_keys) = unregister(&mut root, &manifest);
        report.removed = removed;
        report.removed_keys = removed_keys;
        let unwrap =
            wrap_settings::unwrap_plan(&root, wrap_settings::LOCAL_FILE, &manifest.wrapped);
        unwrap.edits.apply(&mut root);
        report.unwrap = unwrap;
        let pre_install = read_pre_install(&report.paths.pre_install, &manifest);
        if !manifest.file_existed && root.is_empty() {
            FileAction::Deleted
        } else if let Some(original) = pre_install.filter(|o| same_json(&o.1, &root)) {
            if original.0 == settings.bytes {
                FileAction::Unchanged
            } else {
                if mode == Mode::Write {
                    store::write_atomic(
                        &settings.target,
                        &original.0,
                        settings.mode,
                        Durability::Fsync,
                    )?;
                    note_uninstall(&report.paths, &settings, Some(&original.0))?;
                }
                FileAction::Restored
            }
        } else if report.removed.is_empty()
            && report.removed_keys.is_empty()
            && report.unwrap.edits.is_empty()
        {
            FileAction::Unchanged
        } else {
            if mode == Mode::Write {
                let bytes = render(&Value::Object(root), &report.paths.settings)?;
                store::write_atomic(&settings.target, &bytes, settings.mode, Durability::Fsync)?;
                note_uninstall(&report.paths, &settings, Some(&bytes))?;
            }
            FileAction::Rewritten
        }
    } else {
        FileAction::Missing
    };
    report.file = Some(action);
    let committed = wrap_settings::uninstall_committed(
        project,
        &manifest.wrapped,
        &report.paths.data,
        mode == Mode::Write,
    )?;
    report.unwrap.restored.extend(committed.restored);
    report.unwrap.left.extend(committed.left);
    if !settings.existed {
        report.unwrap.left.extend(
            manifest
                .wrapped
                .iter()
                .filter(|e| e.settings_file == wrap_settings::LOCAL_FILE)
                .cloned(),
        );
    }
    if let Some(entry) = &manifest.precommit {
        report.precommit = Some(precommit::uninstall(project, entry, mode)?);
    }
    if let Some(entry) = &manifest.git_exclude {
        report.git_exclude = Some(gitexclude::uninstall(project, entry, mode)?);
    }
    if mode == Mode::DryRun {
        return Ok(report);
    }
    report.scripts = Some(crate::runbook_scripts::remove(
        project,
        &manifest.runbook_scripts,
    )?);
    if action == FileAction::Deleted {
        remove_file(&settings.target)?;
        note_uninstall(&report.paths, &settings, None)?;
    }
    remove_file(&report.paths.manifest)?;
    remove_file(&report.paths.pre_install)?;
    if let Some(dir) = report.paths.pre_install.parent() {
        // Only succeeds when empty, which is the only case it should go.
        let _ = fs::remove_dir(dir);
    }
    Ok(report)
}

/// Adds or updates our handler for `reg` in an event's `groups`.
fn register(
    groups: &mut Vec<Value>,
    reg: Registration,
    command: &str,
    previous: &[String],
) -> ChangeKind {
    if handlers(groups).any(|h| command_of(h) == Some(command)) {
        return ChangeKind::Present;
    }
    let mut updated = None;
    for handler in handlers_mut(groups) {
        if let Some(old) = command_of(handler).filter(|c| previous.iter().any(|p| p == c)) {
            updated.get_or_insert_with(|| old.to_owned());
            handler.insert("command".into(), Value::String(command.to_owned()));
        }
    }
    if let Some(previous) = updated {
        return ChangeKind::Updated { previous };
    }
    let mut handler = Map::new();
    handler.insert("type".into(), "command".into());
    handler.insert("command".into(), command.into());
    handler.insert("timeout".into(), TIMEOUT_SECS.into());
    let mut group = Map::new();
    if let Some(matcher) = reg.matcher {
        group.insert("matcher".into(), matcher.into());
    }
    group.insert("hooks".into(), Value::Array(vec![Value::Object(handler)]));
    groups.push(Value::Object(group));
    ChangeKind::Added
}

/// Removes the manifest's handlers from `root`, then the groups, event keys and `hooks` key
/// that became empty and that we created. Returns the handlers and keys removed.
fn unregister(root: &mut Map<String, Value>, manifest: &Manifest) -> (Vec<Removal>, Vec<String>) {
    let mut removed = Vec::new();
    let mut removed_keys = Vec::new();
    let Some(hooks) = root.get_mut("hooks").and_then(Value::as_object_mut) else {
        return (removed, removed_keys);
    };
    for entry in &manifest.events {
        let Some(groups) = hooks.get_mut(&entry.event).and_then(Value::as_array_mut) else {
            continue;
        };
        groups.retain_mut(|group| {
            let Some(handlers) = group.get_mut("hooks").and_then(Value::as_array_mut) else {
                return true;
            };
            let before = handlers.len();
            handlers.retain(|h| {
                let ours = h
                    .as_object()
                    .and_then(command_of)
                    .filter(|c| entry.commands.iter().any(|ours| ours == c));
                if let Some(command) = ours {
                    removed.push(Removal {
                        event: entry.event.clone(),
                        command: command.to_owned(),
                    });
                }
                ours.is_none()
            });
            !(handlers.is_empty() && before > 0)
        });
        if entry.event_key_created && groups.is_empty() {
            hooks.shift_remove(&entry.event);
            removed_keys.push(format!("hooks.{}", entry.event));
        }
    }
    if manifest.hooks_key_created && hooks.is_empty() {
        root.shift_remove("hooks");
        removed_keys.push("hooks".to_owned());
    }
    (removed, removed_keys)
}

fn handlers(groups: &[Value]) -> impl Iterator<Item = &Map<String, Value>> {
    groups
        .iter()
        .filter_map(|g| g.get("hooks").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_object)
}

fn handlers_mut(groups: &mut [Value]) -> impl Iterator<Item = &mut Map<String, Value>> {
    groups
        .iter_mut()
        .filter_map(|g| g.get_mut("hooks").and_then(Value::as_array_mut))
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn command_of(handler: &Map<String, Value>) -> Option<&str> {
    handler.get("command").and_then(Value::as_str)
}

/// `s` as one `sh` word: as is when every byte is plainly safe, else single-quoted.
#[must_use]
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._+,:@%-".contains(&b));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Each hook's command for the binaries in `bin_dir`, after checking each can be run.
fn commands_in(bin_dir: &Path) -> Result<Vec<(Hook, String)>, InstallError> {
    Hook::ALL
        .iter()
        .map(|&hook| {
            let path = bin_dir.join(hook.program());
            check_executable(&path)?;
            Ok((hook, shell_quote(utf8(&path)?)))
        })
        .collect()
}

fn check_executable(path: &Path) -> Result<(), InstallError> {
    let missing = |reason: &str| InstallError::MissingBinary {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let meta = fs::metadata(path).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => missing("not found"),
        _ => missing(&err.to_string()),
    })?;
    if !meta.is_file() {
        return Err(missing("not a file"));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(missing("not executable"));
    }
    Ok(())
}

fn check_project(project: &Path) -> Result<(), InstallError> {
    let not_found = |source| InstallError::NoProject {
        path: project.to_owned(),
        source,
    };
    match fs::metadata(project) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(not_found(io::Error::new(
            io::ErrorKind::NotADirectory,
            "not a directory",
        ))),
        Err(err) => Err(not_found(err)),
    }
}

fn utf8(path: &Path) -> Result<&str, InstallError> {
    path.to_str().ok_or_else(|| InstallError::NonUtf8Path {
        path: path.to_owned(),
    })
}

/// The settings file as read, validated for the parts we edit.
struct Settings {
    /// The path named to the user.
    path: PathBuf,
    /// The path written: the symlink's target when the file is a symlink, so the link stays.
    target: PathBuf,
    existed: bool,
    bytes: Vec<u8>,
    value: Map<String, Value>,
    mode: u32,
}

impl Settings {
    fn read(path: &Path) -> Result<Self, InstallError> {
        let read_error = |source| InstallError::Read {
            path: path.to_owned(),
            source,
        };
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Ok(Self {
                    path: path.to_owned(),
                    target: path.to_owned(),
                    existed: false,
                    bytes: Vec::new(),
                    value: Map::new(),
                    mode: NEW_SETTINGS_MODE,
                });
            }
            Err(err) => return Err(read_error(err)),
        };
        let target = fs::canonicalize(path).map_err(read_error)?;
        let mode = fs::metadata(&target)
            .map_err(read_error)?
            .permissions()
            .mode()
            & 0o7777;
        let parsed: Value =
            serde_json::from_slice(&bytes).map_err(|source| InstallError::Parse {
                path: path.to_owned(),
                line: source.line(),
                column: source.column(),
                source,
            })?;
        let mut settings = Self {
            path: path.to_owned(),
            target,
            existed: true,
            bytes,
            value: Map::new(),
            mode,
        };
        let Value::Object(value) = parsed else {
            return Err(settings.shape("the top level", &parsed, "an object"));
        };
        settings.validate(&value)?;
        settings.value = value;
        Ok(settings)
    }

    /// Refuses the shapes Claude Code would not read and that we would have to overwrite.
    fn validate(&self, root: &Map<String, Value>) -> Result<(), InstallError> {
        let Some(hooks) = root.get("hooks") else {
            return Ok(());
        };
        let Value::Object(hooks) = hooks else {
            return Err(self.shape("`hooks`", hooks, "an object"));
        };
        for reg in registrations_for(true) {
            match hooks.get(reg.event) {
                None | Some(Value::Array(_)) => {}
                Some(other) => {
                    return Err(self.shape(&format!("`hooks.{}`", reg.event), other, "an array"));
                }
            }
        }
        Ok(())
    }

    fn shape(&self, at: &str, found: &Value, expected: &'static str) -> InstallError {
        InstallError::Shape {
            path: self.path.clone(),
            at: at.to_owned(),
            found: kind(found),
            expected,
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn read_manifest(path: &Path) -> Result<Option<Manifest>, InstallError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(InstallError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| InstallError::Manifest {
            path: path.to_owned(),
            source,
        })
}

/// The pre-install copy's bytes and object, when the manifest says there is one and it reads.
/// A missing or unreadable copy only means uninstall rewrites instead of restoring bytes.
fn read_pre_install(path: &Path, manifest: &Manifest) -> Option<(Vec<u8>, Map<String, Value>)> {
    if !manifest.file_existed {
        return None;
    }
    let bytes = fs::read(path).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some((bytes, map)),
        _ => None,
    }
}

/// Equal as JSON and in key order (`Map`'s `==` ignores order).
fn same_json(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    serde_json::to_string(a).ok() == serde_json::to_string(b).ok()
}

/// 2-space pretty JSON and a trailing newline, the way Claude Code writes settings.
fn render(value: &Value, path: &Path) -> Result<Vec<u8>, InstallError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| InstallError::Render {
        path: path.to_owned(),
        source,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn render_manifest(manifest: &Manifest, path: &Path) -> Result<Vec<u8>, InstallError> {
    let mut bytes = serde_json::to_vec_pretty(manifest).map_err(|source| InstallError::Render {
        path: path.to_owned(),
        source,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn remove_file(path: &Path) -> Result<(), InstallError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(store_error("remove", path, err).into()),
    }
}

fn store_error(action: &'static str, path: &Path, source: io::Error) -> StoreError {
    StoreError {
        action,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin_dir(root: &Path) -> PathBuf {
        let dir = root.join("bin");
        fs::create_dir_all(&dir).unwrap();
        for hook in Hook::ALL {
            let path = dir.join(hook.program());
            fs::write(&path, "#!/bin/sh\n").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    fn project(root: &Path, settings: Option<&str>) -> PathBuf {
        let project = root.join("project");
        fs::create_dir_all(project.join(".claude")).unwrap();
        if let Some(text) = settings {
            fs::write(project.join(".claude").join(SETTINGS_FILE), text).unwrap();
        }
        project
    }

    fn settings_of(project: &Path) -> Value {
        let bytes = fs::read(project.join(".claude").join(SETTINGS_FILE)).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    const EXISTING: &str = r#"{"zeta": 1, "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "say bye"}]}], "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "guard"}]}]}, "alpha": [1, 2]}"#;

    #[test]
    fn registrations_cover_every_event_of_every_hook() {
        let regs: Vec<_> = registrations()
            .iter()
            .map(|r| (r.event, r.matcher, r.hook.program()))
            .collect();
        assert_eq!(
            regs,
            [
                ("SessionStart", None, "ctxopt-session-start"),
                ("PreToolUse", Some("*"), "ctxopt-pre-tool-use"),
                ("PostToolUse", Some("*"), "ctxopt-post-tool-use"),
                ("PostToolUseFailure", Some("*"), "ctxopt-post-tool-use"),
            ]
        );
    }

    #[test]
    fn shell_quote_leaves_plain_paths_and_quotes_the_rest() {
        assert_eq!(
            shell_quote("/usr/local/bin/x-y_z.1"),
            "/usr/local/bin/x-y_z.1"
        );
        assert_eq!(shell_quote("/My Tools/x"), "'/My Tools/x'");
        assert_eq!(shell_quote("/a'b/$x"), r"'/a'\''b/$x'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn merge_keeps_keys_and_order_and_appends_groups() {
        let tmp = tempfile::tempdir().unwrap();
        let bins = bin_dir(tmp.path());
        let project = project(tmp.path(), Some(EXISTING));
        let report = install(&project, &bins, Mode::Write, record::now()).unwrap();
        assert!(report.changed && report.saved_pre_install && !report.created_file);
        let value = settings_of(&project);
        let keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["zeta", "hooks", "alpha"]);
        let events: Vec<_> = value["hooks"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            events,
            [
                "Stop",
                "PreToolUse",
                "SessionStart",
                "PostToolUse",
                "PostToolUseFailure"
            ]
        );
        let pre = value["hooks"]["PreToolUse"].as_array().unwrap();
        assert_eq!(pre[0]["matcher"], "Bash");
        assert_eq!(pre[1]["matcher"], "*");
        let expected = bins.join("ctxopt-pre-tool-use");
        assert_eq!(pre[1]["hooks"][0]["command"], expected.to_str().unwrap());
        assert_eq!(pre[1]["hooks"][0]["timeout"], 10);
        assert!(value["hooks"]["SessionStart"][0].get("matcher").is_none());
    }

    #[test]
    fn second_install_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let bins = bin_dir(tmp.path());
        let project = project(tmp.path(), Some(EXISTING));
        install(&project, &bins, Mode::Write, record::now()).unwrap();
        let paths = Paths::of_project(&project);
        let before = (
            fs::read(&paths.settings).unwrap(),
            fs::read(&paths.manifest).unwrap(),
        );
        let report = install(&project, &bins, Mode::Write, record::now()).unwrap();
        assert!(!report.changed);
        assert!(report.changes.iter().all(|c| c.kind == ChangeKind::Present));
        let after = (
            fs::read(&paths.settings).unwrap(),
            fs::read(&paths.manifest).unwrap(),
        );
        assert_eq!(before, after);
    }

    #[test]
    fn moved_binaries_are_updated_in_place_and_uninstall_still_restores() {
        let tmp = tempfile::tempdir().unwrap();
        let old = bin_dir(tmp.path());
        let project = project(tmp.path(), Some(EXISTING));
        install(&project, &old, Mode::Write, record::now()).unwrap();
        let new = bin_dir(&tmp.path().join("moved here"));
        let report = install(&project, &new, Mode::Write, record::now()).unwrap();
        assert!(matches!(report.changes[1].kind, ChangeKind::Updated { .. }));
        let value = settings_of(&project);
        let pre = value["hooks"]["PreToolUse"].as_array().unwrap();
        assert_eq!(pre.len(), 2, "updated, not appended");
        let quoted = format!("'{}'", new.join("ctxopt-pre-tool-use").display());
        assert_eq!(pre[1]["hooks"][0]["command"], quoted.as_str());
        uninstall(&project, Mode::Write).unwrap();
        assert_eq!(
            fs::read_to_string(project.join(".claude").join(SETTINGS_FILE)).unwrap(),
            EXISTING
        );
    }

    #[test]
    fn uninstall_restores_bytes_and_removes_its_files() {
        let tmp = tempfile::tempdir().unwrap();
        let bins = bin_dir(tmp.path());
        let project = project(tmp.path(), Some(EXISTING));
        install(&project, &bins, Mode::Write, record::now()).unwrap();
        let report = uninstall(&project, Mode::Write).unwrap();
        assert_eq!(report.file, Some(FileAction::Restored));
        assert_eq!(report.removed.len(), 4);
        assert_eq!(
            report.removed_keys,
            [
                "hooks.SessionStart",
                "hooks.PostToolUse",
                "hooks.PostToolUseFailure"
            ]
        );
        let paths = Paths::of_project(&project);
        assert_eq!(fs::read_to_string(&paths.settings).unwrap(), EXISTING);
        assert!(!paths.manifest.exists() && !paths.pre_install.exists());
        assert!(!uninstall(&project, Mode::Write).unwrap().manifest_found);
    }

    #[test]
    fn uninstall_keeps_what_the_user_added_since() {
        let tmp = tempfile::tempdir().unwrap();
        let bins = bin_dir(tmp.path());
        let project = project(tmp.path(), None);
        install(&project, &bins, Mode::Write, record::now()).unwrap();
        let mut value = settings_of(&project);
        value["hooks"]["PostToolUse"][0]["hooks"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "command", "command": "mine"}));
        value["model"] = "opus".into();
        let path = project.join(".claude").join(SETTINGS_FILE);
        fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
        let report = uninstall(&project, Mode::Write).unwrap();
        assert_eq!(report.file, Some(FileAction::Rewritten));
        let value = settings_of(&project);
        assert_eq!(
            value,
            serde_json::json!({"hooks": {"PostToolUse": [{"matcher": "*", "hooks": [
                {"type": "command", "command": "mine"}]}]}, "model": "opus"})
        );
    }

    #[test]
    fn a_handler_the_user_registered_by_hand_is_not_claimed() {
        let tmp = tempfile::tempdir().unwrap();
        let bins = bin_dir(tmp.path());
        let own = bins.join("ctxopt-pre-tool-use");
        let text = format!(
            r#"{{"hooks": {{"PreToolUse": [{{"hooks": [{{"type": "command", "command": "{}"}}]}}]}}}}"#,
            own.display()
        );
        let project = project(tmp.path(), Some(&text));
        let report = install(&project, &bins, Mode::Write, record::now()).unwrap();
        assert_eq!(report.changes[1].kind, ChangeKind::Present);
        let manifest = read_manifest(&Paths::of_project(&project).manifest)
            .unwrap()
            .unwrap();
        assert!(manifest.events[1].commands.is_empty());
        uninstall(&project, Mode::Write).unwrap();
        assert_eq!(
            fs::read_to_string(project.join(".claude").join(SETTINGS_FILE)).unwrap(),
            text
        );
    }

    #[test]
    fn fresh_file_is_created_then_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let bins = bin_dir(tmp.path());
        let project = project(tmp.path(), None);
        let report = install(&project, &bins, Mode::Write, record::now()).unwrap();
        assert!(report.created_file && !report.saved_pre_install);
        let path = project.join(".claude").join(SETTINGS_FILE);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, NEW_SETTINGS_MODE);
        assert!(fs::read_to_string(&path).unwrap().ends_with("}\n"));
        let report = uninstall(&project, Mode::Write).unwrap();
        assert_eq!(report.file, Some(FileAction::Deleted));
        assert!(!path.exists());
    }

    #[test]
    fn broken_and_misshapen_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let bins = bin_dir(tmp.path());
        let project = project(tmp.path(), Some("{\n  \"a\": 1,\n}\n"));
        let err = install(&project, &bins, Mode::Write, record::now()).unwrap_err();
        assert!(
            matches!(
                err,
                InstallError::Parse {
                    line: 3,
                    column: 1,
                    ..
                }
            ),
            "{err}"
        );
        for (text, at) in [
            ("[]", "the top level"),
            (r#"{"hooks": "x"}"#, "`hooks`"),
            (
                r#"{"hooks": {"PostToolUseFailure": {}}}"#,
                "`hooks.PostToolUseFailure`",
            ),
        ] {
            fs::write(project.join(".claude").join(SETTINGS_FILE), text).unwrap();
            let err = install(&project, &bins, Mode::Write, record::now()).unwrap_err();
            assert!(err.to_string().contains(at), "{err}");
        }
        assert!(!Paths::of_project(&project).data.root().exists());
    }

    #[test]
    fn non_executable_binary_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let bins = bin_dir(tmp.path());
        let path = bins.join("ctxopt-post-tool-use");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let project = project(tmp.path(), None);
        let err = install(&project, &bins, Mode::Write, record::now()).unwrap_err();
        assert!(err.to_string().contains("not executable"), "{err}");
        assert!(!project.join(".claude").join(SETTINGS_FILE).exists());
    }

    #[test]
    fn dry_run_reports_but_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let bins = bin_dir(tmp.path());
        let project = project(tmp.path(), Some(EXISTING));
        let report = install(&project, &bins, Mode::DryRun, record::now()).unwrap();
        assert!(report.changed && report.mode == Mode::DryRun);
        assert_eq!(
            fs::read_to_string(project.join(".claude").join(SETTINGS_FILE)).unwrap(),
            EXISTING
        );
        assert!(!Paths::of_project(&project).data.root().exists());
    }

    #[test]
    fn existing_mode_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let bins = bin_dir(tmp.path());
        let project = project(tmp.path(), Some("{}"));
        let path = project.join(".claude").join(SETTINGS_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        install(&project, &bins, Mode::Write, record::now()).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let manifest = Paths::of_project(&project).manifest;
        let mode = fs::metadata(&manifest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, store::FILE_MODE);
    }
}

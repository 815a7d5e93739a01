//! The archive format, and the only code that reads or writes one.
//!
//! A backup is a gzip'd tar of regular files only (no directory entries, no links, no
//! devices), each named by its absolute path without the leading `/`, so that the runbook's
//! `tar xzf backup-YYYYMMDD.tar.gz -C /` puts every file back where it was. The last member
//! is the manifest, `<project>/.claude/hooks/data/backup-manifest.sha256` (inside ctxopt's
//! data dir, so the runbook's extraction writes it somewhere harmless): one line per other
//! member in `sha256sum` format, `<64 hex>  <member name>`, so `cd <root> && sha256sum -c
//! <manifest>` checks an extracted tree.
//!
//! Reading never trusts the archive: every member must be a regular file whose name is a
//! plain relative path (no `/` at the start, no `.`, `..` or empty component, UTF-8), at most
//! [`MAX_MEMBER_BYTES`], at most [`MAX_MEMBERS`] of them; the gzip stream must end with a
//! good CRC; the manifest must list exactly the other members with their hashes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use tar::{EntryType, Header};

use crate::config::lastgood::sha256_hex;

/// The manifest's file name (its member is `<project>/.claude/hooks/data/` + this).
pub const MANIFEST_NAME: &str = "backup-manifest.sha256";
/// The largest member read back (and the largest file backed up).
pub const MAX_MEMBER_BYTES: u64 = 16 * 1024 * 1024;
/// The most members an archive may hold.
pub const MAX_MEMBERS: usize = 10_000;
/// The most bytes all members together may hold.
pub const MAX_TOTAL_BYTES: u64 = 512 * 1024 * 1024;

/// One file in an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The absolute path without its leading `/`.
    pub name: String,
    /// Permission bits (`& 0o7777`).
    pub mode: u32,
    /// Owner, as stored (a root `tar` restores it).
    pub uid: u64,
    /// Group, as stored.
    pub gid: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
    /// The content.
    pub bytes: Vec<u8>,
}

impl Member {
    /// The absolute path the member restores to.
    #[must_use]
    pub fn target(&self) -> PathBuf {
        Path::new("/").join(&self.name)
    }

    /// Lowercase hex SHA-256 of the content.
    #[must_use]
    pub fn sha256(&self) -> String {
        sha256_hex(&self.bytes)
    }
}

/// Why an archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive could not be opened or read.
    #[error("failed to read {}", path.display())]
    Read {
        /// The archive.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Not a complete, well-formed gzip'd tar (truncated, a flipped byte, not an archive).
    #[error("the archive is corrupt (not a complete gzip'd tar with a good checksum)")]
    Corrupt(#[source] io::Error),
    /// A member's name is absolute, has `..`/`.`/empty components, or is not UTF-8.
    #[error("the archive is refused: member {name:?} is not a plain relative path")]
    UnsafeName {
        /// The name as stored (lossy).
        name: String,
    },
    /// A member is a link, directory, device, … rather than a regular file.
    #[error("the archive is refused: member {name:?} is a {kind}, not a regular file")]
    NotAFile {
        /// The member.
        name: String,
        /// What it is.
        kind: &'static str,
    },
    /// A member, or all of them, is bigger than the limits, or there are too many.
    #[error("the archive is refused: {what}")]
    TooBig {
        /// Which limit.
        what: String,
    },
    /// The same name twice.
    #[error("the archive is refused: member {name:?} appears twice")]
    Duplicate {
        /// The member.
        name: String,
    },
    /// The last member is not the manifest.
    #[error("the archive has no manifest ({MANIFEST_NAME} must be its last member)")]
    NoManifest,
    /// A manifest line is not `<64 hex>  <name>`.
    #[error("the manifest's line {line} is not `<sha256>  <path>`")]
    BadManifest {
        /// 1-based.
        line: usize,
    },
    /// A member's content does not have the manifest's hash.
    #[error("member {name:?} does not match its sha256 in the manifest")]
    HashMismatch {
        /// The member.
        name: String,
    },
    /// The manifest lists a file the archive does not hold.
    #[error("the manifest lists {name:?}, which the archive does not hold")]
    Missing {
        /// The name.
        name: String,
    },
    /// The archive holds a file the manifest does not list.
    #[error("member {name:?} is not in the manifest")]
    Unlisted {
        /// The name.
        name: String,
    },
    /// Extracting into the temporary directory failed.
    #[error("failed to extract into {}", path.display())]
    Extract {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl ArchiveError {
    /// Whether the archive itself is at fault (refused), rather than the machine (could not
    /// run).
    #[must_use]
    pub fn is_refusal(&self) -> bool {
        !matches!(self, Self::Read { .. } | Self::Extract { .. })
    }
}

/// The manifest member's name for `project` (absolute, canonical).
#[must_use]
pub fn manifest_name(project: &Path) -> String {
    let path = project
        .join(".claude")
        .join("hooks")
        .join("data")
        .join(MANIFEST_NAME);
    strip_root(&path)
}

/// `path` without its leading `/`, as a member name.
#[must_use]
pub fn strip_root(path: &Path) -> String {
    let text = path.to_string_lossy();
    text.trim_start_matches('/').to_owned()
}

/// The manifest text for `members`, in `sha256sum` format, sorted by name.
#[must_use]
pub fn manifest(members: &[Member]) -> String {
    let mut lines: Vec<(String, String)> = members
        .iter()
        .map(|m| (m.name.clone(), m.sha256()))
        .collect();
    lines.sort();
    let mut out = String::new();
    for (name, sha) in lines {
        out.push_str(&sha);
        out.push_str("  ");
        out.push_str(&name);
        out.push('\n');
    }
    out
}

/// The archive's bytes: `members` in order, then the manifest as `manifest_member`.
pub fn write(members: &[Member], manifest_member: &Member) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for member in members.iter().chain(std::iter::once(manifest_member)) {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_size(member.bytes.len() as u64);
        header.set_mode(member.mode & 0o7777);
        header.set_uid(member.uid);
        header.set_gid(member.gid);
        header.set_mtime(member.mtime);
        builder.append_data(&mut header, &member.name, member.bytes.as_slice())?;
    }
    builder.into_inner()?.finish()
}

/// Whether `name` is a plain relative path: no leading `/`, every component non-empty and
/// neither `.` nor `..`.
#[must_use]
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'))
}

/// A verified archive: its members (manifest excluded) and the manifest's name.
#[derive(Debug, Clone)]
pub struct Contents {
    /// Every member but the manifest, in archive order.
    pub members: Vec<Member>,
    /// The manifest member's name.
    pub manifest_name: String,
}

/// Reads and checks the archive at `path` (see the module doc); nothing is written.
pub fn read_path(path: &Path) -> Result<Contents, ArchiveError> {
    let file = fs::File::open(path).map_err(|source| ArchiveError::Read {
        path: path.to_owned(),
        source,
    })?;
    read(io::BufReader::new(file))
}

/// Reads and checks an archive from `reader`.
pub fn read(reader: impl Read) -> Result<Contents, ArchiveError> {
    let mut archive = tar::Archive::new(GzDecoder::new(reader));
    let mut members = Vec::new();
    let mut total: u64 = 0;
    {
        let entries = archive.entries().map_err(ArchiveError::Corrupt)?;
        for entry in entries {
            let mut entry = entry.map_err(ArchiveError::Corrupt)?;
            let raw = entry.path_bytes().into_owned();
            let name = String::from_utf8(raw).map_err(|err| ArchiveError::UnsafeName {
                name: String::from_utf8_lossy(err.as_bytes()).into_owned(),
            })?;
            if !is_safe_name(&name) {
                return Err(ArchiveError::UnsafeName { name });
            }
            let kind = entry.header().entry_type();
            if kind != EntryType::Regular && kind != EntryType::Continuous {
                return Err(ArchiveError::NotAFile {
                    name,
                    kind: kind_name(kind),
                });
            }
            let size = entry.header().size().map_err(ArchiveError::Corrupt)?;
            if size > MAX_MEMBER_BYTES {
                return Err(ArchiveError::TooBig {
                    what: format!("member {name:?} is over {MAX_MEMBER_BYTES} bytes"),
                });
            }
            total += size;
            if total > MAX_TOTAL_BYTES || members.len() >= MAX_MEMBERS {
                return Err(ArchiveError::TooBig {
                    what: format!(
                        "more than {MAX_MEMBERS} members or {MAX_TOTAL_BYTES} bytes in all"
                    ),
                });
            }
            let header = entry.header();
            let mode = header.mode().map_err(ArchiveError::Corrupt)? & 0o7777;
            let uid = header.uid().unwrap_or(0);
            let gid = header.gid().unwrap_or(0);
            let mtime = header.mtime().unwrap_or(0);
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            (&mut entry)
                .take(MAX_MEMBER_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(ArchiveError::Corrupt)?;
            if bytes.len() as u64 != size {
                return Err(ArchiveError::Corrupt(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("member {name:?} is shorter than its header says"),
                )));
            }
            members.push(Member {
                name,
                mode,
                uid,
                gid,
                mtime,
                bytes,
            });
        }
    }
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(ArchiveError::Corrupt)?;
    check_manifest(members)
}

fn kind_name(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Symlink => "symbolic link",
        EntryType::Link => "hard link",
        EntryType::Directory => "directory",
        EntryType::Char | EntryType::Block => "device",
        EntryType::Fifo => "FIFO",
        _ => "special entry",
    }
}

/// Splits off the manifest (the last member) and checks the others against it.
fn check_manifest(mut members: Vec<Member>) -> Result<Contents, ArchiveError> {
    let manifest = members.pop().ok_or(ArchiveError::NoManifest)?;
    if !manifest.name.ends_with(&format!("/{MANIFEST_NAME}")) {
        return Err(ArchiveError::NoManifest);
    }
    let listed = parse_manifest(&manifest.bytes)?;
    let mut seen = BTreeSet::new();
    for member in &members {
        if !seen.insert(member.name.as_str()) {
            return Err(ArchiveError::Duplicate {
                name: member.name.clone(),
            });
        }
        match listed.get(&member.name) {
            None => {
                return Err(ArchiveError::Unlisted {
                    name: member.name.clone(),
                });
            }
            Some(sha) if *sha != member.sha256() => {
                return Err(ArchiveError::HashMismatch {
                    name: member.name.clone(),
                });
            }
            Some(_) => {}
        }
    }
    if let Some(name) = listed.keys().find(|n| !seen.contains(n.as_str())) {
        return Err(ArchiveError::Missing { name: name.clone() });
    }
    Ok(Contents {
        members,
        manifest_name: manifest.name,
    })
}

/// `<64 hex>  <name>` per line → name → hash.
pub fn parse_manifest(bytes: &[u8]) -> Result<BTreeMap<String, String>, ArchiveError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ArchiveError::BadManifest { line: 1 })?;
    let mut out = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let bad = || ArchiveError::BadManifest { line: index + 1 };
        let (sha, name) = line.split_once("  ").ok_or_else(bad)?;
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) || !is_safe_name(name) {
            return Err(bad());
        }
        if out
            .insert(name.to_owned(), sha.to_ascii_lowercase())
            .is_some()
        {
            return Err(ArchiveError::Duplicate {
                name: name.to_owned(),
            });
        }
    }
    Ok(out)
}

/// Writes `contents` under `root` (a fresh private directory), then reads every file back
/// and compares its hash with the manifest's: the restore test. Returns the files checked.
pub fn extract_and_check(contents: &Contents, root: &Path) -> Result<usize, ArchiveError> {
    let extract_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ArchiveError::Extract { path, source }
    };
    for member in &contents.members {
        let path = root.join(&member.name);
        if let Some(parent) = path.parent() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(extract_err(parent))?;
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(extract_err(&path))?;
        file.write_all(&member.bytes).map_err(extract_err(&path))?;
    }
    for member in &contents.members {
        let path = root.join(&member.name);
        let bytes = fs::read(&path).map_err(extract_err(&path))?;
        if sha256_hex(&bytes) != member.sha256() {
            return Err(ArchiveError::HashMismatch {
                name: member.name.clone(),
            });
        }
    }
    Ok(contents.members.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, bytes: &[u8]) -> Member {
        Member {
            name: name.to_owned(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1,
            bytes: bytes.to_vec(),
        }
    }

    fn manifest_member(members: &[Member]) -> Member {
        member(
            "p/.claude/hooks/data/backup-manifest.sha256",
            manifest(members).as_bytes(),
        )
    }

    fn archive(members: &[Member]) -> Vec<u8> {
        write(members, &manifest_member(members)).unwrap()
    }

    /// An archive with one member whose raw header is set by `edit` (bypassing the tar
    /// crate's own name checks), then a manifest listing it.
    fn raw_archive(name: &[u8], kind: EntryType, link: Option<&str>) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        let mut header = Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_entry_type(kind);
        header.set_size(if kind == EntryType::Regular { 3 } else { 0 });
        header.set_mode(0o644);
        if let Some(link) = link {
            header.set_link_name(link).unwrap();
        }
        header.set_cksum();
        let data: &[u8] = if kind == EntryType::Regular {
            b"abc"
        } else {
            b""
        };
        builder.append(&header, data).unwrap();
        let listed = format!(
            "{}  {}\n",
            sha256_hex(b"abc"),
            String::from_utf8_lossy(name).trim_start_matches('/')
        );
        let m = member(
            "p/.claude/hooks/data/backup-manifest.sha256",
            listed.as_bytes(),
        );
        let mut header = Header::new_gnu();
        header.set_size(m.bytes.len() as u64);
        header.set_mode(0o600);
        builder
            .append_data(&mut header, &m.name, m.bytes.as_slice())
            .unwrap();
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn round_trip() {
        let members = vec![
            member("p/.claude/settings.json", b"{}"),
            member(
                &format!("p/.claude/skills/{}/SKILL.md", "x".repeat(150)),
                b"---\n",
            ),
        ];
        let contents = read(archive(&members).as_slice()).unwrap();
        assert_eq!(contents.members, members);
        assert_eq!(
            contents.manifest_name,
            "p/.claude/hooks/data/backup-manifest.sha256"
        );
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(extract_and_check(&contents, tmp.path()).unwrap(), 2);
    }

    #[test]
    fn manifest_is_sha256sum_format() {
        let members = vec![member("b", b"x"), member("a", b"")];
        assert_eq!(
            manifest(&members),
            format!("{}  a\n{}  b\n", sha256_hex(b""), sha256_hex(b"x"))
        );
    }

    #[test]
    fn truncated_and_flipped_archives_are_corrupt() {
        let bytes = archive(&[member("p/a", &[7u8; 5000])]);
        let cut = &bytes[..bytes.len() - 10];
        assert!(matches!(read(cut), Err(ArchiveError::Corrupt(_))));
        for at in [20, bytes.len() / 2, bytes.len() - 6] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x01;
            let err = read(flipped.as_slice()).unwrap_err();
            assert!(err.is_refusal(), "{at}: {err}");
        }
        assert!(matches!(
            read(&b"not an archive"[..]),
            Err(ArchiveError::Corrupt(_))
        ));
    }

    #[test]
    fn unsafe_names_and_links_are_refused() {
        for name in [&b"../etc/passwd"[..], b"/etc/passwd", b"p/./a", b"p//a"] {
            let err = read(raw_archive(name, EntryType::Regular, None).as_slice()).unwrap_err();
            assert!(matches!(err, ArchiveError::UnsafeName { .. }), "{err}");
        }
        let err = read(raw_archive(b"p/link", EntryType::Symlink, Some("/etc/passwd")).as_slice())
            .unwrap_err();
        assert!(
            matches!(
                err,
                ArchiveError::NotAFile {
                    kind: "symbolic link",
                    ..
                }
            ),
            "{err}"
        );
        let err = read(raw_archive(b"p/dir", EntryType::Directory, None).as_slice()).unwrap_err();
        assert!(matches!(err, ArchiveError::NotAFile { .. }), "{err}");
    }

    #[test]
    fn manifest_must_match() {
        let members = vec![member("p/a", b"1"), member("p/b", b"2")];
        let wrong = member(
            "p/.claude/hooks/data/backup-manifest.sha256",
            format!("{}  p/a\n{}  p/b\n", sha256_hex(b"1"), sha256_hex(b"3")).as_bytes(),
        );
        let err = read(write(&members, &wrong).unwrap().as_slice()).unwrap_err();
        assert!(matches!(err, ArchiveError::HashMismatch { .. }), "{err}");
        let short = member(
            "p/.claude/hooks/data/backup-manifest.sha256",
            format!("{}  p/a\n", sha256_hex(b"1")).as_bytes(),
        );
        let err = read(write(&members, &short).unwrap().as_slice()).unwrap_err();
        assert!(matches!(err, ArchiveError::Unlisted { .. }), "{err}");
        let long = member(
            "p/.claude/hooks/data/backup-manifest.sha256",
            format!("{}  p/a\n{}  p/c\n", sha256_hex(b"1"), sha256_hex(b"1")).as_bytes(),
        );
        let err = read(write(&members[..1], &long).unwrap().as_slice()).unwrap_err();
        assert!(matches!(err, ArchiveError::Missing { .. }), "{err}");
        let none = write(&[], &member("p/a", b"1")).unwrap();
        assert!(matches!(
            read(none.as_slice()),
            Err(ArchiveError::NoManifest)
        ));
    }

    #[test]
    fn safe_names() {
        assert!(is_safe_name("home/u/.claude.json"));
        for bad in ["", "/a", "a/../b", "a/./b", "a//b", "a/", ".."] {
            assert!(!is_safe_name(bad), "{bad}");
        }
    }
}

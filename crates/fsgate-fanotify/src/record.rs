//! Parser for the event buffer `read(2)` returns on a fanotify group: pure logic on bytes.
//!
//! Layout (include/uapi/linux/fanotify.h): each event is a `fanotify_event_metadata`
//! (`event_len: u32, vers: u8, reserved: u8, metadata_len: u16, mask: u64, fd: i32,
//! pid: i32`, 24 bytes) followed by info records, each starting with
//! `fanotify_event_info_header` (`info_type: u8, pad: u8, len: u16`). Descriptors come out of
//! this module as raw numbers; the private `sys` module takes ownership of them.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::OsStringExt;

/// `FANOTIFY_METADATA_VERSION` (include/uapi/linux/fanotify.h).
pub const METADATA_VERSION: u8 = 3;
/// `sizeof(struct fanotify_event_metadata)`.
pub const METADATA_LEN: usize = 24;
/// `FAN_EVENT_INFO_TYPE_RANGE` (include/uapi/linux/fanotify.h, Linux 6.14).
pub const INFO_TYPE_RANGE: u8 = 6;
/// `FAN_EVENT_INFO_TYPE_MNT` (include/uapi/linux/fanotify.h, Linux 6.15).
pub const INFO_TYPE_MNT: u8 = 7;

/// A kernel file handle as reported in FID records and accepted by `open_by_handle_at(2)`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct FileHandle {
    /// `handle_type` (filesystem specific).
    pub handle_type: i32,
    /// The opaque handle bytes.
    pub bytes: Vec<u8>,
}

impl FileHandle {
    /// Lowercase hex of the type and bytes, the `ID|…` form used when no path is known.
    pub fn to_hex(&self) -> String {
        let mut s = format!("{:08x}", self.handle_type as u32);
        for b in &self.bytes {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

impl fmt::Debug for FileHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileHandle({})", self.to_hex())
    }
}

/// Which object an id record names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FidKind {
    /// The object itself (`FAN_EVENT_INFO_TYPE_FID`).
    Object,
    /// Its parent directory (`FAN_EVENT_INFO_TYPE_DFID`).
    Dir,
    /// Its parent directory and its name there (`FAN_EVENT_INFO_TYPE_DFID_NAME`).
    DirName,
    /// The old directory and name of a rename (`FAN_EVENT_INFO_TYPE_OLD_DFID_NAME`).
    OldDirName,
    /// The new directory and name of a rename (`FAN_EVENT_INFO_TYPE_NEW_DFID_NAME`).
    NewDirName,
}

/// An id record: filesystem id, handle, and for the name kinds the entry name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fid {
    /// What the handle names.
    pub kind: FidKind,
    /// `fsid` of the filesystem (as `statfs(2)` reports it).
    pub fsid: [i32; 2],
    /// The handle.
    pub handle: FileHandle,
    /// The entry name (name kinds only; "." when the event is about the directory itself).
    pub name: Option<OsString>,
}

/// One info record after the metadata, as raw values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawInfo {
    /// A file id record.
    Fid(Fid),
    /// `FAN_EVENT_INFO_TYPE_PIDFD`: a pidfd number, or negative (`FAN_NOPIDFD`, `FAN_EPIDFD`).
    Pidfd(i32),
    /// `FAN_EVENT_INFO_TYPE_ERROR`: errno and how many errors since the last report.
    Error {
        /// The errno of the first error.
        error: i32,
        /// Errors merged into this event.
        count: u32,
    },
    /// `FAN_EVENT_INFO_TYPE_RANGE`: the byte range a pre-content event asks for.
    Range {
        /// First byte.
        offset: u64,
        /// Length in bytes (0 means the whole file).
        count: u64,
    },
    /// A record type this parser does not know (kept so nothing is silently lost).
    Other {
        /// `info_type`.
        info_type: u8,
        /// The record without its header.
        bytes: Vec<u8>,
    },
}

/// One event as raw values: descriptors are plain numbers here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEvent {
    /// Event bits.
    pub mask: u64,
    /// Descriptor of the object, or negative (`FAN_NOFD`) for FID groups and overflows.
    pub fd: i32,
    /// Process (or thread) id of the originator.
    pub pid: i32,
    /// Info records in kernel order.
    pub infos: Vec<RawInfo>,
}

impl RawEvent {
    /// Every descriptor number this event carries (its fd and pidfd), to be owned or closed.
    pub fn descriptors(&self) -> impl Iterator<Item = i32> + '_ {
        std::iter::once(self.fd)
            .chain(self.infos.iter().filter_map(|i| match i {
                RawInfo::Pidfd(fd) => Some(*fd),
                _ => None,
            }))
            .filter(|fd| *fd >= 0)
    }
}

/// Why a buffer could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The metadata version is not [`METADATA_VERSION`].
    Version(u8),
    /// A length field points outside the buffer or below the minimum.
    Truncated {
        /// Byte offset of the bad record.
        at: usize,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Version(v) => write!(
                f,
                "fanotify metadata version {v}, this library reads version {METADATA_VERSION}"
            ),
            ParseError::Truncated { at } => {
                write!(f, "fanotify event record truncated at byte {at}")
            }
        }
    }
}

impl std::error::Error for ParseError {}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Parses every event in `buf` (what one `read(2)` returned). On a malformed record, the
/// events parsed so far are returned with the error so their descriptors can be closed.
pub fn parse_events(buf: &[u8]) -> (Vec<RawEvent>, Option<ParseError>) {
    let mut events = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        match parse_one(buf, at) {
            Ok((event, len)) => {
                events.push(event);
                at += len;
            }
            Err(e) => return (events, Some(e)),
        }
    }
    (events, None)
}

fn parse_one(buf: &[u8], at: usize) -> Result<(RawEvent, usize), ParseError> {
    let bad = ParseError::Truncated { at };
    let event_len = u32_at(buf, at).ok_or(bad.clone())? as usize;
    let vers = *buf.get(at + 4).ok_or(bad.clone())?;
    if vers != METADATA_VERSION {
        return Err(ParseError::Version(vers));
    }
    let metadata_len = u16_at(buf, at + 6).ok_or(bad.clone())? as usize;
    if event_len < METADATA_LEN || metadata_len < METADATA_LEN || metadata_len > event_len {
        return Err(bad);
    }
    let record = buf.get(at..at + event_len).ok_or(bad.clone())?;
    let mask = u64_at(record, 8).ok_or(bad.clone())?;
    let fd = i32_at(record, 16).ok_or(bad.clone())?;
    let pid = i32_at(record, 20).ok_or(bad.clone())?;
    let mut infos = Vec::new();
    let mut off = metadata_len;
    while off < event_len {
        let info_type = record[off];
        let len = u16_at(record, off + 2).ok_or(bad.clone())? as usize;
        if len < 4 || off + len > event_len {
            return Err(ParseError::Truncated { at: at + off });
        }
        let body = &record[off + 4..off + len];
        infos.push(parse_info(info_type, body).ok_or(ParseError::Truncated { at: at + off })?);
        off += len;
    }
    Ok((
        RawEvent {
            mask,
            fd,
            pid,
            infos,
        },
        event_len,
    ))
}

fn parse_info(info_type: u8, body: &[u8]) -> Option<RawInfo> {
    let kind = match info_type {
        libc::FAN_EVENT_INFO_TYPE_FID => Some(FidKind::Object),
        libc::FAN_EVENT_INFO_TYPE_DFID => Some(FidKind::Dir),
        libc::FAN_EVENT_INFO_TYPE_DFID_NAME => Some(FidKind::DirName),
        libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME => Some(FidKind::OldDirName),
        libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME => Some(FidKind::NewDirName),
        _ => None,
    };
    if let Some(kind) = kind {
        // fsid (2 x i32), then struct file_handle { u32 handle_bytes; i32 handle_type; u8[] }.
        let fsid = [i32_at(body, 0)?, i32_at(body, 4)?];
        let handle_bytes = u32_at(body, 8)? as usize;
        let handle_type = i32_at(body, 12)?;
        let bytes = body.get(16..16 + handle_bytes)?.to_vec();
        let name = match kind {
            FidKind::Object | FidKind::Dir => None,
            _ => {
                let rest = body.get(16 + handle_bytes..)?;
                let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                Some(OsString::from_vec(rest[..end].to_vec()))
            }
        };
        return Some(RawInfo::Fid(Fid {
            kind,
            fsid,
            handle: FileHandle { handle_type, bytes },
            name,
        }));
    }
    Some(match info_type {
        libc::FAN_EVENT_INFO_TYPE_PIDFD => RawInfo::Pidfd(i32_at(body, 0)?),
        libc::FAN_EVENT_INFO_TYPE_ERROR => RawInfo::Error {
            error: i32_at(body, 0)?,
            count: u32_at(body, 4)?,
        },
        // struct fanotify_event_info_range { hdr; u32 pad; u64 offset; u64 count; }
        INFO_TYPE_RANGE => RawInfo::Range {
            offset: u64_at(body, 4)?,
            count: u64_at(body, 12)?,
        },
        other => RawInfo::Other {
            info_type: other,
            bytes: body.to_vec(),
        },
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn metadata(mask: u64, fd: i32, pid: i32, infos: &[Vec<u8>]) -> Vec<u8> {
        let info_len: usize = infos.iter().map(Vec::len).sum();
        let mut b = Vec::new();
        b.extend_from_slice(&((METADATA_LEN + info_len) as u32).to_ne_bytes());
        b.push(METADATA_VERSION);
        b.push(0);
        b.extend_from_slice(&(METADATA_LEN as u16).to_ne_bytes());
        b.extend_from_slice(&mask.to_ne_bytes());
        b.extend_from_slice(&fd.to_ne_bytes());
        b.extend_from_slice(&pid.to_ne_bytes());
        for i in infos {
            b.extend_from_slice(i);
        }
        b
    }

    pub(crate) fn fid_record(info_type: u8, handle: &[u8], name: Option<&str>) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&7i32.to_ne_bytes());
        body.extend_from_slice(&9i32.to_ne_bytes());
        body.extend_from_slice(&(handle.len() as u32).to_ne_bytes());
        body.extend_from_slice(&1i32.to_ne_bytes());
        body.extend_from_slice(handle);
        if let Some(n) = name {
            body.extend_from_slice(n.as_bytes());
            body.push(0);
        }
        while (body.len() + 4) % 4 != 0 {
            body.push(0);
        }
        let mut r = vec![info_type, 0];
        r.extend_from_slice(&((body.len() + 4) as u16).to_ne_bytes());
        r.extend_from_slice(&body);
        r
    }

    #[test]
    fn parses_dfid_name_and_fid_records() {
        let buf = metadata(
            libc::FAN_CREATE,
            -1,
            42,
            &[
                fid_record(
                    libc::FAN_EVENT_INFO_TYPE_DFID_NAME,
                    &[1, 2, 3, 4, 5, 6, 7, 8],
                    Some("new.txt"),
                ),
                fid_record(libc::FAN_EVENT_INFO_TYPE_FID, &[9, 9, 9, 9], None),
            ],
        );
        let (events, err) = parse_events(&buf);
        assert_eq!(err, None);
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!((e.mask, e.fd, e.pid), (libc::FAN_CREATE, -1, 42));
        assert_eq!(e.infos.len(), 2);
        match &e.infos[0] {
            RawInfo::Fid(f) => {
                assert_eq!(f.kind, FidKind::DirName);
                assert_eq!(f.fsid, [7, 9]);
                assert_eq!(f.handle.handle_type, 1);
                assert_eq!(f.handle.bytes, vec![1, 2, 3, 4, 5, 6, 7, 8]);
                assert_eq!(f.name.as_deref(), Some(std::ffi::OsStr::new("new.txt")));
            }
            other => panic!("unexpected {other:?}"),
        }
        match &e.infos[1] {
            RawInfo::Fid(f) => {
                assert_eq!(f.kind, FidKind::Object);
                assert_eq!(f.name, None);
                assert_eq!(f.handle.to_hex(), "0000000109090909");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn parses_rename_old_and_new_names_in_order() {
        let buf = metadata(
            libc::FAN_RENAME,
            -1,
            7,
            &[
                fid_record(libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME, &[1; 8], Some("a")),
                fid_record(libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME, &[2; 8], Some("bb")),
            ],
        );
        let (events, err) = parse_events(&buf);
        assert_eq!(err, None);
        let kinds: Vec<_> = events[0]
            .infos
            .iter()
            .map(|i| match i {
                RawInfo::Fid(f) => (f.kind, f.name.clone().unwrap_or_default()),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                (FidKind::OldDirName, "a".into()),
                (FidKind::NewDirName, "bb".into())
            ]
        );
    }

    #[test]
    fn parses_pidfd_error_and_range_records_and_several_events() {
        let mut pidfd = vec![libc::FAN_EVENT_INFO_TYPE_PIDFD, 0, 8, 0];
        pidfd.extend_from_slice(&5i32.to_ne_bytes());
        let mut range = vec![INFO_TYPE_RANGE, 0, 24, 0];
        range.extend_from_slice(&0u32.to_ne_bytes());
        range.extend_from_slice(&4096u64.to_ne_bytes());
        range.extend_from_slice(&65536u64.to_ne_bytes());
        let mut error = vec![libc::FAN_EVENT_INFO_TYPE_ERROR, 0, 12, 0];
        error.extend_from_slice(&5i32.to_ne_bytes());
        error.extend_from_slice(&3u32.to_ne_bytes());
        let mut buf = metadata(libc::FAN_OPEN_PERM, 11, 100, &[pidfd]);
        buf.extend(metadata(crate::flags::FAN_PRE_ACCESS, 12, 101, &[range]));
        buf.extend(metadata(libc::FAN_FS_ERROR, -1, 0, &[error]));
        let (events, err) = parse_events(&buf);
        assert_eq!(err, None);
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].infos, vec![RawInfo::Pidfd(5)]);
        assert_eq!(events[0].descriptors().collect::<Vec<_>>(), vec![11, 5]);
        assert_eq!(
            events[1].infos,
            vec![RawInfo::Range {
                offset: 4096,
                count: 65536
            }]
        );
        assert_eq!(events[2].infos, vec![RawInfo::Error { error: 5, count: 3 }]);
        assert_eq!(events[2].descriptors().count(), 0);
    }

    #[test]
    fn rejects_wrong_version_and_truncation_keeping_earlier_events() {
        let good = metadata(libc::FAN_OPEN, 3, 1, &[]);
        let mut buf = good.clone();
        let mut bad = metadata(libc::FAN_OPEN, 4, 1, &[]);
        bad[4] = 2;
        buf.extend(bad);
        let (events, err) = parse_events(&buf);
        assert_eq!(events.len(), 1);
        assert_eq!(err, Some(ParseError::Version(2)));

        let mut cut = good.clone();
        cut.extend_from_slice(&good[..10]);
        let (events, err) = parse_events(&cut);
        assert_eq!(events.len(), 1);
        assert_eq!(err, Some(ParseError::Truncated { at: 24 }));

        let mut bad_info = metadata(libc::FAN_OPEN, -1, 1, &[vec![1, 0, 200, 0]]);
        bad_info.truncate(28);
        let (events, err) = parse_events(&bad_info);
        assert!(events.is_empty());
        assert_eq!(err, Some(ParseError::Truncated { at: 24 }));
    }

    #[test]
    fn unknown_record_types_are_kept() {
        let buf = metadata(libc::FAN_OPEN, -1, 1, &[vec![99, 0, 8, 0, 1, 2, 3, 4]]);
        let (events, err) = parse_events(&buf);
        assert_eq!(err, None);
        assert_eq!(
            events[0].infos,
            vec![RawInfo::Other {
                info_type: 99,
                bytes: vec![1, 2, 3, 4]
            }]
        );
    }
}

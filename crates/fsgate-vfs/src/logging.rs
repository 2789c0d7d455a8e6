//! Logging a drive's events: [`Logged`] wraps any [`Events`] implementation and writes one
//! line per event after the drive has answered it.
//!
//! ```no_run
//! # use fsgate_vfs::{Events, Options, VirtualDrive};
//! # use fsgate_vfs::logging::{LogFormat, Logged};
//! # fn serve(drive: impl Events) -> fsgate_core::Result<()> {
//! let logged = Logged::new(drive, LogFormat::Json, std::io::stdout());
//! VirtualDrive::new(logged, Options::default()).mount("/mnt/drive", 0)?;
//! # Ok(()) }
//! ```
//!
//! A line names the event as the reference does, without `on_` (`create_file`,
//! `rename_or_move_file`, …), then the event's parameters in snake_case under their own names
//! (`file_name`, `new_file_name`, `position`, …, outputs as the drive left them), then the
//! originator's `process_id` (left out for events outside a request: mount-time queries,
//! `on_mount`, `on_unmount`, `on_error`, the worker thread hooks) and the `result_code`: the
//! handler's error [`code`](fsgate_core::Error::code), 0 for success and for the hooks that
//! return nothing. Parameters that are unset (`None`) are left out, and so is a `rdev` of
//! 0. [`LogFormat::Json`] writes one JSON object per line, [`LogFormat::Text`]
//! `event key=value …` with strings quoted.
//!
//! The wrapper changes nothing the caller of a system call sees: every event goes to the
//! drive, with the drive's contexts, and its result comes back unchanged. A handler that
//! panics writes no line for its event; the `error` line of the `on_error` that follows says
//! what happened. A drive that is not wrapped pays nothing for logging.

use std::io::Write;
use std::sync::{Mutex, PoisonError};

use fsgate_core::Result;
use serde_json::Value;

use crate::events::Events;
use crate::params::*;
use crate::Hooks;

/// How [`Logged`] writes its lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// `event key=value …`, strings in double quotes with Rust's escapes.
    Text,
    /// One JSON object per line, `"event"` first.
    Json,
}

impl LogFormat {
    /// One event's line, without the newline: `event` and then `fields` in their order.
    pub fn line<K: AsRef<str>>(
        self,
        event: &str,
        fields: impl IntoIterator<Item = (K, Value)>,
    ) -> String {
        let mut line = String::new();
        match self {
            Self::Json => {
                line.push_str("{\"event\":");
                line.push_str(&Value::from(event).to_string());
                for (key, value) in fields {
                    line.push(',');
                    line.push_str(&Value::from(key.as_ref()).to_string());
                    line.push(':');
                    line.push_str(&value.to_string());
                }
                line.push('}');
            }
            Self::Text => {
                line.push_str(event);
                for (key, value) in fields {
                    let key = key.as_ref();
                    match value {
                        Value::String(s) => line.push_str(&format!(" {key}={s:?}")),
                        other => line.push_str(&format!(" {key}={other}")),
                    }
                }
            }
        }
        line
    }
}

/// A drive whose events are written to `W`, one line each (see the module docs).
///
/// It has the wrapped drive's contexts, so it mounts wherever that drive does:
/// `VirtualDrive::new(Logged::new(drive, LogFormat::Text, std::io::stderr()), options)`.
/// Lines from events running in parallel never interleave; each is flushed as it is written.
/// Errors writing a line are ignored: a log whose reader went away must not fail the
/// drive's callers.
pub struct Logged<E, W> {
    inner: E,
    format: LogFormat,
    sink: Mutex<W>,
}

impl<E: Events, W: Write + Send + 'static> Logged<E, W> {
    /// `inner`, with every event logged to `sink` in `format`.
    pub fn new(inner: E, format: LogFormat, sink: W) -> Self {
        Self {
            inner,
            format,
            sink: Mutex::new(sink),
        }
    }

    /// The wrapped drive.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    /// The wrapped drive and the sink, taken apart again.
    pub fn into_parts(self) -> (E, W) {
        let sink = self
            .sink
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        (self.inner, sink)
    }

    /// Writes the line of `event`: `fields`, the originator's pid when there is one, and
    /// the result's code.
    fn write<'k>(
        &self,
        event: &str,
        result: &Result<()>,
        fields: impl IntoIterator<Item = (&'k str, Option<Value>)>,
    ) {
        let process_id = crate::get_originator_process_id().ok().map(Value::from);
        let code = result.as_ref().err().map_or(0, fsgate_core::Error::code);
        let fields = fields
            .into_iter()
            .chain([
                ("process_id", process_id),
                ("result_code", Some(code.into())),
            ])
            .filter_map(|(key, value)| Some((key, value?)));
        let mut line = self.format.line(event, fields);
        line.push('\n');
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = sink.write_all(line.as_bytes());
        let _ = sink.flush();
    }
}

/// A parameter as a logged value; `None` leaves the field out of the line.
trait Field {
    fn value(self) -> Option<Value>;
}

macro_rules! plain_fields {
    ($($t:ty),*) => {
        $(impl Field for $t {
            fn value(self) -> Option<Value> {
                Some(self.into())
            }
        })*
    };
}

plain_fields!(bool, u32, u64, usize, &str, String);

impl<T: Field> Field for Option<T> {
    fn value(self) -> Option<Value> {
        self?.value()
    }
}

/// Times as seconds since the Unix epoch, with their nanoseconds (negative before it).
impl Field for std::time::SystemTime {
    fn value(self) -> Option<Value> {
        let seconds = match self.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        Some(seconds.into())
    }
}

impl Field for FileKind {
    fn value(self) -> Option<Value> {
        Some(format!("{self:?}").into())
    }
}

/// Names are bytes; a log line shows bytes that are not UTF-8 as U+FFFD.
impl Field for &std::ffi::OsStr {
    fn value(self) -> Option<Value> {
        Some(self.to_string_lossy().into_owned().into())
    }
}

impl Field for &std::path::Path {
    fn value(self) -> Option<Value> {
        self.as_os_str().value()
    }
}

/// Writes each listed event as a method that forwards `$p` to the wrapped drive, then logs
/// the line `$event` with the listed fields (read after the drive answered, so outputs are
/// the drive's).
macro_rules! forward_and_log {
    ($(
        fn $method:ident($p:ident: $params:ty) => $event:literal {
            $($field:ident: $value:expr),* $(,)?
        }
    )*) => {
        $(
            fn $method(&self, $p: &mut $params) -> Result<()> {
                let result = self.inner.$method($p);
                self.write($event, &result, [$((stringify!($field), Field::value($value))),*]);
                result
            }
        )*
    };
}

impl<E: Events, W: Write + Send + 'static> Events for Logged<E, W> {
    type FileContext = E::FileContext;
    type HandleContext = E::HandleContext;
    type EnumerationContext = E::EnumerationContext;

    forward_and_log! {
        fn on_mount(p: MountParams) => "mount" {
            mounting_point: p.mounting_point.as_path(),
        }
        fn on_unmount(p: UnmountParams) => "unmount" {
            mounting_point: p.mounting_point.as_path(),
        }
        fn on_get_volume_size(p: GetVolumeSizeParams) => "get_volume_size" {
            sector_size: p.sector_size,
            total_sectors: p.total_sectors,
            available_sectors: p.available_sectors,
            total_files: p.total_files,
            free_files: p.free_files,
        }
        fn on_get_volume_label(p: GetVolumeLabelParams) => "get_volume_label" {
            buffer: p.buffer.as_str(),
        }
        fn on_get_volume_id(p: GetVolumeIdParams) => "get_volume_id" {
            volume_id: p.volume_id,
        }
        fn on_create_file(p: CreateFileParams<'_, Self::FileContext, Self::HandleContext>)
            => "create_file" {
            file_name: p.file_name,
            attributes: p.attributes,
            desired_access: p.desired_access,
            kind: p.kind,
            rdev: (p.rdev != 0).then_some(p.rdev),
        }
        fn on_open_file(p: OpenFileParams<'_, Self::FileContext, Self::HandleContext>)
            => "open_file" {
            file_name: p.file_name,
            desired_access: p.desired_access,
        }
        fn on_cleanup_file(p: CleanupFileParams<'_, Self::FileContext, Self::HandleContext>)
            => "cleanup_file" {
            file_name: p.file_name,
        }
        fn on_close_file(p: CloseFileParams<'_, Self::FileContext, Self::HandleContext>)
            => "close_file" {
            file_name: p.file_name,
        }
        fn on_get_file_info(p: GetFileInfoParams<'_, Self::FileContext>) => "get_file_info" {
            file_name: p.file_name,
            file_exists: p.file_exists,
        }
        fn on_enumerate_directory(
            p: EnumerateDirectoryParams<
                '_,
                Self::FileContext,
                Self::HandleContext,
                Self::EnumerationContext,
            >
        ) => "enumerate_directory" {
            directory_name: p.directory_name,
            file_found: p.file_found,
            file_name: p.file_name.as_os_str(),
        }
        fn on_close_directory_enumeration(
            p: CloseDirectoryEnumerationParams<'_, Self::FileContext, Self::EnumerationContext>
        ) => "close_directory_enumeration" {
            directory_name: p.directory_name,
        }
        fn on_read_file(p: ReadFileParams<'_, Self::FileContext, Self::HandleContext>)
            => "read_file" {
            file_name: p.file_name,
            position: p.position,
            bytes_to_read: p.buffer.len(),
            bytes_read: p.bytes_read,
        }
        fn on_write_file(p: WriteFileParams<'_, Self::FileContext, Self::HandleContext>)
            => "write_file" {
            file_name: p.file_name,
            position: p.position,
            bytes_to_write: p.buffer.len(),
            bytes_written: p.bytes_written,
        }
        fn on_set_file_size(p: SetFileSizeParams<'_, Self::FileContext>) => "set_file_size" {
            file_name: p.file_name,
            size: p.size,
        }
        fn on_set_allocation_size(p: SetAllocationSizeParams<'_, Self::FileContext>)
            => "set_allocation_size" {
            file_name: p.file_name,
            allocation_size: p.allocation_size,
            keep_size: p.keep_size,
        }
        fn on_zeroize_file_range(p: ZeroizeFileRangeParams<'_, Self::FileContext>)
            => "zeroize_file_range" {
            file_name: p.file_name,
            position: p.position,
            length: p.length,
            deallocate: p.deallocate,
            keep_size: p.keep_size,
        }
        fn on_copy_file_range(p: CopyFileRangeParams<'_, Self::FileContext, Self::HandleContext>)
            => "copy_file_range" {
            file_name: p.file_name,
            position: p.position,
            target_file_name: p.target_file_name,
            target_position: p.target_position,
            length: p.length,
            bytes_copied: p.bytes_copied,
        }
        fn on_set_file_attributes(p: SetFileAttributesParams<'_, Self::FileContext>)
            => "set_file_attributes" {
            file_name: p.file_name,
            mode: p.mode,
            creation_time: p.creation_time,
            last_access_time: p.last_access_time,
            last_write_time: p.last_write_time,
            change_time: p.change_time,
        }
        fn on_set_file_security(p: SetFileSecurityParams<'_, Self::FileContext>)
            => "set_file_security" {
            file_name: p.file_name,
            owner: p.owner,
            group: p.group,
        }
        fn on_rename_or_move_file(p: RenameOrMoveFileParams<'_, Self::FileContext>)
            => "rename_or_move_file" {
            file_name: p.file_name,
            new_file_name: p.new_file_name,
            replace_existing: p.replace_existing,
        }
        fn on_exchange_files(p: ExchangeFilesParams<'_>) => "exchange_files" {
            file_name: p.file_name,
            new_file_name: p.new_file_name,
        }
        fn on_can_file_be_deleted(p: CanFileBeDeletedParams<'_, Self::FileContext>)
            => "can_file_be_deleted" {
            file_name: p.file_name,
            is_directory: p.is_directory,
            can_be_deleted: p.can_be_deleted,
        }
        fn on_delete_file(p: DeleteFileParams<'_, Self::FileContext>) => "delete_file" {
            file_name: p.file_name,
            is_directory: p.is_directory,
        }
        fn on_is_directory_empty(p: IsDirectoryEmptyParams<'_>) => "is_directory_empty" {
            directory_name: p.directory_name,
            is_empty: p.is_empty,
        }
        fn on_flush_file(p: FlushFileParams<'_, Self::FileContext, Self::HandleContext>)
            => "flush_file" {
            file_name: p.file_name,
            data_only: p.data_only,
        }
        fn on_create_hard_link(p: CreateHardLinkParams<'_>) => "create_hard_link" {
            file_name: p.file_name,
            link_name: p.link_name,
        }
        fn on_create_symbolic_link(p: CreateSymbolicLinkParams<'_>) => "create_symbolic_link" {
            file_name: p.file_name,
            target: p.target,
        }
        fn on_get_symbolic_link_target(p: GetSymbolicLinkTargetParams<'_>)
            => "get_symbolic_link_target" {
            file_name: p.file_name,
            target: p.target.as_path(),
        }
        fn on_get_ea(p: GetEaParams<'_>) => "get_ea" {
            file_name: p.file_name,
            name: p.name,
        }
        fn on_set_ea(p: SetEaParams<'_>) => "set_ea" {
            file_name: p.file_name,
            name: p.name,
        }
        fn on_list_eas(p: ListEasParams<'_>) => "list_eas" {
            file_name: p.file_name,
        }
        fn on_remove_ea(p: RemoveEaParams<'_>) => "remove_ea" {
            file_name: p.file_name,
            name: p.name,
        }
    }
}

impl<E: Events, W: Write + Send + 'static> Hooks for Logged<E, W> {
    fn on_error(&self, error_code: u32, description: &str) {
        self.inner.on_error(error_code, description);
        self.write(
            "error",
            &Ok(()),
            [
                ("error_code", error_code.value()),
                ("description", description.value()),
            ],
        );
    }

    fn on_worker_thread_creation(&self) {
        self.inner.on_worker_thread_creation();
        self.write("worker_thread_creation", &Ok(()), []);
    }

    fn on_worker_thread_termination(&self) {
        self.inner.on_worker_thread_termination();
        self.write("worker_thread_termination", &Ok(()), []);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use fsgate_core::{code, Error, Originator};

    use super::*;

    /// A flat drive of files in a map: just enough events to answer through the wrapper.
    #[derive(Default)]
    struct Notes {
        files: Mutex<BTreeMap<std::path::PathBuf, Vec<u8>>>,
        hooks: AtomicUsize,
    }

    impl Notes {
        fn missing(name: &std::path::Path) -> Error {
            Error::from_code(
                code::ERROR_FILE_NOT_FOUND,
                format!("{} does not exist", name.display()),
            )
        }
    }

    impl Events for Notes {
        type FileContext = ();
        type HandleContext = ();
        type EnumerationContext = ();

        fn on_get_volume_label(&self, p: &mut GetVolumeLabelParams) -> Result<()> {
            p.buffer = "notes".into();
            Ok(())
        }

        fn on_create_file(&self, p: &mut CreateFileParams<'_, (), ()>) -> Result<()> {
            self.files
                .lock()
                .unwrap()
                .insert(p.file_name.into(), Vec::new());
            Ok(())
        }

        fn on_read_file(&self, p: &mut ReadFileParams<'_, (), ()>) -> Result<()> {
            let files = self.files.lock().unwrap();
            let data = files
                .get(p.file_name)
                .ok_or_else(|| Self::missing(p.file_name))?;
            let from = (p.position as usize).min(data.len());
            let n = (data.len() - from).min(p.buffer.len());
            p.buffer[..n].copy_from_slice(&data[from..from + n]);
            p.bytes_read = n;
            Ok(())
        }

        fn on_write_file(&self, p: &mut WriteFileParams<'_, (), ()>) -> Result<()> {
            let mut files = self.files.lock().unwrap();
            let data = files
                .get_mut(p.file_name)
                .ok_or_else(|| Self::missing(p.file_name))?;
            let end = p.position as usize + p.buffer.len();
            data.resize(data.len().max(end), 0);
            data[p.position as usize..end].copy_from_slice(p.buffer);
            p.bytes_written = p.buffer.len();
            Ok(())
        }

        fn on_delete_file(&self, p: &mut DeleteFileParams<'_, ()>) -> Result<()> {
            self.files
                .lock()
                .unwrap()
                .remove(p.file_name)
                .map(drop)
                .ok_or_else(|| Self::missing(p.file_name))
        }
    }

    impl Hooks for Notes {
        fn on_error(&self, _error_code: u32, _description: &str) {
            self.hooks.fetch_add(1, Ordering::Relaxed);
        }

        fn on_worker_thread_creation(&self) {
            self.hooks.fetch_add(1, Ordering::Relaxed);
        }

        fn on_worker_thread_termination(&self) {
            self.hooks.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn logged(format: LogFormat) -> Logged<Notes, Vec<u8>> {
        Logged::new(Notes::default(), format, Vec::new())
    }

    fn lines(logged: Logged<Notes, Vec<u8>>) -> Vec<String> {
        let (_, out) = logged.into_parts();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn json(line: &str) -> Value {
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn create(drive: &impl Events<FileContext = (), HandleContext = ()>, name: &str) -> Result<()> {
        drive.on_create_file(&mut CreateFileParams {
            originator: Originator::new(100, 100, 0, 0),
            file_name: std::path::Path::new(name),
            desired_access: access::FILE_READ_DATA | access::FILE_WRITE_DATA,
            attributes: attributes::FILE_ATTRIBUTE_NORMAL,
            kind: FileKind::File,
            rdev: 0,
            mode: 0o644,
            flags: libc::O_CREAT | libc::O_RDWR,
            info: FileInfo::new(FileKind::File, 0, 0, std::time::SystemTime::UNIX_EPOCH),
            info_filled: false,
            handle_info: HandleInfo {
                handle_id: 1,
                creator: Originator::new(100, 100, 0, 0),
            },
            file_context: &mut None,
            handle_context: &mut None,
            route: None,
            direct_io: false,
        })
    }

    fn write(drive: &impl Events<FileContext = (), HandleContext = ()>, name: &str, data: &[u8]) {
        let mut p = WriteFileParams {
            originator: Originator::new(100, 100, 0, 0),
            file_name: std::path::Path::new(name),
            position: 0,
            buffer: data,
            write_back: false,
            bytes_written: 0,
            file_context: None,
            handle_context: None,
        };
        drive.on_write_file(&mut p).unwrap();
        assert_eq!(p.bytes_written, data.len());
    }

    fn read(
        drive: &impl Events<FileContext = (), HandleContext = ()>,
        name: &str,
        buffer: &mut [u8],
    ) -> Result<usize> {
        let mut p = ReadFileParams {
            originator: Originator::new(100, 100, 0, 0),
            file_name: std::path::Path::new(name),
            position: 0,
            buffer,
            bytes_read: 0,
            file_context: None,
            handle_context: None,
        };
        drive.on_read_file(&mut p).map(|()| p.bytes_read)
    }

    #[test]
    fn json_lines_give_the_event_then_its_params_then_the_result_code() {
        let drive = logged(LogFormat::Json);
        create(&drive, "/a").unwrap();
        drive
            .on_delete_file(&mut DeleteFileParams {
                originator: Originator::new(100, 100, 0, 0),
                file_name: std::path::Path::new("/a"),
                is_directory: false,
                file_context: None,
            })
            .unwrap();
        let lines = lines(drive);
        assert_eq!(
            lines[0],
            r#"{"event":"create_file","file_name":"/a","attributes":128,"desired_access":3,"kind":"File","result_code":0}"#,
            "outside a request there is no process_id; a rdev of 0 is left out"
        );
        assert_eq!(
            lines[1],
            r#"{"event":"delete_file","file_name":"/a","is_directory":false,"result_code":0}"#
        );
    }

    #[test]
    fn the_drive_answers_through_the_wrapper_and_its_outputs_are_logged() {
        let drive = logged(LogFormat::Json);
        create(&drive, "/a").unwrap();
        write(&drive, "/a", b"hello");
        let mut buffer = [0u8; 16];
        assert_eq!(read(&drive, "/a", &mut buffer).unwrap(), 5);
        assert_eq!(&buffer[..5], b"hello");
        let lines = lines(drive);
        let (written, read) = (json(&lines[1]), json(&lines[2]));
        assert_eq!(written["event"], "write_file");
        assert_eq!(
            (&written["bytes_to_write"], &written["bytes_written"]),
            (&5.into(), &5.into())
        );
        assert_eq!(read["event"], "read_file");
        assert_eq!(
            (
                &read["position"],
                &read["bytes_to_read"],
                &read["bytes_read"]
            ),
            (&0.into(), &16.into(), &5.into())
        );
    }

    #[test]
    fn a_failed_event_returns_the_drives_error_and_logs_its_code() {
        let drive = logged(LogFormat::Json);
        let err = read(&drive, "/missing", &mut [0u8; 4]).unwrap_err();
        assert_eq!(err.errno(), libc::ENOENT);
        let line = json(&lines(drive)[0]);
        assert_eq!(line["file_name"], "/missing");
        assert_eq!(line["result_code"], code::ERROR_FILE_NOT_FOUND);
    }

    #[test]
    fn text_lines_quote_strings_and_leave_unset_params_out() {
        let drive = logged(LogFormat::Text);
        let result = drive.on_set_file_attributes(&mut SetFileAttributesParams {
            originator: Originator::new(100, 100, 0, 0),
            file_name: std::path::Path::new("/a \"b\""),
            mode: None,
            creation_time: None,
            last_access_time: None,
            last_write_time: None,
            change_time: None,
            info: FileInfo::new(FileKind::File, 0, 0, std::time::SystemTime::UNIX_EPOCH),
            info_filled: false,
            file_context: None,
        });
        assert_eq!(result.unwrap_err().errno(), libc::EOPNOTSUPP);
        assert_eq!(
            lines(drive),
            [format!(
                "set_file_attributes file_name=\"/a \\\"b\\\"\" result_code={}",
                code::ERROR_NOT_SUPPORTED
            )]
        );
    }

    #[test]
    fn unhandled_events_keep_the_drives_defaults() {
        let drive = logged(LogFormat::Json);
        let exchange = drive.on_exchange_files(&mut ExchangeFilesParams {
            originator: Originator::new(100, 100, 0, 0),
            file_name: std::path::Path::new("/a"),
            new_file_name: std::path::Path::new("/b"),
        });
        assert_eq!(exchange.unwrap_err().errno(), libc::EINVAL);
        let copy = drive.on_copy_file_range(&mut CopyFileRangeParams {
            originator: Originator::new(100, 100, 0, 0),
            file_name: std::path::Path::new("/a"),
            position: 0,
            file_context: None,
            handle_context: None,
            target_file_name: std::path::Path::new("/b"),
            target_position: 10,
            target_handle_context: None,
            length: 4096,
            bytes_copied: 0,
        });
        assert_eq!(copy.unwrap_err().errno(), libc::ENOSYS);
        let zero = drive.on_zeroize_file_range(&mut ZeroizeFileRangeParams {
            originator: Originator::new(100, 100, 0, 0),
            file_name: std::path::Path::new("/a"),
            position: 0,
            length: 1,
            deallocate: true,
            keep_size: true,
            file_context: None,
        });
        assert_eq!(zero.unwrap_err().errno(), libc::EOPNOTSUPP);
        let lines = lines(drive);
        let events: Vec<Value> = lines.iter().map(|l| json(l)).collect();
        assert_eq!(
            events
                .iter()
                .map(|e| e["event"].clone())
                .collect::<Vec<_>>(),
            ["exchange_files", "copy_file_range", "zeroize_file_range"]
        );
        assert_eq!(events[1]["target_file_name"], "/b");
        assert_eq!(events[1]["length"], 4096);
    }

    #[test]
    fn volume_events_and_hooks_reach_the_drive_and_are_logged() {
        let drive = logged(LogFormat::Json);
        let mut label = GetVolumeLabelParams::default();
        drive.on_get_volume_label(&mut label).unwrap();
        assert_eq!(label.buffer, "notes");
        drive.on_worker_thread_creation();
        drive.on_error(code::ERROR_INTERNAL_ERROR, "a handler panicked");
        drive.on_worker_thread_termination();
        assert_eq!(drive.inner().hooks.load(Ordering::Relaxed), 3);
        assert_eq!(
            lines(drive),
            [
                r#"{"event":"get_volume_label","buffer":"notes","result_code":0}"#.to_owned(),
                r#"{"event":"worker_thread_creation","result_code":0}"#.to_owned(),
                format!(
                    r#"{{"event":"error","error_code":{},"description":"a handler panicked","result_code":0}}"#,
                    code::ERROR_INTERNAL_ERROR
                ),
                r#"{"event":"worker_thread_termination","result_code":0}"#.to_owned(),
            ]
        );
    }
}

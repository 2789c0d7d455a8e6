//! `fsgate monitor` and `fsgate filter`: thin glue over `fsgate_filter`.

use std::path::PathBuf;

use clap::Args;
use fsgate_core::mask::FileMask;
use fsgate_core::{Error, Result};
use fsgate_filter::events::{
    ControlEvent, FileRequest, FilterEvents, Hooks, MonitorEvents, NotifyEvent, NotifyKind,
};
use fsgate_filter::filter::FileFilter;
use fsgate_filter::monitor::FileMonitor;
use fsgate_filter::rules::{AccessFlags, ControlFlags, NotifyFlags};
use fsgate_filter::volumes::Volume;
use serde_json::{Map, Value};

use crate::output::{ready, Printer, StopSignal};

/// `fsgate monitor PATH... [--mask MASK]... [--events LIST] [--json]`.
#[derive(Args)]
pub struct MonitorArgs {
    /// Paths to watch (everything below each one).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// File masks (`*.txt`, `name|mask`, `||mask` …) applied under each path; default `*`.
    #[arg(long = "mask")]
    pub masks: Vec<String>,
    /// Comma-separated events: create,open,execute,read,write,set_attributes,close,rename,delete,
    /// volume (mounts attached and detached as they come and go); default: all.
    #[arg(long)]
    pub events: Option<String>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// `fsgate filter PATH --deny-read MASK --deny-write MASK --deny-exec MASK ...`.
#[derive(Args)]
pub struct FilterArgs {
    /// The path to enforce rules under.
    pub path: PathBuf,
    /// Deny reading files matching MASK (relative masks apply under PATH).
    #[arg(long = "deny-read")]
    pub deny_read: Vec<String>,
    /// Deny writing files matching MASK.
    #[arg(long = "deny-write")]
    pub deny_write: Vec<String>,
    /// Deny executing files matching MASK.
    #[arg(long = "deny-exec")]
    pub deny_exec: Vec<String>,
    /// Deny deleting files matching MASK (`unlink`, `rmdir`, a rename over them): EACCES.
    /// Served by an overlay mounted over PATH.
    #[arg(long = "deny-delete")]
    pub deny_delete: Vec<String>,
    /// Deny renaming files matching MASK (away or over them): EACCES. Served by an overlay.
    #[arg(long = "deny-rename")]
    pub deny_rename: Vec<String>,
    /// Hide files matching MASK: they vanish from listings and lookups (ENOENT). Served by
    /// an overlay.
    #[arg(long = "hide")]
    pub hide: Vec<String>,
    /// Redirect names matching MASK to TARGET (a reparse rule: `MASK=TARGET`; a TARGET
    /// ending in `/*` keeps the rest of the path; a relative TARGET is under PATH).
    #[arg(long = "redirect", value_name = "MASK=TARGET")]
    pub redirect: Vec<String>,
    /// A file that exists only in the filter: NAME (under PATH) lists and reads as the
    /// current content of SOURCE (`NAME=SOURCE`), read-only.
    #[arg(long = "virtual-file", value_name = "NAME=SOURCE")]
    pub virtual_file: Vec<String>,
    /// Serve PATH with an overlay even when no rule needs one (then no rule is needed at
    /// all: the overlay alone, as benchmarks measure it).
    #[arg(long)]
    pub overlay: bool,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// The notification flags of an `--events` list, and whether it asks for volume events.
fn parse_events(list: &str) -> Result<(NotifyFlags, bool)> {
    let mut flags = NotifyFlags::empty();
    let mut volumes = false;
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if name == "volume" || name == "volumes" {
            volumes = true;
            continue;
        }
        flags |= match name.trim_start_matches("notify_").trim_end_matches("_file") {
            "create" => NotifyFlags::FS_NE_CREATE,
            "open" => NotifyFlags::FS_NE_OPEN,
            "execute" => NotifyFlags::FS_NE_EXECUTE,
            "read" => NotifyFlags::FS_NE_READ,
            "write" => NotifyFlags::FS_NE_WRITE,
            "set_attributes" | "set_file_attributes" | "attrib" => {
                NotifyFlags::FS_NE_SET_ATTRIBUTES
            }
            "close" => NotifyFlags::FS_NE_CLOSE,
            "rename" | "rename_or_move" => NotifyFlags::FS_NE_RENAME,
            "delete" => NotifyFlags::FS_NE_DELETE,
            "all" => {
                volumes = true;
                NotifyFlags::FS_NE_ALL
            }
            other => {
                return Err(Error::invalid_argument(
                    "--events",
                    format!("unknown event '{other}'"),
                ))
            }
        };
    }
    if flags.is_empty() {
        return Err(Error::invalid_argument(
            "--events",
            "name at least one file event (create, open, …)",
        ));
    }
    Ok((flags, volumes))
}

/// Joins a mask to a base path unless it already has an absolute path or a process part.
fn under(base: &std::path::Path, mask: &str) -> String {
    let (prefix, rest) = match mask.rsplit_once('|') {
        Some((p, r)) => (format!("{p}|"), r),
        None => (String::new(), mask),
    };
    if rest.starts_with('/') {
        return mask.to_string();
    }
    format!("{prefix}{}/{}", base.display(), rest)
}

fn absolute(p: &std::path::Path) -> Result<PathBuf> {
    std::fs::canonicalize(p).map_err(|e| Error::io(format!("resolving {}", p.display()), e))
}

struct Print(Printer);

/// The monitor's printer: file events, and volume events when asked for.
struct MonitorPrint {
    print: Print,
    volumes: bool,
}

impl MonitorPrint {
    fn volume(&self, event: &str, v: &Volume) {
        if !self.volumes {
            return;
        }
        let mut m = Map::new();
        m.insert(
            "volume_name".into(),
            Value::String(v.mount_point.display().to_string()),
        );
        m.insert("file_system".into(), Value::String(v.fs_type.clone()));
        m.insert("source".into(), Value::String(v.source.clone()));
        self.print.0.event(event, m);
    }
}

impl Hooks for MonitorPrint {
    fn on_error(&self, code: u32, description: &str) {
        self.print.on_error(code, description);
    }
}

impl MonitorEvents for MonitorPrint {
    fn on_notify(&self, e: &NotifyEvent) -> Result<()> {
        self.print.on_notify(e)
    }
    fn on_after_filter_attach_to_volume(&self, v: &Volume) {
        self.volume("after_filter_attach_to_volume", v);
    }
    fn on_after_filter_detach_from_volume(&self, v: &Volume) {
        self.volume("after_filter_detach_from_volume", v);
    }
}

impl MonitorEvents for Print {
    fn on_notify(&self, e: &NotifyEvent) -> Result<()> {
        let mut m = Map::new();
        m.insert("file_name".into(), Value::String(e.file_name.clone()));
        if let Some(n) = &e.new_file_name {
            m.insert("new_file_name".into(), Value::String(n.clone()));
        }
        if e.kind == NotifyKind::CloseFile {
            m.insert("modified".into(), Value::Bool(e.modified));
        }
        m.insert("directory".into(), Value::Bool(e.directory));
        m.insert("process_id".into(), Value::from(e.process_id));
        m.insert("process_name".into(), Value::String(e.process_name.clone()));
        if let Some(uid) = e.user_id {
            m.insert("user_id".into(), Value::from(uid));
        }
        self.0.event(e.kind.event_name(), m);
        Ok(())
    }
}

impl Hooks for Print {
    fn on_error(&self, code: u32, description: &str) {
        let mut m = Map::new();
        m.insert("result_code".into(), Value::from(code));
        m.insert("description".into(), Value::String(description.into()));
        self.0.event("error", m);
    }
}

impl Print {
    fn access_denied(&self, e: &ControlEvent) {
        let mut m = Map::new();
        m.insert(
            "operation".into(),
            Value::String(e.kind.event_name().into()),
        );
        m.insert("file_name".into(), Value::String(e.file_name.clone()));
        m.insert("process_id".into(), Value::from(e.process_id));
        m.insert("process_name".into(), Value::String(e.process_name.clone()));
        self.0.event("access_denied", m);
    }
}

/// The filter's handler: prints denials and notifications, hides what `--hide` names
/// (from listings through `on_after_enumerate_directory`, from lookups through
/// `on_before_query_file_info`), and serves `--virtual-file`s from their sources.
struct FilterPrint {
    print: Print,
    hide: Vec<FileMask>,
    /// Virtual files (full paths) and the files their content comes from.
    virtual_files: Vec<(String, PathBuf)>,
}

impl FilterPrint {
    fn hidden(&self, path: &str) -> bool {
        self.hide.iter().any(|m| m.matches(path, None))
    }

    fn source_of(&self, path: &str) -> Option<&PathBuf> {
        self.virtual_files
            .iter()
            .find(|(name, _)| name == path)
            .map(|(_, source)| source)
    }
}

impl Hooks for FilterPrint {
    fn on_error(&self, code: u32, description: &str) {
        self.print.on_error(code, description);
    }
}

impl MonitorEvents for FilterPrint {
    fn on_notify(&self, e: &NotifyEvent) -> Result<()> {
        self.print.on_notify(e)
    }
}

impl FilterEvents for FilterPrint {
    fn on_access_denied(&self, e: &ControlEvent) {
        self.print.access_denied(e);
    }

    fn on_after_read_file(&self, r: &mut FileRequest<'_>) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let Some(source) = self.source_of(r.file_name) else {
            return Ok(());
        };
        let file = std::fs::File::open(source)
            .map_err(|e| Error::io(format!("opening {}", source.display()), e))?;
        let mut buffer = vec![0; r.length];
        let n = file
            .read_at(&mut buffer, r.offset)
            .map_err(|e| Error::io(format!("reading {}", source.display()), e))?;
        buffer.truncate(n);
        r.buffer = buffer;
        Ok(())
    }

    fn on_before_query_file_info(&self, r: &mut FileRequest<'_>) -> Result<()> {
        if let Some(source) = self.source_of(r.file_name) {
            let meta = std::fs::metadata(source)
                .map_err(|e| Error::io(format!("reading {}", source.display()), e))?;
            r.size = Some(meta.len());
            return Ok(());
        }
        if self.hidden(r.file_name) {
            return Err(Error::from_errno(
                libc::ENOENT,
                format!("{} is hidden", r.file_name),
            ));
        }
        Ok(())
    }

    fn on_after_enumerate_directory(&self, r: &mut FileRequest<'_>) -> Result<()> {
        let dir = r.file_name.trim_end_matches('/');
        r.entries.retain(|e| {
            let path = format!("{dir}/{}", e.name.to_string_lossy());
            !self.hidden(&path)
        });
        Ok(())
    }
}

/// Runs `fsgate monitor`.
pub fn monitor(args: MonitorArgs) -> Result<()> {
    let (flags, volumes) = match &args.events {
        Some(list) => parse_events(list)?,
        None => (NotifyFlags::FS_NE_ALL, true),
    };
    let stop = StopSignal::register()?;
    let m = FileMonitor::new(MonitorPrint {
        print: Print(Printer { json: args.json }),
        volumes,
    });
    m.set_serialize_events(true);
    let masks = if args.masks.is_empty() {
        vec!["*".to_string()]
    } else {
        args.masks.clone()
    };
    for p in &args.paths {
        let base = absolute(p)?;
        for mask in &masks {
            m.add_filter_rule(&under(&base, mask), flags)?;
        }
    }
    m.start_filter()?;
    let shown: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
    ready(format!("monitoring {}", shown.join(" ")));
    stop.wait();
    m.stop_filter()
}

/// Runs `fsgate filter`.
pub fn filter(args: FilterArgs) -> Result<()> {
    let rules = [
        &args.deny_read,
        &args.deny_write,
        &args.deny_exec,
        &args.deny_delete,
        &args.deny_rename,
        &args.hide,
        &args.redirect,
        &args.virtual_file,
    ];
    if !args.overlay && rules.iter().all(|r| r.is_empty()) {
        return Err(Error::invalid_argument(
            "--deny-read/--deny-write/--deny-exec/--deny-delete/--deny-rename/--hide/--redirect/--virtual-file",
            "give at least one rule",
        ));
    }
    let base = absolute(&args.path)?;
    let hide = args
        .hide
        .iter()
        .map(|m| FileMask::parse(&under(&base, m)))
        .collect::<Result<Vec<_>>>()?;
    let mut virtual_files = Vec::new();
    for spec in &args.virtual_file {
        let Some((name, source)) = spec.split_once('=') else {
            return Err(Error::invalid_argument(
                "--virtual-file",
                format!("'{spec}' is not NAME=SOURCE"),
            ));
        };
        let name = format!("{}/{}", base.display(), name.trim_start_matches('/'));
        virtual_files.push((name, absolute(std::path::Path::new(source))?));
    }
    let stop = StopSignal::register()?;
    let f = FileFilter::new(FilterPrint {
        print: Print(Printer { json: args.json }),
        hide,
        virtual_files: virtual_files.clone(),
    });
    for (name, source) in &virtual_files {
        let size = std::fs::metadata(source)
            .map_err(|e| Error::io(format!("reading {}", source.display()), e))?
            .len();
        f.add_virtual_file(name, size)?;
    }
    if args.overlay {
        f.add_overlay_directory(&base)?;
    }
    let none = (ControlFlags::empty(), NotifyFlags::empty());
    for (masks, access) in [
        (&args.deny_read, AccessFlags::ACCESS_WRITE_ONLY),
        (&args.deny_write, AccessFlags::ACCESS_READ_ONLY),
        (&args.deny_exec, AccessFlags::ACCESS_EXECUTE_PROTECT),
        (&args.deny_delete, AccessFlags::ACCESS_DELETE_PROTECT),
        (&args.deny_rename, AccessFlags::ACCESS_RENAME_PROTECT),
    ] {
        for mask in masks {
            f.add_filter_rule(&under(&base, mask), access, none.0, none.1)?;
        }
    }
    for rule in &args.redirect {
        let Some((mask, target)) = rule.split_once('=') else {
            return Err(Error::invalid_argument(
                "--redirect",
                format!("'{rule}' is not MASK=TARGET"),
            ));
        };
        let target = if target.starts_with('/') {
            target.to_string()
        } else {
            format!("{}/{target}", base.display())
        };
        f.add_reparse_rule(&under(&base, mask), &target)?;
    }
    for mask in &args.hide {
        f.add_filter_rule(
            &under(&base, mask),
            AccessFlags::empty(),
            ControlFlags::FS_CE_BEFORE_QUERY_FILE_INFO,
            none.1,
        )?;
    }
    if !args.hide.is_empty() {
        // Every listing under PATH, PATH's own included, goes past the hide masks.
        let root = base.display().to_string();
        for mask in [root.clone(), format!("{}/*", root.trim_end_matches('/'))] {
            f.add_filter_rule(
                &mask,
                AccessFlags::empty(),
                ControlFlags::FS_CE_AFTER_ENUMERATE_DIRECTORY,
                none.1,
            )?;
        }
    }
    f.start_filter(0)?;
    let overlays = f.overlay_directories();
    let backend = if overlays.is_empty() {
        String::new()
    } else {
        let shown: Vec<String> = overlays
            .iter()
            .map(|(dir, mode)| {
                let served = match mode {
                    fsgate_vfs::RouteMode::Passthrough => "kernel",
                    fsgate_vfs::RouteMode::Library => "fsgate",
                };
                format!("{}, passthrough: {served}", dir.display())
            })
            .collect();
        format!(" (overlay on {})", shown.join(", "))
    };
    ready(format!("filtering {}{backend}", args.path.display()));
    stop.wait();
    f.stop_filter()
}

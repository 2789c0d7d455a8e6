//! `fsgate process list|watch|deny`: the process filter sample.
//!
//! `watch` and `deny` start a [`ProcessFilter`], which checks that fsgate is installed for
//! the product GUID (see [`Product`]).

use std::io::Write;
use std::sync::Arc;

use clap::{Args, Subcommand};
use fsgate_core::mask::PathMask;
use fsgate_core::{code, Error, Result};
use fsgate_process::{
    EventsToFire, HandleOperation, Hooks, ProcessCreation, ProcessEvents, ProcessFilter,
    ProcessTermination, ThreadCreation, ThreadTermination,
};
use serde_json::{json, Map, Value};

use crate::cmd::product::Product;
use crate::output::{ready, Printer, StopSignal};

/// Process subcommands.
#[derive(Subcommand)]
pub enum ProcessCommand {
    /// List running processes.
    List(ListArgs),
    /// Print process and thread events until SIGINT/SIGTERM.
    Watch(WatchArgs),
    /// Deny the exec of every image whose full path matches a mask, until SIGINT/SIGTERM.
    Deny(DenyArgs),
}

/// `fsgate process list`.
#[derive(Args)]
pub struct ListArgs {
    /// Also print each command line.
    #[arg(long)]
    pub command_line: bool,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// `fsgate process watch`.
#[derive(Args)]
pub struct WatchArgs {
    /// Watch processes whose image matches (name, or full path with `/`; `*` `?`).
    #[arg(long = "name", value_name = "MASK")]
    pub names: Vec<String>,
    /// Watch this process (-1: every process).
    #[arg(long = "pid", value_name = "PID", allow_hyphen_values = true)]
    pub pids: Vec<i64>,
    /// Also watch the descendants of the watched processes.
    #[arg(long)]
    pub children: bool,
    /// Comma-separated: process_creation, process_termination, thread_creation,
    /// thread_termination, process_handle_operation, thread_handle_operation, or handle
    /// (both handle operation events: signals, ptrace, memory access and descriptor copies,
    /// from kernel tracepoints). Default: the four creation and termination events.
    #[arg(long, value_name = "LIST")]
    pub events: Option<String>,
    /// Fill command lines of creations.
    #[arg(long)]
    pub command_line: bool,
    #[command(flatten)]
    pub product: Product,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// `fsgate process deny`.
#[derive(Args)]
pub struct DenyArgs {
    /// Image masks; the mount holding each mask's leading path is put under exec control,
    /// every mount for a mask without an absolute leading path.
    #[arg(required = true, value_name = "MASK")]
    pub masks: Vec<String>,
    #[command(flatten)]
    pub product: Product,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// Runs a process command.
pub fn run(command: ProcessCommand) -> Result<()> {
    match command {
        ProcessCommand::List(a) => list(a),
        ProcessCommand::Watch(a) => watch(a),
        ProcessCommand::Deny(a) => deny(a),
    }
}

struct Quiet;
impl Hooks for Quiet {}
impl ProcessEvents for Quiet {}

fn list(args: ListArgs) -> Result<()> {
    let filter = ProcessFilter::new(Arc::new(Quiet));
    filter.set_track_command_line(args.command_line)?;
    filter.create_running_processes_snapshot()?;
    let printer = Printer { json: args.json };
    let mut out = std::io::stdout().lock();
    for p in filter.running_processes() {
        if args.json {
            let mut m = Map::new();
            m.insert("process_id".into(), json!(p.process_id));
            m.insert("process_name".into(), json!(p.process_name));
            if args.command_line {
                m.insert("command_line".into(), json!(p.command_line));
            }
            printer.event("running_process", m);
        } else {
            // A reader that went away (`| head`) ends the listing quietly.
            let line = if args.command_line {
                writeln!(
                    out,
                    "{:>7} {} {}",
                    p.process_id, p.process_name, p.command_line
                )
            } else {
                writeln!(out, "{:>7} {}", p.process_id, p.process_name)
            };
            if line.is_err() {
                break;
            }
        }
    }
    filter.close_running_processes_snapshot()
}

/// Prints each event.
struct Watcher {
    printer: Printer,
}

impl Watcher {
    /// Prints a handle operation event as `name`.
    fn handle_operation(&self, name: &str, e: &HandleOperation) {
        let mut m = Map::new();
        m.insert("process_id".into(), json!(e.process_id));
        if e.thread_id != 0 {
            m.insert("thread_id".into(), json!(e.thread_id));
        }
        m.insert(
            "originator_process_id".into(),
            json!(e.originator_process_id),
        );
        m.insert("originator_thread_id".into(), json!(e.originator_thread_id));
        m.insert("duplication".into(), json!(e.duplication));
        if e.duplication {
            m.insert("source_process_id".into(), json!(e.source_process_id));
            m.insert("target_process_id".into(), json!(e.target_process_id));
        }
        m.insert(
            "original_desired_access".into(),
            json!(e.original_desired_access),
        );
        m.insert("desired_access".into(), json!(e.desired_access));
        self.printer.event(name, m);
    }
}

impl ProcessEvents for Watcher {
    fn on_process_handle_operation(&self, e: &mut HandleOperation) -> Result<()> {
        self.handle_operation("process_handle_operation", e);
        Ok(())
    }
    fn on_thread_handle_operation(&self, e: &mut HandleOperation) -> Result<()> {
        self.handle_operation("thread_handle_operation", e);
        Ok(())
    }
    fn on_process_creation(&self, e: &mut ProcessCreation) -> Result<()> {
        let mut m = Map::new();
        m.insert("process_id".into(), json!(e.process_id));
        m.insert("parent_process_id".into(), json!(e.parent_process_id));
        m.insert("creating_process_id".into(), json!(e.creating_process_id));
        m.insert("creating_thread_id".into(), json!(e.creating_thread_id));
        m.insert("process_name".into(), json!(e.process_name));
        m.insert("image_file_name".into(), json!(e.image_file_name));
        m.insert("command_line".into(), json!(e.command_line));
        self.printer.event("process_creation", m);
        Ok(())
    }
    fn on_process_termination(&self, e: &ProcessTermination) -> Result<()> {
        let mut m = Map::new();
        m.insert("process_id".into(), json!(e.process_id));
        m.insert("process_name".into(), json!(e.process_name));
        self.printer.event("process_termination", m);
        Ok(())
    }
    fn on_thread_creation(&self, e: &ThreadCreation) -> Result<()> {
        let mut m = Map::new();
        m.insert("process_id".into(), json!(e.process_id));
        m.insert("thread_id".into(), json!(e.thread_id));
        self.printer.event("thread_creation", m);
        Ok(())
    }
    fn on_thread_termination(&self, e: &ThreadTermination) -> Result<()> {
        let mut m = Map::new();
        m.insert("process_id".into(), json!(e.process_id));
        m.insert("thread_id".into(), json!(e.thread_id));
        self.printer.event("thread_termination", m);
        Ok(())
    }
}

impl Hooks for Watcher {
    fn on_error(&self, error_code: u32, description: &str) {
        let mut m = Map::new();
        m.insert("result_code".into(), json!(error_code));
        m.insert("description".into(), Value::String(description.into()));
        self.printer.event("error", m);
    }
}

fn events_to_fire(list: Option<&str>) -> Result<i64> {
    let lifetimes = EventsToFire::PROCESS_CREATION
        .union(EventsToFire::PROCESS_TERMINATION)
        .union(EventsToFire::THREAD_CREATION)
        .union(EventsToFire::THREAD_TERMINATION);
    let Some(list) = list else {
        return Ok(lifetimes.as_setting());
    };
    let mut flags = EventsToFire::NONE;
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        flags = flags.union(match name {
            "process_creation" => EventsToFire::PROCESS_CREATION,
            "process_termination" => EventsToFire::PROCESS_TERMINATION,
            "thread_creation" => EventsToFire::THREAD_CREATION,
            "thread_termination" => EventsToFire::THREAD_TERMINATION,
            "process_handle_operation" => EventsToFire::PROCESS_HANDLE_OPERATION,
            "thread_handle_operation" => EventsToFire::THREAD_HANDLE_OPERATION,
            "handle" => {
                EventsToFire::PROCESS_HANDLE_OPERATION.union(EventsToFire::THREAD_HANDLE_OPERATION)
            }
            other => {
                return Err(Error::invalid_argument(
                    "--events",
                    format!(
                        "unknown event '{other}' (use process_creation, process_termination, \
                         thread_creation, thread_termination, process_handle_operation, \
                         thread_handle_operation, handle)"
                    ),
                ))
            }
        });
    }
    Ok(flags.as_setting())
}

fn watch(args: WatchArgs) -> Result<()> {
    if args.names.is_empty() && args.pids.is_empty() {
        return Err(Error::invalid_argument(
            "watch",
            "give at least one --name MASK or --pid PID (--pid=-1: every process)",
        ));
    }
    let flags = events_to_fire(args.events.as_deref())?;
    let stop = StopSignal::register()?;
    let filter = ProcessFilter::new(Arc::new(Watcher {
        printer: Printer { json: args.json },
    }));
    filter
        .initialize(&args.product.guid())
        .map_err(|e| args.product.explain(e))?;
    filter.config(&format!("EventsToFire={flags}"))?;
    filter.set_track_command_line(args.command_line)?;
    filter.start_filter(0)?;
    for pid in &args.pids {
        filter.add_filtered_process_by_id(*pid, args.children)?;
    }
    for name in &args.names {
        filter.add_filtered_process_by_name(name, args.children)?;
    }
    ready(format!(
        "watching processes (pids {:?}, names {:?})",
        args.pids, args.names
    ));
    stop.wait();
    filter.stop_filter()
}

/// Denies execs whose image matches a mask and prints each denial.
struct Denier {
    masks: Vec<PathMask>,
    printer: Printer,
}

impl Hooks for Denier {}

impl ProcessEvents for Denier {
    fn on_process_creation(&self, e: &mut ProcessCreation) -> Result<()> {
        if !self.masks.iter().any(|m| m.matches(&e.image_file_name)) {
            return Ok(());
        }
        let mut m = Map::new();
        m.insert("process_id".into(), json!(e.process_id));
        m.insert("parent_process_id".into(), json!(e.parent_process_id));
        m.insert("image_file_name".into(), json!(e.image_file_name));
        m.insert("result_code".into(), json!(code::ERROR_ACCESS_DENIED));
        self.printer.event("process_creation", m);
        Err(Error::from_code(
            code::ERROR_ACCESS_DENIED,
            format!("exec of {} denied", e.image_file_name),
        ))
    }
}

/// The mount points an exec control mark must cover for `masks`: each mask's fixed
/// directory, or every mount when a mask can match anywhere.
fn deny_paths(masks: &[PathMask]) -> Vec<String> {
    if masks.iter().any(|m| m.fixed_directory().is_none()) {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        return info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| !p.contains('\\'))
            .map(str::to_string)
            .collect();
    }
    masks
        .iter()
        .filter_map(|m| m.fixed_directory().map(str::to_string))
        .collect()
}

fn deny(args: DenyArgs) -> Result<()> {
    let masks = args
        .masks
        .iter()
        .map(|m| PathMask::parse(m, true))
        .collect::<Result<Vec<_>>>()?;
    let paths = deny_paths(&masks);
    let stop = StopSignal::register()?;
    let filter = ProcessFilter::new(Arc::new(Denier {
        masks,
        printer: Printer { json: args.json },
    }));
    filter
        .initialize(&args.product.guid())
        .map_err(|e| args.product.explain(e))?;
    filter.config("EventsToFire=1")?;
    filter.config("DenyExpiredEvents=False")?;
    for p in &paths {
        // Pseudo filesystems refuse exec marks; they hold no programs.
        if let Err(e) = filter.add_controlled_exec_path(p) {
            tracing::debug!("not controlling {p}: {e}");
        }
    }
    // Every permission event is answered within 10 s even if printing stalls.
    filter.start_filter(10_000)?;
    filter.add_filtered_process_by_id(-1, false)?;
    ready(format!("denying exec of {:?}", args.masks));
    stop.wait();
    filter.stop_filter()
}

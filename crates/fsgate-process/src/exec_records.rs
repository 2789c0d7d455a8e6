//! Exact exec records from the kernel, for the creation event's image and command line.
//!
//! While the filter is active with `on_process_creation` asked for, `fsgate-bpf`'s program on
//! `sched_process_exec` records each exec's image (the full path of the file the new image
//! was mapped from, what `/proc/<pid>/exe` shows) and its argument vector, read in the kernel
//! at exec time, so a process that exits at once is named as exactly as one that lives long.
//! The kernel writes that record before it sends the process connector's exec record (both
//! from the exec-ing task, in that order), so when the connector reader meets an exec it
//! drains the records without blocking and finds that exec's record there.
//!
//! A kernel that refuses the programs (or a caller without the privilege to load them)
//! leaves the creation event to `/proc`: the image from `/proc/<pid>/exe` and the fanotify
//! exec-open names (`exec_names`), the command line from `/proc/<pid>/cmdline`, both empty
//! when the process exited before the connector record was handled.

use std::collections::{HashMap, VecDeque};

use fsgate_bpf::{EventKinds, ExecReader, ExecRecord, Tracer, TracerBuilder};

/// Records kept for processes whose connector exec record has not come: beyond this many,
/// those of processes that no longer exist are dropped (their connector records were lost,
/// and with them the exit that would have dropped them).
const PENDING_LIMIT: usize = 65_536;

/// The loaded exec program and the records not yet claimed by a connector exec record.
pub struct ExecRecords {
    reader: ExecReader,
    pending: Pending,
}

/// Records by process, in exec order, until their connector record comes.
#[derive(Debug, Default)]
struct Pending(HashMap<u32, VecDeque<ExecRecord>>);

impl Pending {
    /// Keeps `record` for its process; past [`PENDING_LIMIT`] processes, first drops those
    /// `alive` says are gone.
    fn push(&mut self, record: ExecRecord, alive: impl Fn(u32) -> bool) {
        if self.0.len() >= PENDING_LIMIT {
            self.0.retain(|&pid, _| alive(pid));
        }
        self.0
            .entry(record.process_id)
            .or_default()
            .push_back(record);
    }

    /// The oldest record of `pid`.
    fn take(&mut self, pid: u32) -> Option<ExecRecord> {
        let queue = self.0.get_mut(&pid)?;
        let record = queue.pop_front();
        if queue.is_empty() {
            self.0.remove(&pid);
        }
        record
    }

    /// Drops `pid`'s records.
    fn forget(&mut self, pid: u32) {
        self.0.remove(&pid);
    }
}

/// Whether process `pid` exists.
fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

impl ExecRecords {
    /// Loads the exec program: the tracer that must live as long as the records are read,
    /// and the records. The error is the kernel's refusal (`ERROR_NOT_SUPPORTED` (50) or
    /// `ERROR_PRIVILEGE_NOT_HELD` (1314)); the caller then names images from `/proc`.
    pub fn start() -> fsgate_core::Result<(Tracer, Self)> {
        // Every process's exec, whatever the rules (which select creations in user space,
        // by the creating process); handle operations are not asked for, so no system call
        // tracepoint is attached.
        let (tracer, reader) = TracerBuilder::new()
            .events(EventKinds::EXEC)
            .exec_of_every_process(true)
            .start_with_exec_reader(|_| {})?;
        Ok((
            tracer,
            Self {
                reader,
                pending: Pending::default(),
            },
        ))
    }

    /// The record of process `pid`'s exec that the connector reports now; `None` when the
    /// kernel wrote none (it lost it: the ring buffer was full).
    pub fn take(&mut self, pid: u32) -> Option<ExecRecord> {
        for record in self.reader.drain() {
            self.pending.push(record, alive);
        }
        self.pending.take(pid)
    }

    /// Forgets an exited process's records (their connector records were lost).
    pub fn forget(&mut self, pid: u32) {
        self.pending.forget(pid);
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::path::PathBuf;

    use super::*;

    fn record(pid: u32, arg: &str) -> ExecRecord {
        ExecRecord {
            process_id: pid,
            thread_id: pid,
            parent_process_id: 1,
            user_id: 0,
            syscall: None,
            image_path: PathBuf::from("/bin/true"),
            file_name: OsString::from("/bin/true"),
            arguments: vec![OsString::from(arg)],
            arguments_truncated: false,
            path_truncated: false,
        }
    }

    #[test]
    fn records_are_claimed_in_exec_order_and_gone_processes_are_dropped_past_the_limit() {
        let mut p = Pending::default();
        p.push(record(7, "first"), |_| true);
        p.push(record(7, "second"), |_| true);
        assert_eq!(p.take(7).map(|r| r.arguments), Some(vec!["first".into()]));
        assert_eq!(p.take(7).map(|r| r.arguments), Some(vec!["second".into()]));
        assert_eq!(p.take(7), None);
        p.push(record(8, "x"), |_| true);
        p.forget(8);
        assert_eq!(p.take(8), None);
        for pid in 0..PENDING_LIMIT as u32 {
            p.push(record(pid + 100, "x"), |_| true);
        }
        // Full: the next record first drops the processes that are gone (all but 100).
        p.push(record(5, "new"), |pid| pid == 100);
        assert_eq!(p.0.len(), 2);
        assert!(p.take(100).is_some() && p.take(5).is_some());
    }
}

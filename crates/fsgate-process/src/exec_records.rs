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

/// The loaded exec program and the records not yet claimed by a connector exec record.
pub struct ExecRecords {
    reader: ExecReader,
    /// Records by process, in exec order, until their connector record comes.
    pending: HashMap<u32, VecDeque<ExecRecord>>,
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
                pending: HashMap::new(),
            },
        ))
    }

    /// The record of process `pid`'s exec that the connector reports now; `None` when the
    /// kernel wrote none (it lost it: the ring buffer was full).
    pub fn take(&mut self, pid: u32) -> Option<ExecRecord> {
        for record in self.reader.drain() {
            self.pending
                .entry(record.process_id)
                .or_default()
                .push_back(record);
        }
        let queue = self.pending.get_mut(&pid)?;
        let record = queue.pop_front();
        if queue.is_empty() {
            self.pending.remove(&pid);
        }
        record
    }

    /// Forgets an exited process's records (their connector records were lost).
    pub fn forget(&mut self, pid: u32) {
        self.pending.remove(&pid);
    }
}

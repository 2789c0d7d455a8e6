//! Prints every handle operation and exec on the system, one line each, until its standard
//! input closes; then prints the count of events and lost records on standard error.
//!
//! `trace [all|handle|signals|exec] [IGNORED_PID]` (root; `IGNORED_PID` and the processes it
//! forks later are ignored in the kernel; `signals`: handle operations without the system
//! call tracepoints, so signals only). Lines: `exec PID IMAGE ARG0 ARG1 …` (arguments
//! separated by single spaces) and `handle ORIGINATOR OPERATION TARGET DESIRED GRANTED RESULT`
//! (`OPERATION` as `Kill(Signal(18))`, `Ptrace(PtraceRequest(16))`, …).
//! bench/bpf/run.sh uses it as the monitor.

use std::io::{BufWriter, Read, Write};

use fsgate_bpf::{Event, EventKinds, PidRule, TracerBuilder};

fn main() -> Result<(), fsgate_core::Error> {
    let kind = std::env::args().nth(1);
    let events = match kind.as_deref() {
        Some("handle" | "signals") => EventKinds::HANDLE_OPERATIONS,
        Some("exec") => EventKinds::EXEC,
        _ => EventKinds::all(),
    };
    let mut builder = TracerBuilder::new()
        .events(events)
        .trace_syscalls(kind.as_deref() != Some("signals"));
    if let Some(process_id) = std::env::args().nth(2).and_then(|p| p.parse().ok()) {
        builder = builder.ignore(PidRule {
            process_id,
            include_children: true,
        });
    }
    let (tracer, receiver) = builder.start_channel()?;
    let writer = std::thread::spawn(move || {
        let mut out = BufWriter::new(std::io::stdout().lock());
        let mut count = 0u64;
        for event in receiver {
            count += 1;
            let _ = match event {
                Event::Exec(x) => writeln!(
                    out,
                    "exec {} {} {}",
                    x.process_id,
                    x.image_path.display(),
                    x.command_line()
                ),
                Event::HandleOperation(h) => writeln!(
                    out,
                    "handle {} {:?} {:?} {:#x} {:#x} {}",
                    h.originator_process_id,
                    h.operation,
                    h.target,
                    h.desired_access.bits(),
                    h.granted_access.bits(),
                    h.result
                ),
            };
        }
        let _ = out.flush();
        count
    });
    eprintln!("ready");
    // Runs until standard input closes.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let lost = tracer.lost_records();
    drop(tracer);
    let count = writer.join().unwrap_or(0);
    eprintln!("events: {count} lost: {lost}");
    Ok(())
}

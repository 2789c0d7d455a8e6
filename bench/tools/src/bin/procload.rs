//! Process load for bench/bpf: prints the seconds a loop took.
//!
//! - `procload signals N`: sends `SIGCONT` to a sleeping child N times (`kill(2)`), the
//!   cheapest real signal delivery there is, so any cost added per call shows.
//! - `procload execs N PROGRAM TOKEN`: runs `PROGRAM TOKEN-i` for i in 0..N, one at a time,
//!   and prints each child's pid and index to the file named by `PIDS` if set.

use std::io::Write;
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let count: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(0);
    match args.get(1).map(String::as_str) {
        Some("signals") if count > 0 => signals(count),
        Some("execs") if count > 0 && args.len() == 5 => execs(count, &args[3], &args[4]),
        _ => {
            eprintln!("usage: procload signals N | procload execs N PROGRAM TOKEN");
            ExitCode::FAILURE
        }
    }
}

fn signals(count: usize) -> ExitCode {
    let Ok(mut child) = Command::new("/bin/sleep").arg("1000").spawn() else {
        eprintln!("procload: cannot spawn /bin/sleep");
        return ExitCode::FAILURE;
    };
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    for _ in 0..count {
        // SAFETY: kill takes no pointers; pid is our own child, alive until killed below.
        if unsafe { libc::kill(pid, libc::SIGCONT) } != 0 {
            eprintln!("procload: kill: {}", std::io::Error::last_os_error());
            return ExitCode::FAILURE;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    println!("{elapsed:.4}");
    ExitCode::SUCCESS
}

fn execs(count: usize, program: &str, token: &str) -> ExitCode {
    let mut pids = Vec::with_capacity(count);
    let start = Instant::now();
    for i in 0..count {
        let status = Command::new(program)
            .arg(format!("{token}-{i}"))
            .spawn()
            .and_then(|mut c| {
                pids.push(c.id());
                c.wait()
            });
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("procload: running {program} failed");
            return ExitCode::FAILURE;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    if let Ok(path) = std::env::var("PIDS") {
        let Ok(mut file) = std::fs::File::create(&path) else {
            eprintln!("procload: cannot create {path}");
            return ExitCode::FAILURE;
        };
        for (i, pid) in pids.iter().enumerate() {
            let _ = writeln!(file, "{pid} {i}");
        }
    }
    println!("{elapsed:.4}");
    ExitCode::SUCCESS
}

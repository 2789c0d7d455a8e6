//! The pieces every fsgate class is built from, in one small program: a file mask decides
//! which requests an application cares about, and the dispatcher runs its handlers on
//! worker threads — one file at a time, different files in parallel — answering each
//! request exactly once, even when a handler overruns its timeout.
//!
//! Run with `cargo run -p fsgate-core --example dispatch`.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use fsgate_core::dispatch::{
    self, Dispatcher, NoHooks, Options, Outcome, SerialKey, Task, Timeout,
};
use fsgate_core::FileMask;

fn main() -> fsgate_core::Result<()> {
    let reports = FileMask::parse("/srv/reports/*.pdf")?;
    let requests = [
        (1, "/srv/reports/2024/q1.pdf", 10),
        (2, "/srv/reports/2024/q2.pdf", 10),
        (1, "/srv/reports/2024/q1.pdf", 10),
        (3, "/srv/reports/slow.pdf", 4_000),
        (4, "/home/me/notes.txt", 10),
    ];
    let dispatcher = Dispatcher::new(
        Options {
            timeout: Timeout::from_millis(3_000)?,
            ..Options::default()
        },
        Arc::new(NoHooks),
    )?;
    let (answers, answered) = mpsc::channel();
    for (file_id, path, work_ms) in requests {
        if !reports.matches(path, None) {
            println!("{path}: not covered by {reports}, answered at once");
            continue;
        }
        let answers = answers.clone();
        dispatcher.dispatch(
            Task::new(move || {
                // A long handler could call dispatch::reset_timeout to ask for more time.
                thread::sleep(Duration::from_millis(work_ms));
                format!("served by {:?}", thread::current().name())
            })
            .key(SerialKey(file_id))
            .then(move |outcome| {
                let text = match outcome {
                    Outcome::Done(s) => s,
                    Outcome::TimedOut => "timed out: the caller got an error".into(),
                    Outcome::Panicked(m) => format!("handler panicked: {m}"),
                    Outcome::Cancelled => "cancelled".into(),
                };
                let _ = answers.send(format!("{path}: {text}"));
            }),
        );
    }
    drop(answers);
    for line in answered {
        println!("{line}");
    }
    assert!(
        dispatch::reset_timeout(5_000).is_err(),
        "only inside a handler"
    );
    Ok(())
}

//! A POSIX conformance list written for fsgate, run in one test on native ext4 (the
//! reference: a loop-mounted image), native tmpfs and the sample drives in every mode: the
//! memory drive (over `/dev/fuse`, over io_uring where the kernel offers it, and without the
//! page cache) and the mirror drive over directories of that ext4 (plain, `--passthrough`,
//! and without the page cache).
//!
//! Each check runs in a fresh directory of every target and reports what it observed —
//! errno names, bytes, sizes and checksums, link counts, modes and owners, which times
//! changed — as `label: value` lines. Every target must observe exactly what ext4 observes,
//! line for line, except where [`DEVIATIONS`] says why it differs on purpose; the failure
//! lists every difference. Each check runs in a child process (this test binary again), so
//! a crash, a signal (a `SIGBUS` from a mapping) or a hang is that check's observation on
//! that target and the others still run. Permission checks run as uids 1000 and 1001
//! (python3 started with `setresuid`/`setresgid`, no supplementary groups).

#[path = "conformance/checks.rs"]
mod checks;
#[path = "conformance/served.rs"]
mod served;
#[path = "conformance/sys.rs"]
mod sys;

use std::fs;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fsgate_testkit::require_root;
use served::{DriveMode, Target, Targets};

/// This test's name: the child processes run it again with [`RUN_CHECK`] set.
const TEST: &str = "every_target_behaves_like_ext4_on_the_posix_list";
/// In a child: the check to run.
const RUN_CHECK: &str = "FSGATE_CONFORMANCE_CHECK";
/// In a child: the directory to run it in.
const RUN_IN: &str = "FSGATE_CONFORMANCE_DIR";
/// How a child marks its observations on stdout.
const OBSERVED: &str = "observed: ";
/// How long one check may take on one target.
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);

/// Which targets a deviation is for.
enum Applies {
    /// The target of this name.
    Target(&'static str),
    /// The targets of these names.
    Targets(&'static [&'static str]),
    /// Every drive mode: a limit of the kernel's FUSE module, not of a drive.
    EveryDrive,
}

/// A deliberate difference from ext4: on `on`, lines of `check` that start with `line` may
/// differ, for `reason`.
struct Deviation {
    on: Applies,
    check: &'static str,
    line: &'static str,
    reason: &'static str,
}

/// Every deliberate difference from ext4.
const DEVIATIONS: &[Deviation] = &[
    Deviation {
        on: Applies::Target("tmpfs"),
        check: "fallocate_modes",
        line: "ZERO_RANGE",
        reason: "shmem_fallocate implements only KEEP_SIZE and PUNCH_HOLE (EOPNOTSUPP)",
    },
    Deviation {
        on: Applies::Target("tmpfs"),
        check: "fallocate_modes",
        line: "COLLAPSE_RANGE",
        reason: "shmem_fallocate implements only KEEP_SIZE and PUNCH_HOLE (EOPNOTSUPP)",
    },
    Deviation {
        on: Applies::Target("tmpfs"),
        check: "fallocate_modes",
        line: "INSERT_RANGE",
        reason: "shmem_fallocate implements only KEEP_SIZE and PUNCH_HOLE (EOPNOTSUPP)",
    },
    Deviation {
        on: Applies::EveryDrive,
        check: "fallocate_modes",
        line: "COLLAPSE_RANGE",
        reason: "fuse_file_fallocate refuses every mode but KEEP_SIZE, PUNCH_HOLE and \
                 ZERO_RANGE (EOPNOTSUPP) before a drive sees the request",
    },
    Deviation {
        on: Applies::EveryDrive,
        check: "fallocate_modes",
        line: "INSERT_RANGE",
        reason: "fuse_file_fallocate refuses every mode but KEEP_SIZE, PUNCH_HOLE and \
                 ZERO_RANGE (EOPNOTSUPP) before a drive sees the request",
    },
    Deviation {
        on: Applies::EveryDrive,
        check: "o_tmpfile",
        line: "",
        reason: "fsgate does not implement FUSE_TMPFILE (events name files by path, and an \
                 O_TMPFILE file has none): the kernel answers EOPNOTSUPP, which programs \
                 take as the filesystem's answer and fall back to a named file",
    },
    Deviation {
        on: Applies::Targets(&[
            "memory write-through",
            "memory FileCache=None",
            "mirror",
            "mirror --passthrough",
            "mirror FileCache=None",
        ]),
        check: "setid_cleared_on_chown",
        line: "unchanged",
        reason: "chown(2) with neither owner nor group: under FUSE_HANDLE_KILLPRIV_V2 without \
                 the writeback cache the kernel sends the drive no request at all (it drops \
                 the change time it would send), so nothing can clear the set-id bits (the \
                 memory drive's default writeback cache sends it, and clears them)",
    },
];

impl Deviation {
    /// Whether this deviation lets `line` of `check` differ on `target`.
    fn covers(&self, target: &Target, check: &str, line: &str) -> bool {
        let on_target = match self.on {
            Applies::Target(name) => name == target.name,
            Applies::Targets(names) => names.contains(&target.name),
            Applies::EveryDrive => target.mode.is_some(),
        };
        on_target && self.check == check && line.starts_with(self.line)
    }
}

#[test]
fn every_target_behaves_like_ext4_on_the_posix_list() {
    if let (Ok(check), Ok(dir)) = (std::env::var(RUN_CHECK), std::env::var(RUN_IN)) {
        run_in_child(&check, Path::new(&dir));
        return;
    }
    if !require_root("FUSE and tmpfs mounts need root") {
        return;
    }
    let started = Instant::now();
    let targets = Targets::mount(&DriveMode::ALL);
    let mut differences = Vec::new();
    let mut differing: Vec<(&str, Vec<&str>)> =
        targets.list.iter().map(|t| (t.name, Vec::new())).collect();
    let mut used = vec![false; DEVIATIONS.len()];
    for (check, _) in checks::CHECKS {
        let seen: Vec<Vec<String>> = std::thread::scope(|s| {
            let running: Vec<_> = targets
                .list
                .iter()
                .map(|t| {
                    let d = t.root.join(check);
                    fs::create_dir(&d).unwrap();
                    s.spawn(move || observe(check, &d))
                })
                .collect();
            running.into_iter().map(|h| h.join().unwrap()).collect()
        });
        eprintln!("{check}: {:?}", seen[0]);
        for (i, (target, got)) in targets.list.iter().zip(&seen).enumerate().skip(1) {
            let unexplained = unexplained_differences(check, target, &seen[0], got, &mut used);
            if !unexplained.is_empty() {
                differing[i].1.push(check);
                differences.push(format!("{check} on {}:\n{unexplained}", target.name));
            }
        }
    }
    targets.stop();
    for (d, used) in DEVIATIONS.iter().zip(used) {
        let seen = if used {
            "allowed"
        } else {
            "not seen on this kernel"
        };
        eprintln!("deviation {seen}: {} `{}…`: {}", d.check, d.line, d.reason);
    }
    eprintln!(
        "{} checks on {} targets in {:.1} s",
        checks::CHECKS.len(),
        differing.len(),
        started.elapsed().as_secs_f64()
    );
    let summary: Vec<String> = differing
        .iter()
        .filter(|(_, checks)| !checks.is_empty())
        .map(|(target, checks)| format!("{target}: {} differ: {}", checks.len(), checks.join(", ")))
        .collect();
    assert!(
        differences.is_empty(),
        "\n{}\n\n{} differences from ext4:\n{}",
        differences.join("\n"),
        differences.len(),
        summary.join("\n")
    );
}

/// The lines where `got` (what `target` observed in `check`) differs from `expected` (what
/// ext4 observed) and no deviation explains it, as `expected:`/`got:` lines; marks the
/// deviations that explained a line in `used`.
fn unexplained_differences(
    check: &str,
    target: &Target,
    expected: &[String],
    got: &[String],
    used: &mut [bool],
) -> String {
    let mut text = String::new();
    for mut hunk in diff(expected, got) {
        let mut unexplained = |line: &&str| {
            let deviation = DEVIATIONS
                .iter()
                .position(|d| d.covers(target, check, line));
            deviation.inspect(|&i| used[i] = true).is_none()
        };
        hunk.expected.retain(&mut unexplained);
        hunk.got.retain(&mut unexplained);
        if hunk.expected.is_empty() && hunk.got.is_empty() {
            continue;
        }
        for (label, lines) in [("expected:", &hunk.expected), ("got:     ", &hunk.got)] {
            if lines.is_empty() {
                text += &format!("  {label} (nothing)\n");
            }
            for line in lines {
                text += &format!("  {label} {line}\n");
            }
        }
    }
    text
}

/// In a child process: runs `check` in `dir` and prints its observations.
fn run_in_child(check: &str, dir: &Path) {
    let (_, run) = checks::CHECKS
        .iter()
        .find(|(name, _)| *name == check)
        .unwrap_or_else(|| panic!("no check {check}"));
    for line in run(dir) {
        println!("{OBSERVED}{}", line.replace('\n', "\\n"));
    }
}

/// Runs `check` in `dir` in a child process: its observations, then how it ended if it did
/// not end well (a panic's message, a signal, a timeout).
fn observe(check: &str, dir: &Path) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(RUN_CHECK, check)
        .env(RUN_IN, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + CHECK_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            // SAFETY: kill on the pid of a child we spawned and have not reaped yet.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut seen: Vec<String> = stdout
        .join()
        .unwrap()
        .lines()
        // libtest's `test NAME ... ` starts the first line.
        .filter_map(|l| {
            l.find(OBSERVED)
                .map(|at| l[at + OBSERVED.len()..].to_string())
        })
        .collect();
    let stderr = stderr.join().unwrap();
    match status {
        None => seen.push(format!(
            "check timed out after {} s",
            CHECK_TIMEOUT.as_secs()
        )),
        Some(s) if s.success() => {}
        Some(s) => {
            let panic: Vec<&str> = stderr
                .lines()
                .skip_while(|l| !l.contains("panicked at"))
                .take(2)
                .collect();
            seen.push(match s.signal() {
                Some(signal) => format!("check killed by signal {signal}"),
                None => format!("check panicked: {}", panic.join(" ")),
            });
        }
    }
    seen
}

/// A run of lines where two observations differ: what ext4 saw and what the target saw.
struct Hunk<'a> {
    expected: Vec<&'a str>,
    got: Vec<&'a str>,
}

/// The runs of lines that differ between `expected` and `got` (a longest-common-subsequence
/// diff, so one missing line does not shift every line after it).
fn diff<'a>(expected: &'a [String], got: &'a [String]) -> Vec<Hunk<'a>> {
    let (n, m) = (expected.len(), got.len());
    let mut common = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if expected[i] == got[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut hunks = Vec::new();
    let mut hunk = Hunk {
        expected: Vec::new(),
        got: Vec::new(),
    };
    while i < n || j < m {
        if i < n && j < m && expected[i] == got[j] {
            if !hunk.expected.is_empty() || !hunk.got.is_empty() {
                hunks.push(std::mem::replace(
                    &mut hunk,
                    Hunk {
                        expected: Vec::new(),
                        got: Vec::new(),
                    },
                ));
            }
            i += 1;
            j += 1;
        } else if j == m || (i < n && common[i + 1][j] >= common[i][j + 1]) {
            hunk.expected.push(&expected[i]);
            i += 1;
        } else {
            hunk.got.push(&got[j]);
            j += 1;
        }
    }
    if !hunk.expected.is_empty() || !hunk.got.is_empty() {
        hunks.push(hunk);
    }
    hunks
}

//! The reference's six-step context sequence, with three real processes opening and closing
//! one file on a real FUSE mount.

mod common;
use common::utf8;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use common::{root, wait_for, Guard};
use fsgate_core::Result;
use fsgate_vfs::*;

static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
static NEXT: AtomicU64 = AtomicU64::new(1);

fn log(s: String) {
    LOG.lock().unwrap().push(s);
}

fn logged() -> Vec<String> {
    LOG.lock().unwrap().clone()
}

struct Ctx(&'static str, u64);

impl Ctx {
    fn new(kind: &'static str) -> Self {
        let c = Ctx(kind, NEXT.fetch_add(1, Ordering::SeqCst));
        log(format!("create {}{}", c.0, c.1));
        c
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        log(format!("drop {}{}", self.0, self.1));
    }
}

/// The file context: built by the drive at the file's first open.
struct F(Ctx);
/// A handle context: built by the drive at each open.
struct H(Ctx);

struct Instrumented;

impl Hooks for Instrumented {}

impl Events for Instrumented {
    type FileContext = F;
    type HandleContext = H;
    type EnumerationContext = ();

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, F>) -> Result<()> {
        if utf8(p.file_name) == "/x" {
            p.file_exists = true;
            p.info.size = 0;
        }
        Ok(())
    }

    fn on_open_file(&self, p: &mut OpenFileParams<'_, F, H>) -> Result<()> {
        let pid = get_originator_process_id()?;
        let file = p.file_context.get_or_insert_with(|| F(Ctx::new("F")));
        let handle = p.handle_context.insert(H(Ctx::new("H")));
        log(format!(
            "open F{} H{} pid={} creator={}",
            file.0 .1,
            handle.0 .1,
            pid,
            p.handle_info.get_handle_creator_process_id()
        ));
        Ok(())
    }

    fn on_close_file(&self, p: &mut CloseFileParams<'_, F, H>) -> Result<()> {
        let id = |c: Option<&Ctx>| c.map_or(0, |c| c.1);
        log(format!(
            "close F{} H{} last={}",
            id(p.file_context.as_deref().map(|f| &f.0)),
            id(p.handle_context.as_deref().map(|h| &h.0)),
            p.last_handle
        ));
        Ok(())
    }
}

/// A child shell that opens the file on fd 3, closes it after one line on stdin and exits
/// after a second.
fn opener(path: &std::path::Path) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg("exec 3<\"$1\"; read a; exec 3<&-; read b")
        .arg("sh")
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap()
}

fn say(child: &mut Child) {
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
}

fn wait_logged(what: &str) -> String {
    assert!(
        wait_for(Duration::from_secs(10), || logged()
            .iter()
            .any(|l| l.starts_with(what))),
        "never logged {what}: {:?}",
        logged()
    );
    logged().into_iter().find(|l| l.starts_with(what)).unwrap()
}

fn position(what: &str) -> usize {
    logged()
        .iter()
        .position(|l| l == what)
        .unwrap_or_else(|| panic!("{what} missing from {:?}", logged()))
}

#[test]
fn contexts_follow_the_reference_six_step_table_with_three_processes() {
    if !root("contexts_follow_the_reference_six_step_table_with_three_processes") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let _guard = Guard(dir.path().to_path_buf());
    let drive = VirtualDrive::new(Instrumented, Options::default());
    drive.mount(dir.path(), 0).unwrap();
    let file = dir.path().join("x");

    // 1. A opens: FX and HXA created before on_open_file.
    let mut a = opener(&file);
    let open_a = wait_logged("open");
    // 2. B opens.
    let mut b = opener(&file);
    assert!(wait_for(Duration::from_secs(10), || logged()
        .iter()
        .filter(|l| l.starts_with("open"))
        .count()
        == 2));
    // 3. B closes.
    say(&mut b);
    let close_b = wait_logged("close");
    // 4. C opens.
    let mut c = opener(&file);
    assert!(wait_for(Duration::from_secs(10), || logged()
        .iter()
        .filter(|l| l.starts_with("open"))
        .count()
        == 3));
    // 5. A closes.
    say(&mut a);
    assert!(wait_for(Duration::from_secs(10), || logged()
        .iter()
        .filter(|l| l.starts_with("close"))
        .count()
        == 2));
    // 6. C closes.
    say(&mut c);
    assert!(wait_for(Duration::from_secs(10), || logged()
        .iter()
        .filter(|l| l.starts_with("close"))
        .count()
        == 3));
    let pids = [a.id(), b.id(), c.id()];
    for mut p in [a, b, c] {
        say(&mut p);
        p.wait().unwrap();
    }
    let opens: Vec<String> = logged()
        .into_iter()
        .filter(|l| l.starts_with("open"))
        .collect();
    let closes: Vec<String> = logged()
        .into_iter()
        .filter(|l| l.starts_with("close"))
        .collect();
    let ids = |l: &str| -> (String, String) {
        let mut w = l.split(' ').skip(1);
        (w.next().unwrap().to_string(), w.next().unwrap().to_string())
    };
    let (fx, hxa) = ids(&opens[0]);
    let (fx_b, hxb) = ids(&opens[1]);
    let (fx_c, hxc) = ids(&opens[2]);
    assert_eq!(
        (fx_b.as_str(), fx_c.as_str()),
        (fx.as_str(), fx.as_str()),
        "one file context for all three opens"
    );
    assert!(hxa != hxb && hxb != hxc && hxa != hxc);
    // Each open came from its own child: the originator and the handle's creator.
    for (line, pid) in opens.iter().zip(pids) {
        assert!(
            line.ends_with(&format!("pid={pid} creator={pid}")),
            "{line} vs {pid}"
        );
    }
    assert_eq!(open_a, opens[0]);
    // The closes came in the table's order: B, A, C (the last one with last=true).
    assert_eq!(close_b, format!("close {fx} {hxb} last=false"));
    assert_eq!(closes[1], format!("close {fx} {hxa} last=false"));
    assert_eq!(closes[2], format!("close {fx} {hxc} last=true"));
    // Created before their first event, dropped after their last.
    assert!(position(&format!("create {fx}")) < position(&opens[0]));
    assert!(position(&format!("create {hxa}")) < position(&opens[0]));
    assert!(position(&format!("create {hxb}")) < position(&opens[1]));
    assert!(position(&format!("create {hxc}")) < position(&opens[2]));
    assert!(position(&format!("drop {hxb}")) > position(&closes[0]));
    assert!(
        position(&format!("drop {hxb}")) < position(&opens[2]),
        "HXB gone before C opens"
    );
    assert!(position(&format!("drop {hxa}")) > position(&closes[1]));
    assert!(position(&format!("drop {hxc}")) > position(&closes[2]));
    assert!(position(&format!("drop {fx}")) > position(&closes[2]));
    drop(drive);
}

//! The creation event's image and command line from the kernel's exact exec records: a
//! storm of short-lived execs with distinct arguments, each named exactly, even though every
//! process has exited long before its event is handled.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::*;
use fsgate_core::code;
use fsgate_testkit::require_root;

const EXECS: usize = 2000;

#[test]
fn a_storm_of_short_lived_execs_is_named_exactly() {
    require_root!("the process connector and BPF programs need root (CI runs as root)");
    let product = Product::install();
    let fs = Tmpfs::mount();
    let image = fs.copy("/bin/true", &unique("named"));
    let rec = Recorder::new();
    let f = filter(&product, rec.clone());
    f.set_track_command_line(true).unwrap();
    f.config("FilterOwnRequests=true").unwrap();
    f.start_filter(0).unwrap();
    f.add_filtered_process_by_id(i64::from(std::process::id()), false)
        .unwrap();
    let mut index = HashMap::new();
    for i in 0..EXECS {
        let mut child = Command::new(&image)
            .arg(format!("storm-{i}"))
            .spawn()
            .unwrap();
        index.insert(child.id(), i);
        assert!(child.wait().unwrap().success());
    }
    let created = rec.wait_for(
        EXECS,
        |s| matches!(s, Seen::Created(c) if index.contains_key(&c.process_id)),
    );
    f.stop_filter().unwrap();
    // Every exec fires its event whatever names it.
    assert_eq!(created.len(), EXECS);
    match fsgate_bpf::probe_kernel() {
        Ok(()) => {
            let path = image.to_str().unwrap();
            let misnamed: Vec<_> = created
                .iter()
                .filter_map(|s| match s {
                    Seen::Created(c) => {
                        let i = index[&c.process_id];
                        let exact = c.image_file_name == path
                            && c.process_name == path
                            && c.file_open_name_available
                            && c.command_line == format!("{path} storm-{i}");
                        (!exact).then_some(c)
                    }
                    _ => None,
                })
                .collect();
            assert!(misnamed.is_empty(), "misnamed: {misnamed:#?}");
        }
        Err(e) => {
            // The documented alternative: the kernel refuses BPF programs, and creations are
            // named from /proc, which a process that already exited no longer has.
            assert!(
                [code::ERROR_NOT_SUPPORTED, code::ERROR_PRIVILEGE_NOT_HELD].contains(&e.code()),
                "{e}"
            );
            eprintln!("documented alternative on this kernel (names from /proc): {e}");
        }
    }
}

//! Compiles `src/bpf/tracer.bpf.c` with clang into a BPF object that the crate embeds.
//!
//! The programs are CO-RE: they include a `vmlinux.h` that bpftool generates from the BTF of
//! the kernel the build runs on (`/sys/kernel/btf/vmlinux`, or the file named by
//! `FSGATE_VMLINUX_BTF`), and libbpf relocates their field accesses against the BTF of the
//! kernel they load on, so the object runs on other kernel builds too. `scripts/deps.sh`
//! installs clang and bpftool.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const SOURCE: &str = "src/bpf/tracer.bpf.c";

fn main() {
    if let Err(message) = build() {
        eprintln!("fsgate-bpf build: {message}");
        std::process::exit(1);
    }
}

fn build() -> Result<(), String> {
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| format!("OUT_DIR: {e}"))?);
    let btf = env::var("FSGATE_VMLINUX_BTF").unwrap_or_else(|_| "/sys/kernel/btf/vmlinux".into());
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=src/bpf/tracer.h");
    println!("cargo:rerun-if-env-changed=FSGATE_VMLINUX_BTF");

    // Debian installs bpftool in /usr/sbin, which a non-root PATH may lack.
    let vmlinux = ["bpftool", "/usr/sbin/bpftool"]
        .iter()
        .find_map(|tool| {
            Command::new(tool)
                .args(["btf", "dump", "file", &btf, "format", "c"])
                .output()
                .ok()
        })
        .ok_or_else(|| {
            format!("running bpftool to dump {btf} failed (install it with scripts/deps.sh)")
        })?;
    if !vmlinux.status.success() {
        return Err(format!(
            "bpftool btf dump file {btf} failed: {}",
            String::from_utf8_lossy(&vmlinux.stderr)
        ));
    }
    let include = out_dir.join("include");
    std::fs::create_dir_all(&include).map_err(|e| format!("creating {include:?}: {e}"))?;
    std::fs::write(include.join("vmlinux.h"), &vmlinux.stdout)
        .map_err(|e| format!("writing vmlinux.h: {e}"))?;

    let object = out_dir.join("tracer.bpf.o");
    libbpf_cargo::SkeletonBuilder::new()
        .source(SOURCE)
        .obj(&object)
        .clang_args([
            format!("-I{}", include.display()),
            "-Isrc/bpf".to_string(),
            "-Wall".to_string(),
            "-Werror".to_string(),
        ])
        .build()
        .map_err(|e| format!("compiling {SOURCE} with clang: {e:#}"))?;
    Ok(())
}

//! A read-only drive with one file, `/hello.txt`.
//!
//! Design: the whole filesystem is two constants. `on_get_file_info` answers lookups and
//! `stat` for `/` (implicitly a directory) and `/hello.txt`; `on_enumerate_directory` lists
//! the one entry, using the enumeration context as its cursor (each listing starts with
//! none, so `restart` needs no special handling); `on_read_file` copies from the constant.
//! No file or handle context is needed, so `on_open_file` is left out: opens succeed and
//! later events see `None`. Every other event keeps its default: creating, writing or deleting fails with
//! `EOPNOTSUPP`.
//!
//! Run as root: `cargo run -p fsgate-vfs --example hello -- /mnt/hello` (the directory must
//! exist and be empty), then `cat /mnt/hello/hello.txt` from another shell. Press Enter to
//! unmount.

use std::path::Path;

use fsgate_core::Result;
use fsgate_vfs::{
    EnumerateDirectoryParams, Events, FileKind, GetFileInfoParams, Hooks, Options, ReadFileParams,
    VirtualDrive,
};

const NAME: &str = "hello.txt";
const TEXT: &[u8] = b"Hello from fsgate!\n";

struct Hello;

/// How far a listing got.
struct Cursor(usize);

impl Hooks for Hello {}

impl Events for Hello {
    type FileContext = ();
    type HandleContext = ();
    type EnumerationContext = Cursor;

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, ()>) -> Result<()> {
        if p.file_name == Path::new("/").join(NAME) {
            p.file_exists = true;
            p.info.kind = FileKind::File;
            p.info.mode = 0o444;
            p.info.size = TEXT.len() as u64;
        }
        Ok(())
    }

    fn on_enumerate_directory(
        &self,
        p: &mut EnumerateDirectoryParams<'_, (), (), Cursor>,
    ) -> Result<()> {
        let cursor = p.enumeration_context.get_or_insert(Cursor(0));
        if p.directory_name == Path::new("/") && cursor.0 == 0 {
            cursor.0 += 1;
            p.file_found = true;
            p.file_name = NAME.into();
            p.info.size = TEXT.len() as u64;
        }
        Ok(())
    }

    fn on_read_file(&self, p: &mut ReadFileParams<'_, (), ()>) -> Result<()> {
        let start = usize::try_from(p.position)
            .unwrap_or(usize::MAX)
            .min(TEXT.len());
        let n = (TEXT.len() - start).min(p.buffer.len());
        p.buffer[..n].copy_from_slice(&TEXT[start..start + n]);
        p.bytes_read = n;
        Ok(())
    }
}

fn main() -> Result<()> {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: hello MOUNTPOINT");
        std::process::exit(2);
    };
    let drive = VirtualDrive::new(Hello, Options::default());
    drive.mount(&dir, 0)?;
    eprintln!("ready: {dir}/{NAME}; press Enter to unmount");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drive.unmount()
}

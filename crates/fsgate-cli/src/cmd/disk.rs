//! `fsgate disk …`: describe, read, write and image disks, volumes and image files through
//! `fsgate_direct::DirectAccess`.
//!
//! Every subcommand initializes the class for a product GUID (see [`Product`]).
//!
//! `disk read` without `--out` prints a hex dump when stdout is a terminal and the raw bytes
//! otherwise (so `fsgate disk read … | xxd` and `> file` both work).

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use clap::Subcommand;
use fsgate_core::{code, Error, Result};
use fsgate_direct::flags::{GENERIC_READ, GENERIC_WRITE};
use fsgate_direct::{AlignedBuf, DirectAccess, VolumeHandle};
use serde_json::{json, Map, Value};

use crate::cmd::product::Product;

/// Bytes per transfer for `disk image` (1 MiB).
const CHUNK: usize = 1 << 20;

/// Disk subcommands.
#[derive(Subcommand)]
pub enum DiskCommand {
    /// Sector counts and sizes, mount points and model of a device or image.
    Info {
        /// Device or image file.
        device: PathBuf,
        /// One JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        product: Product,
    },
    /// Read sectors: a hex dump on a terminal, raw bytes to a pipe or to --out.
    Read {
        /// Device or image file.
        device: PathBuf,
        /// First sector.
        #[arg(long)]
        sector: u64,
        /// Number of sectors.
        #[arg(long)]
        count: u64,
        /// Write the raw bytes to this file.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        product: Product,
    },
    /// Write a file's bytes (a whole number of sectors) at a sector.
    Write {
        /// Device or image file.
        device: PathBuf,
        /// First sector.
        #[arg(long)]
        sector: u64,
        /// The bytes to write.
        #[arg(long = "in")]
        input: PathBuf,
        /// Unmount the device's mounts first.
        #[arg(long)]
        force_unmount: bool,
        #[command(flatten)]
        product: Product,
    },
    /// Copy a whole device to an image file, leaving zero runs sparse.
    Image {
        /// Device or image file.
        device: PathBuf,
        /// The image to write.
        outfile: PathBuf,
        /// Read the image back and compare it with the device.
        #[arg(long)]
        verify: bool,
        #[command(flatten)]
        product: Product,
    },
}

/// Runs a disk command.
pub fn run(command: DiskCommand) -> Result<()> {
    match command {
        DiskCommand::Info {
            device,
            json,
            product,
        } => info(&init(&product)?, &device, json),
        DiskCommand::Read {
            device,
            sector,
            count,
            out,
            product,
        } => read(&init(&product)?, &device, sector, count, out),
        DiskCommand::Write {
            device,
            sector,
            input,
            force_unmount,
            product,
        } => write(&init(&product)?, &device, sector, &input, force_unmount),
        DiskCommand::Image {
            device,
            outfile,
            verify,
            product,
        } => image(&init(&product)?, &device, &outfile, verify),
    }
}

fn init(product: &Product) -> Result<DirectAccess> {
    let direct = DirectAccess::new();
    direct
        .initialize(&product.guid())
        .map_err(|e| product.explain(e))?;
    Ok(direct)
}

fn name(device: &std::path::Path) -> Result<&str> {
    device
        .to_str()
        .ok_or_else(|| Error::invalid_argument("DEVICE", "is not valid UTF-8"))
}

fn info(direct: &DirectAccess, device: &std::path::Path, json: bool) -> Result<()> {
    let info = direct.get_volume_info(name(device)?)?;
    let mut fields = Map::new();
    fields.insert("device".into(), json!(device.display().to_string()));
    fields.insert("sector_count".into(), json!(info.sector_count));
    fields.insert("sector_size".into(), json!(info.sector_size));
    fields.insert(
        "physical_sector_size".into(),
        json!(info.physical_sector_size),
    );
    fields.insert("size_bytes".into(), json!(info.size_bytes));
    let points: Vec<_> = info
        .mount_points
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    fields.insert("mount_points".into(), json!(points));
    if let Some(model) = &info.model {
        fields.insert("model".into(), json!(model));
    }
    if json {
        println!("{}", Value::Object(fields));
    } else {
        for (k, v) in fields {
            match v {
                Value::String(s) => println!("{k}: {s}"),
                Value::Array(a) if a.is_empty() => println!("{k}: (none)"),
                Value::Array(a) => {
                    let list: Vec<_> = a.iter().filter_map(|v| v.as_str()).collect();
                    println!("{k}: {}", list.join(", "));
                }
                other => println!("{k}: {other}"),
            }
        }
    }
    Ok(())
}

fn read(
    direct: &DirectAccess,
    device: &std::path::Path,
    sector: u64,
    count: u64,
    out: Option<PathBuf>,
) -> Result<()> {
    let volume = direct.open_volume(name(device)?, GENERIC_READ, false)?;
    let ss = u64::from(direct.get_sector_size(&volume)?);
    let len = count
        .checked_mul(ss)
        .filter(|l| *l <= 1 << 30)
        .ok_or_else(|| {
            Error::invalid_argument(
                "--count",
                format!("{count} sectors of {ss} bytes is more than 1 GiB"),
            )
        })?;
    let mut buf = AlignedBuf::zeroed(len as usize)?;
    direct.read_sectors(&volume, sector, count, &mut buf)?;
    match out {
        Some(path) => std::fs::write(&path, &buf[..])
            .map_err(|e| Error::io(format!("writing {}", path.display()), e)),
        None if std::io::stdout().is_terminal() => {
            let mut stdout = std::io::stdout().lock();
            hex_dump(&mut stdout, sector * ss, &buf).map_err(|e| Error::io("writing to stdout", e))
        }
        None => std::io::stdout()
            .lock()
            .write_all(&buf)
            .map_err(|e| Error::io("writing to stdout", e)),
    }
}

/// `offset  16 hex bytes  |ascii|` lines, like `xxd`/`hexdump -C`.
fn hex_dump(out: &mut impl Write, base: u64, bytes: &[u8]) -> std::io::Result<()> {
    for (i, row) in bytes.chunks(16).enumerate() {
        let hex: Vec<_> = row.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = row
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        writeln!(
            out,
            "{:010x}  {:<47}  |{ascii}|",
            base + (i * 16) as u64,
            hex.join(" ")
        )?;
    }
    Ok(())
}

fn write(
    direct: &DirectAccess,
    device: &std::path::Path,
    sector: u64,
    input: &std::path::Path,
    force_unmount: bool,
) -> Result<()> {
    let data =
        std::fs::read(input).map_err(|e| Error::io(format!("reading {}", input.display()), e))?;
    let volume = direct.open_volume(name(device)?, GENERIC_READ | GENERIC_WRITE, force_unmount)?;
    let ss = direct.get_sector_size(&volume)? as usize;
    if data.is_empty() || data.len() % ss != 0 {
        return Err(Error::invalid_argument(
            "--in",
            format!(
                "{} holds {} bytes, not a whole number of {ss}-byte sectors",
                input.display(),
                data.len()
            ),
        ));
    }
    let count = (data.len() / ss) as u64;
    direct.write_sectors(&volume, sector, count, &data)?;
    volume.flush()?;
    eprintln!(
        "wrote {count} sectors at sector {sector} of {}",
        device.display()
    );
    Ok(())
}

fn image(
    direct: &DirectAccess,
    device: &std::path::Path,
    outfile: &std::path::Path,
    verify: bool,
) -> Result<()> {
    let volume = direct.open_volume(name(device)?, GENERIC_READ, false)?;
    let size = volume.size_bytes();
    let out = OpenOptions::new()
        .write(true)
        .read(true)
        .create(true)
        .truncate(true)
        .open(outfile)
        .map_err(|e| Error::io(format!("creating {}", outfile.display()), e))?;
    let bar = progress(size);
    let mut buf = AlignedBuf::zeroed(CHUNK)?;
    let mut sparse = 0u64;
    let mut offset = 0u64;
    while offset < size {
        let n = read_chunk(&volume, offset, &mut buf)?;
        let chunk = &buf[..n];
        if chunk.iter().all(|&b| b == 0) {
            sparse += n as u64;
        } else {
            out.write_all_at(chunk, offset)
                .map_err(|e| Error::io(format!("writing {}", outfile.display()), e))?;
        }
        offset += n as u64;
        if let Some(bar) = &bar {
            bar.set_position(offset);
        }
    }
    out.set_len(size)
        .and_then(|()| out.sync_all())
        .map_err(|e| Error::io(format!("finishing {}", outfile.display()), e))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    eprintln!(
        "imaged {size} bytes of {} to {} ({sparse} zero bytes left sparse)",
        device.display(),
        outfile.display()
    );
    if verify {
        verify_image(&volume, &out, outfile)?;
        eprintln!("verified {size} bytes");
    }
    Ok(())
}

/// Reads up to one chunk at `offset` (the last one may be shorter); returns its length.
fn read_chunk(volume: &VolumeHandle, offset: u64, buf: &mut AlignedBuf) -> Result<usize> {
    let n = (volume.size_bytes() - offset).min(CHUNK as u64) as usize;
    let got = volume.read_at(offset, &mut buf[..n])?;
    if got != n {
        return Err(Error::from_code(
            code::ERROR_GEN_FAILURE,
            format!("short read at byte {offset}"),
        ));
    }
    Ok(n)
}

fn verify_image(volume: &VolumeHandle, out: &File, outfile: &std::path::Path) -> Result<()> {
    let mut buf = AlignedBuf::zeroed(CHUNK)?;
    let mut copy = vec![0u8; CHUNK];
    let mut reader = out;
    let mut offset = 0u64;
    let size = volume.size_bytes();
    use std::io::Seek;
    reader
        .seek(std::io::SeekFrom::Start(0))
        .map_err(|e| Error::io(format!("rewinding {}", outfile.display()), e))?;
    while offset < size {
        let n = read_chunk(volume, offset, &mut buf)?;
        reader
            .read_exact(&mut copy[..n])
            .map_err(|e| Error::io(format!("reading back {}", outfile.display()), e))?;
        if let Some(i) = (0..n).find(|&i| buf[i] != copy[i]) {
            return Err(Error::from_code(
                code::ERROR_INVALID_DATA,
                format!(
                    "verify: {} differs from the device at byte {}",
                    outfile.display(),
                    offset + i as u64
                ),
            ));
        }
        offset += n as u64;
    }
    Ok(())
}

/// A progress bar on stderr when it is a terminal.
fn progress(size: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(size);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_dump_shows_offsets_hex_and_ascii() {
        let mut out = Vec::new();
        hex_dump(&mut out, 512, b"Hello, disk!\x00\x01\xffABCDE").unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            "0000000200  48 65 6c 6c 6f 2c 20 64 69 73 6b 21 00 01 ff 41  |Hello, disk!...A|"
        );
        assert!(lines[1].starts_with("0000000210  42 43 44 45"));
        assert!(lines[1].ends_with("|BCDE|"));
    }
}

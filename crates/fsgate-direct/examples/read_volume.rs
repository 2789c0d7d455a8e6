//! Reads a whole volume and prints the throughput: with `read_sectors` in 1 MiB transfers
//! into an [`AlignedBuf`] (so `O_DIRECT` goes straight into the caller's memory, no bounce
//! copy), or through the stream's `Read` with the same buffer.
//!
//! `bench/direct/run.sh` runs it against `dd iflag=direct bs=1M`. The class is initialized
//! for `$FSGATE_PRODUCT_GUID` under `$FSGATE_ROOT` (install fsgate there first with
//! `fsgate install PACKAGE --product-guid GUID --root DIR`).
//!
//! Usage: `read_volume DEVICE sectors|stream`

use std::io::Read;
use std::time::Instant;

use fsgate_direct::flags::GENERIC_READ;
use fsgate_direct::{AlignedBuf, DirectAccess};

const CHUNK: usize = 1 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(device), Some(mode)) = (args.get(1), args.get(2)) else {
        return Err("usage: read_volume DEVICE sectors|stream".into());
    };
    let guid = std::env::var("FSGATE_PRODUCT_GUID")?;
    let direct = DirectAccess::new();
    direct.initialize(&guid)?;
    let mut buf = AlignedBuf::zeroed(CHUNK)?;
    let started = Instant::now();
    let mut total = 0u64;
    match mode.as_str() {
        "sectors" => {
            let volume = direct.open_volume(device, GENERIC_READ, false)?;
            let ss = u64::from(direct.get_sector_size(&volume)?);
            let count = direct.get_sector_count(&volume)?;
            let per_chunk = CHUNK as u64 / ss;
            let mut sector = 0;
            while sector < count {
                let n = per_chunk.min(count - sector);
                direct.read_sectors(&volume, sector, n, &mut buf[..(n * ss) as usize])?;
                sector += n;
                total += n * ss;
            }
        }
        "stream" => {
            let mut stream = direct.open_volume_as_stream(device, GENERIC_READ, false)?;
            loop {
                let n = stream.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
        }
        other => return Err(format!("unknown mode {other}: use sectors or stream").into()),
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "mode={mode} bytes={total} seconds={seconds:.4} mib_s={:.1}",
        total as f64 / (1 << 20) as f64 / seconds
    );
    Ok(())
}

//! Many threads on one vault: each reads and writes its own file against its own model
//! while the write-back thread and another thread flush and a small size limit evicts.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{options, pattern, vault};
use fsgate_cache::{FlushMode, VaultOptions};

#[test]
fn concurrent_readers_writers_and_flushes_keep_every_byte() {
    let (_dir, remote, vault) = vault(VaultOptions {
        flush_delay: Duration::from_millis(5),
        size_limit: 256 * 1024,
        ..options()
    });
    let vault = Arc::new(vault);
    let ids: Vec<String> = (0..4).map(|i| format!("t{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let initial = pattern(100 + i as u64, 50_000);
        remote.put(id, &initial);
        vault.file_open(id, Some(initial.len() as u64)).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flusher = {
        let vault = vault.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                vault.flush_cache().unwrap();
            }
        })
    };
    let workers: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let vault = vault.clone();
            let id = id.clone();
            std::thread::spawn(move || {
                let mut model = pattern(100 + i as u64, 50_000);
                for step in 0..200u64 {
                    let pos = ((step * 7919 + i as u64 * 104_729) % 60_000) as usize;
                    if step % 3 == 0 {
                        let mut buf = vec![0u8; 6000];
                        let n = vault.file_read(&id, pos as u64, &mut buf).unwrap();
                        let want = model.len().saturating_sub(pos).min(buf.len());
                        assert_eq!(n, want);
                        if n > 0 {
                            assert!(buf[..n] == model[pos..pos + n], "{id} step {step}");
                        }
                    } else {
                        let data = pattern(step * 31 + i as u64, 1 + (step as usize * 13) % 5000);
                        vault.file_write(&id, pos as u64, &data).unwrap();
                        if model.len() < pos + data.len() {
                            model.resize(pos + data.len(), 0);
                        }
                        model[pos..pos + data.len()].copy_from_slice(&data);
                    }
                }
                vault.file_close_ex(&id, FlushMode::Immediate).unwrap();
                model
            })
        })
        .collect();
    let models: Vec<Vec<u8>> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    flusher.join().unwrap();
    vault.flush_cache().unwrap();
    for (id, model) in ids.iter().zip(&models) {
        assert!(remote.get(id).unwrap() == *model, "external {id}");
    }
}

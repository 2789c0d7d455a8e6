//! The remote drive through the kernel: `fsgate mount remote URL MOUNTPOINT` over a local
//! directory (`file://`) and over a real S3 server on loopback (moto's, started here by its
//! pid and stopped by it), checked by what a process sees on the mount and by what a fresh
//! mount with an empty vault finds in the store.

#[path = "conformance/served.rs"]
mod served;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use fsgate_testkit::{pattern, require_root, wait_for};
use served::Served;

/// A store emulator serving on a free loopback port, killed by its pid on drop.
struct Emulator {
    child: Child,
    port: u16,
}

impl Emulator {
    /// Spawns `command` with `args(port)` on free loopback ports until `ready(port)` holds;
    /// another port is tried when the emulator exits first (another process took its port
    /// meanwhile).
    fn start(
        command: &str,
        install: &str,
        args: impl Fn(u16) -> Vec<String>,
        mut ready: impl FnMut(u16) -> bool,
    ) -> Self {
        loop {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = Command::new(command)
                .args(args(port))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{command} ({install}, scripts/deps.sh): {e}"));
            let mut server = Self { child, port };
            let mut serving = false;
            wait_for(command, || {
                serving = ready(port);
                serving || server.child.try_wait().ok().flatten().is_some()
            });
            if serving {
                return server;
            }
        }
    }

    /// moto's S3 server (`python3 -m moto.server`) with bucket `bucket`.
    fn moto(bucket: &str) -> Self {
        let server_args = |port: u16| {
            [
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ]
            .map(String::from)
            .to_vec()
        };
        // A connection can be accepted (and reset) before moto serves HTTP: ask until it
        // answers.
        Self::start(
            "python3",
            "pip install 'moto[server]'",
            server_args,
            |port| {
                create_bucket(port, bucket).is_ok_and(|answer| {
                    assert!(
                        answer.starts_with("HTTP/1.1 200"),
                        "create bucket: {answer}"
                    );
                    true
                })
            },
        )
    }

    /// Azurite's blob service (`azurite-blob`) in memory, with container `container`.
    fn azurite(container: &str) -> Self {
        let server_args = |port: u16| {
            [
                "--silent",
                "--inMemoryPersistence",
                "--disableTelemetry",
                // Microsoft's Python client may speak a newer API version than this
                // Azurite knows; the operations the tests use are the same.
                "--skipApiVersionCheck",
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &port.to_string(),
            ]
            .map(String::from)
            .to_vec()
        };
        Self::start(
            "azurite-blob",
            "npm install -g azurite",
            server_args,
            |port| create_container(port, container),
        )
    }

    /// Kills the server now (by its pid).
    fn kill(&mut self) {
        // SAFETY: kill on the pid of a child we spawned and have not reaped yet.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// `PUT /bucket` on the S3 server at `port`: its whole HTTP answer.
fn create_bucket(port: u16, bucket: &str) -> std::io::Result<String> {
    let mut http = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        http,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    http.read_to_string(&mut answer)?;
    if answer.is_empty() {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(answer)
}

/// Azurite's well-known development account (the Azure Storage emulator's own).
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Makes `container` on the Azurite at `port` with Microsoft's Python client (shared-key
/// requests are signed): whether it now exists.
fn create_container(port: u16, container: &str) -> bool {
    let script = format!(
        "from azure.storage.blob import BlobServiceClient\n\
         BlobServiceClient.from_connection_string(\
         'DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};\
         BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};', \
         retry_total=0).create_container('{container}')\n"
    );
    Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!("python3 (pip install azure-storage-blob, scripts/deps.sh): {e}")
        })
        .success()
}

/// Which store a test runs against.
enum Store {
    Dir(PathBuf),
    S3(Emulator),
    Azure(Emulator),
}

impl Store {
    fn url(&self) -> String {
        match self {
            Store::Dir(dir) => format!("file://{}", dir.display()),
            Store::S3(_) => "s3://fsgate-test/drive".to_owned(),
            Store::Azure(_) => "az://fsgate-test/drive".to_owned(),
        }
    }

    /// The `fsgate mount remote` arguments that reach the store.
    fn args(&self) -> Vec<String> {
        let endpoint = |url: String| vec!["--endpoint".to_owned(), url];
        let option = |kv: String| vec!["--store-option".to_owned(), kv];
        match self {
            Store::Dir(_) => Vec::new(),
            Store::S3(server) => [
                endpoint(format!("http://127.0.0.1:{}", server.port)),
                option("aws_access_key_id=test".into()),
                option("aws_secret_access_key=test".into()),
                vec!["--region".into(), "us-east-1".into()],
            ]
            .concat(),
            Store::Azure(server) => [
                endpoint(format!(
                    "http://127.0.0.1:{}/{AZURITE_ACCOUNT}",
                    server.port
                )),
                option(format!("azure_storage_account_name={AZURITE_ACCOUNT}")),
                option(format!("azure_storage_account_key={AZURITE_KEY}")),
            ]
            .concat(),
        }
    }
}

/// A test's temporary directory, its store, a counter for fresh mount points and vaults,
/// and arguments every mount gets.
struct Bench {
    tmp: tempfile::TempDir,
    store: Store,
    next: usize,
    mount_args: Vec<String>,
}

impl Bench {
    fn over(tmp: tempfile::TempDir, store: Store) -> Self {
        Self {
            tmp,
            store,
            next: 0,
            mount_args: Vec::new(),
        }
    }

    fn file() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        fs::create_dir(&dir).unwrap();
        Self::over(tmp, Store::Dir(dir))
    }

    fn s3() -> Self {
        Self::over(
            tempfile::tempdir().unwrap(),
            Store::S3(Emulator::moto("fsgate-test")),
        )
    }

    fn azure() -> Self {
        Self::over(
            tempfile::tempdir().unwrap(),
            Store::Azure(Emulator::azurite("fsgate-test")),
        )
    }

    /// Every mount uploads each file before its `close` returns (`--uploads close`).
    fn at_close(mut self) -> Self {
        self.mount_args.extend(["--uploads".into(), "close".into()]);
        self
    }

    /// A fresh vault path.
    fn vault(&mut self) -> PathBuf {
        self.next += 1;
        self.tmp.path().join(format!("vault{}", self.next))
    }

    /// Mounts the store at a fresh mount point with `vault` and extra arguments.
    fn mount_with(&mut self, vault: &Path, extra: &[&str]) -> Served {
        self.next += 1;
        let mnt = self.tmp.path().join(format!("mnt{}", self.next));
        fs::create_dir(&mnt).unwrap();
        let mut args: Vec<String> = vec![
            "remote".into(),
            self.store.url(),
            mnt.display().to_string(),
            "--cache".into(),
            vault.display().to_string(),
        ];
        args.extend(self.store.args());
        args.extend(self.mount_args.iter().cloned());
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        Served::spawn(&args, &mnt)
    }

    /// Mounts with a fresh vault.
    fn mount(&mut self) -> Served {
        let vault = self.vault();
        self.mount_with(&vault, &[])
    }
}

/// Every file under `root` with its bytes, by relative path; directories end in `/`.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if entry.file_type().unwrap().is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                walk(root, &path, out);
            } else {
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The whole file at `path` read with `O_DIRECT`: past the kernel's page cache, what the
/// drive itself serves.
fn read_direct(path: &Path) -> Vec<u8> {
    let mut back = Vec::new();
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .read_to_end(&mut back)
        .unwrap();
    back
}

/// The mount shows exactly `model`; so does the store, once the mount is stopped (its
/// uploads done) and mounted again with an empty vault.
fn assert_mount_and_store_hold(
    bench: &mut Bench,
    served: Served,
    model: &BTreeMap<String, Vec<u8>>,
    context: &str,
) {
    assert_eq!(
        snapshot(&served.mountpoint),
        *model,
        "{context}: the mount before unmounting"
    );
    assert!(served.stop().success());
    let again = bench.mount();
    assert_eq!(
        snapshot(&again.mountpoint),
        *model,
        "{context}: the store, mounted again with an empty vault"
    );
    assert!(again.stop().success());
}

/// xorshift, for the operations' choices.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Seeded random writes, truncates, renames, deletes, directory changes and reads on the
/// mount, each checked against an in-memory model at once; then the drive is unmounted and
/// the store mounted again with an empty vault, which must show exactly the model.
fn random_operations(mut bench: Bench, seed: u64, count: usize) {
    let served = bench.mount();
    let root = served.mountpoint.clone();
    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    model.insert("d/".into(), Vec::new());
    fs::create_dir(root.join("d")).unwrap();
    let names = ["a", "b", "c", "d/e", "d/f", "d/g"];
    let mut rng = Rng(seed | 1);
    for step in 0..count {
        let name = names[rng.below(names.len() as u64) as usize];
        let path = root.join(name);
        let op = rng.below(10);
        let context = format!("seed {seed} step {step}: op {op} on {name}");
        match op {
            0..=3 => {
                let len = 1 + rng.below(70_000) as usize;
                let at = rng.below(200_000);
                let data = pattern(len, seed ^ step as u64);
                let file = OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(false)
                    .open(&path)
                    .unwrap_or_else(|e| panic!("{context}: {e}"));
                file.write_all_at(&data, at).unwrap();
                drop(file);
                let content = model.entry(name.to_owned()).or_default();
                let end = at as usize + len;
                if content.len() < end {
                    content.resize(end, 0);
                }
                content[at as usize..end].copy_from_slice(&data);
            }
            4 => {
                let size = rng.below(150_000);
                let result = OpenOptions::new().write(true).open(&path);
                match model.get_mut(name) {
                    Some(content) => {
                        result.unwrap().set_len(size).unwrap();
                        content.resize(size as usize, 0);
                    }
                    None => assert_eq!(
                        result.unwrap_err().raw_os_error(),
                        Some(libc::ENOENT),
                        "{context}"
                    ),
                }
            }
            5 => {
                let to = names[rng.below(names.len() as u64) as usize];
                let result = fs::rename(&path, root.join(to));
                match model.remove(name) {
                    Some(content) => {
                        result.unwrap_or_else(|e| panic!("{context} → {to}: {e}"));
                        model.insert(to.to_owned(), content);
                    }
                    None => assert_eq!(
                        result.unwrap_err().raw_os_error(),
                        Some(libc::ENOENT),
                        "{context}"
                    ),
                }
            }
            6 => {
                let result = fs::remove_file(&path);
                match model.remove(name) {
                    Some(_) => result.unwrap_or_else(|e| panic!("{context}: {e}")),
                    None => assert_eq!(
                        result.unwrap_err().raw_os_error(),
                        Some(libc::ENOENT),
                        "{context}"
                    ),
                }
            }
            7 => {
                // A file kept open across several writes and a read of its own bytes.
                let mut file = OpenOptions::new()
                    .create(true)
                    .truncate(true)
                    .read(true)
                    .write(true)
                    .open(&path)
                    .unwrap();
                let mut content = Vec::new();
                for part in 0..3 {
                    let data = pattern(1 + rng.below(40_000) as usize, seed ^ step as u64 ^ part);
                    file.write_all(&data).unwrap();
                    content.extend_from_slice(&data);
                }
                let mut back = vec![0u8; content.len()];
                file.read_exact_at(&mut back, 0).unwrap();
                assert!(back == content, "{context}: read back while open");
                model.insert(name.to_owned(), content);
            }
            _ => match model.get(name) {
                Some(content) => {
                    let read = fs::read(&path).unwrap_or_else(|e| panic!("{context}: {e}"));
                    assert!(
                        read == *content,
                        "{context}: {} bytes, model {}",
                        read.len(),
                        content.len()
                    );
                }
                None => assert_eq!(
                    fs::metadata(&path).unwrap_err().raw_os_error(),
                    Some(libc::ENOENT),
                    "{context}"
                ),
            },
        }
    }
    assert_mount_and_store_hold(&mut bench, served, &model, &format!("seed {seed}"));
}

#[test]
fn random_operations_over_a_directory_match_the_model_after_a_remount() {
    require_root!("FUSE mounts need root");
    for seed in [1, 2] {
        random_operations(Bench::file(), seed, 120);
    }
}

#[test]
fn random_operations_with_uploads_at_close_match_the_model_after_a_remount() {
    require_root!("FUSE mounts need root");
    for seed in [1, 2] {
        random_operations(Bench::file().at_close(), seed, 120);
    }
}

#[test]
fn random_operations_over_s3_match_the_model_after_a_remount() {
    require_root!("FUSE mounts need root");
    random_operations(Bench::s3(), 7, 120);
}

#[test]
fn random_operations_over_azure_blob_storage_match_the_model_after_a_remount() {
    require_root!("FUSE mounts need root");
    random_operations(Bench::azure(), 11, 120);
}

#[test]
fn a_large_file_goes_up_in_parts_and_comes_back_whole() {
    require_root!("FUSE mounts need root");
    large_file_round_trip(Bench::s3());
}

#[test]
fn a_large_file_goes_up_in_blocks_to_azure_and_comes_back_whole() {
    require_root!("FUSE mounts need root");
    large_file_round_trip(Bench::azure());
}

/// A 21 MiB file (multipart: parts on S3, blocks on Azure) written, remounted with a fresh
/// vault, read back whole and at an offset.
fn large_file_round_trip(mut bench: Bench) {
    let served = bench.mount();
    let data = pattern(21 << 20, 5);
    fs::write(served.path("big"), &data).unwrap();
    assert!(served.stop().success());
    let again = bench.mount();
    assert!(fs::read(again.path("big")).unwrap() == data);
    let mut part = vec![0u8; 4096];
    File::open(again.path("big"))
        .unwrap()
        .read_exact_at(&mut part, 17 << 20)
        .unwrap();
    assert!(part == data[17 << 20..(17 << 20) + 4096]);
}

/// Without journaling (nothing fsynced), files closed before a kill -9 of the serving
/// process, uploaded or not yet, and a file being written when it died, come back from the
/// vault as orphans at the next mount with that vault, and are uploaded then.
fn kill_during_writes(mut bench: Bench) {
    let vault = bench.vault();
    let served = bench.mount_with(&vault, &[]);
    let closed: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| (format!("closed{i}"), pattern(100_000 + i * 7_000, i as u64)))
        .collect();
    for (name, data) in &closed {
        fs::write(served.path(name), data).unwrap();
    }
    let unflushed = pattern(300_000, 99);
    let mut open = File::create(served.path("open")).unwrap();
    open.write_all(&unflushed).unwrap();
    // A file deleted while open, and written through its descriptor after that: set aside
    // in the vault with unflushed data, it must not come back as an orphan.
    fs::write(served.path("gone"), b"deleted while open").unwrap();
    let gone = OpenOptions::new()
        .write(true)
        .open(served.path("gone"))
        .unwrap();
    fs::remove_file(served.path("gone")).unwrap();
    gone.write_all_at(b"after", 0).unwrap();
    // kill -9 by pid, and the dead mount detached.
    drop(served);
    drop((open, gone));

    let recovered = bench.mount_with(&vault, &[]);
    let uploaded = recovered
        .ready
        .split_once(" orphan file(s): ")
        .map(|(_, names)| names.trim_end_matches(')').to_owned())
        .unwrap_or_else(|| panic!("no orphans uploaded: {}", recovered.ready));
    let uploaded: Vec<&str> = uploaded.split(", ").collect();
    assert!(uploaded.contains(&"open"), "{}", recovered.ready);
    assert!(
        uploaded
            .iter()
            .all(|n| *n == "open" || closed.iter().any(|(c, _)| c == n)),
        "{}",
        recovered.ready
    );
    assert!(recovered.stop().success());
    let check = bench.mount();
    for (name, data) in &closed {
        assert!(
            fs::read(check.path(name)).unwrap() == *data,
            "{name}, closed before the kill"
        );
    }
    assert!(
        fs::read(check.path("open")).unwrap() == unflushed,
        "the orphan, uploaded at the remount with its vault"
    );
    assert!(!check.path("gone").exists(), "deleted before the kill");
}

#[test]
fn kill_during_writes_over_a_directory_keeps_closed_files_and_uploads_orphans() {
    require_root!("FUSE mounts need root");
    kill_during_writes(Bench::file());
}

#[test]
fn kill_during_writes_with_uploads_at_close_keeps_closed_files_and_uploads_orphans() {
    require_root!("FUSE mounts need root");
    kill_during_writes(Bench::file().at_close());
}

#[test]
fn kill_during_writes_over_s3_keeps_closed_files_and_uploads_orphans() {
    require_root!("FUSE mounts need root");
    kill_during_writes(Bench::s3());
}

/// `close` returns once the data is in the vault: it succeeds while the upload cannot,
/// and `fsync` waits for the upload and reports its failure; once the store takes it again,
/// `fsync` succeeds and the object holds every byte.
#[test]
fn close_returns_before_the_upload_and_fsync_reports_its_failure() {
    use std::os::fd::AsRawFd;
    require_root!("FUSE mounts need root");
    let mut bench = Bench::file();
    let served = bench.mount();
    fs::create_dir(served.path("sub")).unwrap();
    let mut file = File::create(served.path("sub/f")).unwrap();
    let data = pattern(150_000, 11);
    file.write_all(&data).unwrap();
    // The object's directory in the store becomes a plain file: no upload under it works.
    let Store::Dir(store) = &bench.store else {
        unreachable!()
    };
    fs::remove_dir_all(store.join("sub")).unwrap();
    fs::write(store.join("sub"), b"in the way").unwrap();
    // SAFETY: dup of a descriptor this test owns; the copy is closed just below.
    let copy = unsafe { libc::dup(file.as_raw_fd()) };
    assert!(copy >= 0);
    // SAFETY: closes the descriptor dup made above, once.
    let closed = unsafe { libc::close(copy) };
    assert_eq!(closed, 0, "close does not wait for the upload");
    assert!(file.sync_all().is_err(), "fsync waits for it and fails");
    fs::remove_file(store.join("sub")).unwrap();
    file.sync_all().unwrap();
    assert!(fs::read(store.join("sub/f")).unwrap() == data);
    drop(file);
    assert!(served.stop().success());
}

/// Many files closed at once go up in parallel; files written again while their upload
/// runs are uploaded again, so the store ends with every last byte.
#[test]
fn parallel_uploads_and_rewrites_during_them_keep_every_byte() {
    require_root!("FUSE mounts need root");
    let mut bench = Bench::s3();
    let served = bench.mount();
    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..24u64 {
        let name = format!("f{i:02}");
        let data = pattern(1 + (i as usize * 37_000) % 300_000, i);
        fs::write(served.path(&name), &data).unwrap();
        model.insert(name, data);
    }
    for i in (0..24u64).step_by(3) {
        let name = format!("f{i:02}");
        let data = pattern(5_000 + i as usize * 1_000, 100 + i);
        let file = OpenOptions::new()
            .write(true)
            .open(served.path(&name))
            .unwrap();
        file.write_all_at(&data, 10).unwrap();
        drop(file);
        let content = model.get_mut(&name).unwrap();
        if content.len() < 10 + data.len() {
            content.resize(10 + data.len(), 0);
        }
        content[10..10 + data.len()].copy_from_slice(&data);
    }
    assert_mount_and_store_hold(&mut bench, served, &model, "parallel uploads");
}

/// A listing of the store taken while a file's upload runs holds the object's old size and
/// version. Once that upload ends, the drive must still serve the new bytes: remembering the
/// listing's stale entry would open the file at its old size and drop its cached data.
#[test]
fn a_listing_taken_during_an_upload_does_not_bring_back_the_old_object() {
    use std::sync::atomic::{AtomicBool, Ordering};
    require_root!("FUSE mounts need root");
    let mut bench = Bench::file();
    let served = bench.mount();
    let Store::Dir(store) = &bench.store else {
        unreachable!()
    };
    // Other objects make each listing take a while, so that some listings span the end of
    // an upload.
    for i in 0..400 {
        fs::write(store.join(format!("other{i:03}")), b"x").unwrap();
    }
    let uploaded = |data: &[u8]| fs::read(store.join("f")).is_ok_and(|d| d == data);
    let old = pattern(10, 1);
    fs::write(served.path("f"), &old).unwrap();
    wait_for("the first upload", || uploaded(&old));
    for round in 0..8u64 {
        let new = pattern(8 << 20, 2 + round);
        let listing = AtomicBool::new(true);
        std::thread::scope(|s| {
            s.spawn(|| {
                while listing.load(Ordering::Relaxed) {
                    // A change of the directory makes the kernel ask the drive for its
                    // next listing rather than reuse the cached one.
                    fs::create_dir(served.path("x")).unwrap();
                    fs::remove_dir(served.path("x")).unwrap();
                    for entry in fs::read_dir(&served.mountpoint).unwrap() {
                        entry.unwrap();
                    }
                }
            });
            fs::write(served.path("f"), &new).unwrap();
            wait_for("the upload", || uploaded(&new));
            // The listing under way may have been asked for before the upload ended.
            listing.store(false, Ordering::Relaxed);
        });
        let back = read_direct(&served.path("f"));
        assert!(
            back == new,
            "round {round}: {} bytes after the upload, {} written",
            back.len(),
            new.len()
        );
    }
    assert!(served.stop().success());
}

/// As on any POSIX filesystem: a descriptor open on a file that is deleted, or replaced
/// by a rename, keeps reading the file it opened, while the name shows the new file; only
/// the new files reach the store.
#[test]
fn open_files_deleted_or_replaced_keep_their_bytes_for_their_holders() {
    require_root!("FUSE mounts need root");
    for mut bench in [Bench::file(), Bench::file().at_close()] {
        let served = bench.mount();
        let (first, second, third) = (pattern(300_000, 1), pattern(90_000, 2), pattern(5_000, 3));
        fs::write(served.path("a"), &first).unwrap();
        let held_a = File::open(served.path("a")).unwrap();
        fs::remove_file(served.path("a")).unwrap();
        fs::write(served.path("a"), &second).unwrap();
        fs::write(served.path("b"), &third).unwrap();
        let held_b = OpenOptions::new()
            .read(true)
            .write(true)
            .open(served.path("b"))
            .unwrap();
        fs::rename(served.path("a"), served.path("b")).unwrap();
        assert!(
            read_direct(&served.path("b")) == second,
            "b is the renamed file"
        );
        assert!(!served.path("a").exists());
        let mut back = vec![0u8; first.len()];
        held_a.read_exact_at(&mut back, 0).unwrap();
        assert!(
            back == first,
            "the deleted file's holder reads what it opened"
        );
        // The replaced file's holder writes to it; nothing of that reaches the name.
        held_b.write_all_at(b"held", 0).unwrap();
        let mut back = vec![0u8; third.len()];
        held_b.read_exact_at(&mut back, 0).unwrap();
        assert!(back[4..] == third[4..] && &back[..4] == b"held");
        drop((held_a, held_b));
        assert!(read_direct(&served.path("b")) == second);
        assert!(served.stop().success());
        let again = bench.mount();
        let mut model = BTreeMap::new();
        model.insert("b".to_owned(), second);
        assert_eq!(snapshot(&again.mountpoint), model, "the store");
        assert!(again.stop().success());
    }
}

#[test]
fn kill_during_writes_over_azure_keeps_closed_files_and_uploads_orphans() {
    require_root!("FUSE mounts need root");
    kill_during_writes(Bench::azure());
}

#[test]
fn two_mounts_of_one_bucket_see_each_others_closed_files() {
    require_root!("FUSE mounts need root");
    let mut bench = Bench::s3();
    let (va, vb) = (bench.vault(), bench.vault());
    let a = bench.mount_with(&va, &["--metadata-timeout", "1"]);
    let b = bench.mount_with(&vb, &["--metadata-timeout", "1"]);
    assert_eq!(fs::read_dir(&b.mountpoint).unwrap().count(), 0);
    fs::write(a.path("from-a"), b"written by a").unwrap();
    wait_for("a's file in b", || b.path("from-a").exists());
    assert_eq!(fs::read(b.path("from-a")).unwrap(), b"written by a");
    // b replaces it: a sees the new content (its cached copy is of the old object).
    fs::write(b.path("from-a"), b"replaced by b, longer").unwrap();
    wait_for("b's change in a", || {
        fs::read(a.path("from-a")).is_ok_and(|d| d == b"replaced by b, longer")
    });
    fs::remove_file(a.path("from-a")).unwrap();
    wait_for("a's delete in b", || !b.path("from-a").exists());
}

#[test]
fn cached_files_stay_readable_while_the_store_is_unreachable() {
    require_root!("FUSE mounts need root");
    let mut bench = Bench::s3();
    let vault = bench.vault();
    let served = bench.mount_with(
        &vault,
        &["--metadata-timeout", "0", "--config", "FileCache=None"],
    );
    let data = pattern(200_000, 3);
    fs::write(served.path("kept"), &data).unwrap();
    assert!(fs::read(served.path("kept")).unwrap() == data);
    let Store::S3(server) = &mut bench.store else {
        unreachable!()
    };
    server.kill();
    assert!(
        fs::read(served.path("kept")).unwrap() == data,
        "served from the vault"
    );
    let err = fs::read(served.path("never-seen")).unwrap_err();
    assert!(
        err.raw_os_error().is_some_and(|e| e != libc::ENOENT),
        "an unknown name with the store unreachable is an error, not a missing file: {err}"
    );
}

#[test]
fn empty_directories_are_kept_and_rmdir_refuses_full_ones() {
    require_root!("FUSE mounts need root");
    let mut bench = Bench::file();
    let served = bench.mount();
    fs::create_dir_all(served.path("x/y")).unwrap();
    fs::write(served.path("x/file"), b"1").unwrap();
    assert_eq!(
        fs::remove_dir(served.path("x")).unwrap_err().raw_os_error(),
        Some(libc::ENOTEMPTY)
    );
    fs::rename(served.path("x"), served.path("z")).unwrap();
    assert!(served.stop().success());
    let again = bench.mount();
    let mut names: Vec<String> = snapshot(&again.mountpoint).into_keys().collect();
    names.sort();
    assert_eq!(names, ["z/", "z/file", "z/y/"]);
    fs::remove_dir(again.path("z/y")).unwrap();
    fs::remove_file(again.path("z/file")).unwrap();
    fs::remove_dir(again.path("z")).unwrap();
    assert_eq!(fs::read_dir(&again.mountpoint).unwrap().count(), 0);
    let Store::Dir(dir) = &bench.store else {
        unreachable!()
    };
    assert_eq!(
        fs::read_dir(dir).unwrap().count(),
        0,
        "nothing left in the store"
    );
}

/// `fsgate mount remote file://STORE MNT --cache VAULT`, its stdin closed and its stderr
/// piped (for its ready line).
fn remote_mount(store: &Path, mnt: &Path, vault: &Path) -> Command {
    let mut command = Command::new(served::FSGATE);
    command
        .args(["mount", "remote"])
        .arg(format!("file://{}", store.display()))
        .arg(mnt)
        .arg("--cache")
        .arg(vault)
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    command
}

#[test]
fn json_events_are_printed_on_stdout() {
    require_root!("FUSE mounts need root");
    let tmp = tempfile::tempdir().unwrap();
    let (store, mnt) = (tmp.path().join("store"), tmp.path().join("mnt"));
    fs::create_dir(&store).unwrap();
    fs::create_dir(&mnt).unwrap();
    let mut child = remote_mount(&store, &mnt, &tmp.path().join("vault"))
        .args(["--log-events", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = fsgate_testkit::ReadyLine::watch(child.stderr.take().unwrap());
    let mut stdout = child.stdout.take().unwrap();
    let printed = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        text
    });
    let stop = |child: &mut Child| {
        // SAFETY: kill on the pid of a child we spawned and have not reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap()
    };
    if let Err(stderr) = ready.wait() {
        panic!("fsgate exited before it was ready:\n{stderr}");
    }
    let wrote = fs::write(mnt.join("logged"), b"123");
    let status = stop(&mut child);
    if fsgate_testkit::is_mounted(&mnt) {
        fsgate_testkit::lazy_unmount(&mnt);
    }
    wrote.unwrap();
    assert!(status.success());
    let text = printed.join().unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    for wanted in ["create_file", "write_file", "cleanup_file"] {
        assert!(names.contains(&wanted), "{wanted} in {names:?}");
    }
    assert_eq!(fs::read(store.join("logged")).unwrap(), b"123");
}

/// Durations that are not a number of seconds are refused by name, before anything mounts.
#[test]
fn bad_durations_are_refused_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    for (flag, value) in [
        ("--upload-delay", "-1"),
        ("--upload-delay", "1e30"),
        ("--metadata-timeout", "NaN"),
    ] {
        let out = Command::new(served::FSGATE)
            .args(["mount", "remote"])
            .arg(format!("file://{}", tmp.path().display()))
            .arg(tmp.path())
            .arg(format!("{flag}={value}"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} {value}");
        assert!(
            stderr.contains(flag) && stderr.contains("not a number of seconds"),
            "{flag} {value}: {stderr}"
        );
    }
}

/// A pseudo-terminal: its master side, and the path of its slave side.
fn open_pty() -> (File, PathBuf) {
    use std::os::fd::FromRawFd;
    // SAFETY: posix_openpt returns a new descriptor or -1; nothing else is touched.
    let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
    assert!(
        master >= 0,
        "posix_openpt: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `master` is a descriptor this test just opened and owns from here on.
    let master = unsafe { File::from_raw_fd(master) };
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: grantpt and unlockpt take the master descriptor; ptsname_r writes a
    // NUL-terminated path of at most `name.len()` bytes into `name`.
    let ok = unsafe {
        use std::os::fd::AsRawFd;
        let fd = master.as_raw_fd();
        libc::grantpt(fd) == 0
            && libc::unlockpt(fd) == 0
            && libc::ptsname_r(fd, name.as_mut_ptr(), name.len()) == 0
    };
    assert!(ok, "pty: {}", std::io::Error::last_os_error());
    // SAFETY: ptsname_r succeeded, so `name` holds a NUL-terminated string.
    let slave = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    (master, PathBuf::from(OsStr::from_bytes(slave.to_bytes())))
}

/// With stdout on a terminal, an upload of more than one part shows a progress bar naming
/// the file.
#[test]
fn a_long_upload_shows_a_progress_bar_on_a_terminal() {
    require_root!("FUSE mounts need root");
    let tmp = tempfile::tempdir().unwrap();
    let (store, mnt) = (tmp.path().join("store"), tmp.path().join("mnt"));
    fs::create_dir(&store).unwrap();
    fs::create_dir(&mnt).unwrap();
    let (mut master, slave) = open_pty();
    let terminal = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&slave)
        .unwrap();
    let mut child = remote_mount(&store, &mnt, &tmp.path().join("vault"))
        .args(["--uploads", "close"])
        .stdout(Stdio::from(terminal))
        .spawn()
        .unwrap();
    let ready = fsgate_testkit::ReadyLine::watch(child.stderr.take().unwrap());
    // The master reads until the last descriptor of the slave side closes (EIO).
    let printed = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    });
    if let Err(stderr) = ready.wait() {
        panic!("fsgate exited before it was ready:\n{stderr}");
    }
    let data = pattern(20 << 20, 4);
    let wrote = fs::write(mnt.join("big"), &data);
    // SAFETY: kill on the pid of a child we spawned and have not reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    if fsgate_testkit::is_mounted(&mnt) {
        fsgate_testkit::lazy_unmount(&mnt);
    }
    wrote.unwrap();
    assert!(status.success());
    assert!(fs::read(store.join("big")).unwrap() == data);
    let text = String::from_utf8_lossy(&printed.join().unwrap()).into_owned();
    assert!(text.contains("uploading big"), "on the terminal: {text:?}");
}

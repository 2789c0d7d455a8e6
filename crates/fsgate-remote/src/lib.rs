//! A virtual drive over object storage: S3 and S3-compatible servers, Google Cloud Storage,
//! Azure Blob Storage, or a local directory, through the Arrow project's `object_store`
//! crate, with file data cached in an `fsgate-cache` vault. `fsgate mount remote` serves it.
//!
//! # How the store is shown
//! - **Names.** A drive path `/a/b` is the object key `a/b` under the URL's prefix. A
//!   directory is a prefix with objects under it; an empty directory made on the drive is
//!   kept by a zero-byte marker object `DIR/.fsgate-directory` ([`DIRECTORY_MARKER`]), which
//!   listings never show. Keys are UTF-8; other names fail with `ERROR_INVALID_NAME`.
//! - **Metadata.** What a `HEAD` or a listing told is trusted for the metadata timeout
//!   ([`RemoteOptions::metadata_timeout`]), so a listing followed by a `stat` of each entry
//!   costs one request. Files created here and directories made here keep their
//!   directory's cached listing (a new directory starts with an empty one), so creating
//!   many files costs no request per name. Files and directories have mode 0644 and 0755 and belong to the
//!   serving user; `chmod`, `chown` and `utimes` succeed and change nothing (objects have
//!   none of these). A file's time is its object's last-modified time.
//! - **Reads** are ranged `GET`s into the vault, whole vault blocks at a time; a handle
//!   reading sequentially is served in windows of 8 MiB, each fetched in one request, the
//!   next one on a thread of its own while the reader consumes the current one (the vault's
//!   `file_prefetch`). Bytes in the vault are
//!   read from it, not the store: a file whose data the vault holds stays readable while
//!   the store is unreachable. When a file is opened and its object's ETag differs from the
//!   one its cached data came from (kept in a vault tag), the cached data is dropped.
//! - **Writes** stay in the vault, written there (without an fsync) before each `write`
//!   returns. A file closed with changes is uploaded whole: one `PUT` up to 8 MiB, a
//!   multipart upload above. An object store replaces objects whole, so a one-byte change
//!   uploads the whole file again. Other mounts see a file once its upload is done (plus
//!   the metadata timeout).
//! - **Uploads** ([`RemoteOptions::uploads`], `--uploads`). By default
//!   ([`Uploads::Background`]) `close` returns once the data is in the vault, and eight
//!   threads upload queued files in parallel once they have waited
//!   [`RemoteOptions::upload_delay`] (`--upload-delay`, 1 s by default): a file closed
//!   again within the delay is uploaded once, and a burst of small files is not slowed by
//!   its own uploads. A file written again while its upload runs
//!   stays dirty and is uploaded again after its next close; a failed upload is logged and
//!   retried every few seconds; unmounting waits for the queue, saying so in the log. A
//!   closed file is safe without the upload: it is in the vault, which a kill of the
//!   process does not lose. `fsync` uploads the file before it returns and returns the
//!   upload's error, in both modes. With [`Uploads::AtClose`] (`--uploads close`) every
//!   `close` of a descriptor with changes uploads the file before it returns and returns
//!   the upload's error. Creating 1,000 small files against a local S3 server takes about
//!   1.5 s in the background mode and 16 s at close.
//! - **What the store says is only as new as the request.** A listing or `HEAD` sent while
//!   one of the drive's uploads runs may describe the object as it was before that upload;
//!   the drive does not let such an answer replace what it knows from its own later
//!   changes (see `meta`). Before this was so, a listing taken during an upload could make
//!   the next open serve the file at its old size.
//! - **Orphans.** A file whose upload did not finish (a failure, the process killed or the
//!   machine stopped) keeps its unflushed data in the vault. [`RemoteDrive::upload_orphans`]
//!   (run by `fsgate mount remote` before mounting) uploads them at the next mount with the
//!   same vault. A kill of the process loses nothing the drive acknowledged: every `write`
//!   that returned is in the vault file. A power loss can lose what the vault had not
//!   fsynced yet (at most about a second), or with `--journaling` off leave the vault
//!   unopenable (see `fsgate_cache::VaultOptions::journaling`); with `--journaling`, every
//!   `write` that returned survives it.
//! - **Rename** is copy then delete, one object at a time (object stores have no rename):
//!   not atomic, and a directory's rename costs two requests per object under it. A crash
//!   in the middle leaves both names for some objects.
//! - **Several mounts** of one bucket, on one machine or many, see each other's closed files
//!   within the metadata timeout once they are uploaded. Concurrent writers of one file: the
//!   last upload wins, whole. fsgate adds no locking or cluster of its own; the store is the
//!   shared layer.
//! - **Deleting or replacing an open file** (unlink, or a rename onto its name) works as on
//!   a local filesystem: its descriptors keep reading and writing the file they opened,
//!   and the name is free at once. The drive first reads the rest of the file into the
//!   vault, then keeps it there under an id no object key can have until its last close;
//!   none of it is uploaded. What could not be fetched before the object went fails to
//!   read with `EIO`.
//! - Hard links, symbolic links, special files and extended attributes are not supported
//!   (`EPERM`, `EOPNOTSUPP`).
//!
//! # Threads
//! `object_store` is async. The drive owns a tokio runtime with two worker threads; each
//! event `block_on`s its store call from the library's worker thread that runs it, so
//! events wait on the store in parallel and never on each other's requests (see
//! [`store`]). Eight upload threads of the drive's own do the same for the background
//! uploads.

mod drive;
mod location;
mod meta;
pub mod store;
mod transfer;
mod uploads;

pub use drive::{
    DriveCore, Listing, OpenFile, ProgressFn, ReadAhead, RemoteDrive, RemoteOptions,
    UploadProgress, Uploads, DIRECTORY_MARKER,
};
pub use location::Location;

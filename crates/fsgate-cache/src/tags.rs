//! File tags: small application-defined values kept with a file under numeric ids.

use fsgate_core::error::code;
use fsgate_core::{Error, Result};

use crate::error::storage;
use crate::record::{decode_tag, encode_tag, FileNum};
use crate::vault::{Vault, TAGS};

/// Smallest tag id.
pub const TAG_ID_MIN: u16 = 0x0001;
/// Largest tag id; with [`TAG_ID_MIN`] this allows 53,247 tags per file.
pub const TAG_ID_MAX: u16 = 0xCFFF;
/// Most bytes one tag holds.
pub const TAG_SIZE_MAX: usize = 65_531;

fn check_tag_id(tag_id: u16) -> Result<()> {
    if (TAG_ID_MIN..=TAG_ID_MAX).contains(&tag_id) {
        Ok(())
    } else {
        Err(Error::invalid_argument(
            "tag_id",
            format!("{tag_id:#06x} is outside 0x0001..=0xCFFF"),
        ))
    }
}

fn tag_not_found(file_id: &str, tag_id: u16) -> Error {
    Error::from_code(
        code::ERROR_EA_NOT_FOUND,
        format!("file {file_id:?} has no tag {tag_id:#06x}"),
    )
}

impl Vault {
    /// The file's number, checking that the vault is open and holds the file.
    fn tag_file(&self, method: &str, file_id: &str) -> Result<FileNum> {
        let key = self.inner.key_of(file_id);
        let state = self.inner.lock();
        self.inner.check_open(&state, method)?;
        Ok(state.file(&key, file_id)?.record.num)
    }

    /// Sets tag `tag_id` (0x0001–0xCFFF) of the file to `data` (1 to 65,531 bytes), replacing
    /// any value it had. Tags live as long as the file and move with `file_change_id`.
    pub fn file_tag_set(&self, file_id: &str, tag_id: u16, data: &[u8]) -> Result<()> {
        check_tag_id(tag_id)?;
        if data.is_empty() || data.len() > TAG_SIZE_MAX {
            return Err(Error::invalid_argument(
                "data",
                format!("a tag holds 1 to {TAG_SIZE_MAX} bytes, not {}", data.len()),
            ));
        }
        let key = self.inner.key_of(file_id);
        let mut state = self.inner.lock();
        self.inner.check_open(&state, "file_tag_set")?;
        let num = state.file(&key, file_id)?.record.num;
        let txn = self.inner.begin_write()?;
        {
            let mut tags = txn
                .open_table(TAGS)
                .map_err(|e| storage("opening the tag table", e))?;
            tags.insert((num.0, tag_id), encode_tag(num, tag_id, data).as_slice())
                .map_err(|e| storage("writing a tag", e))?;
        }
        self.inner.commit(&mut state, txn, "file_tag_set")
    }

    /// The bytes of tag `tag_id`; `ERROR_EA_NOT_FOUND` when the file has no such tag,
    /// `ERROR_INVALID_DATA` when the stored tag fails its checksum.
    pub fn file_tag_get(&self, file_id: &str, tag_id: u16) -> Result<Vec<u8>> {
        check_tag_id(tag_id)?;
        let num = self.tag_file("file_tag_get", file_id)?;
        let txn = self
            .inner
            .db
            .begin_read()
            .map_err(|e| storage("beginning a read", e))?;
        let tags = txn
            .open_table(TAGS)
            .map_err(|e| storage("opening the tag table", e))?;
        let value = tags
            .get((num.0, tag_id))
            .map_err(|e| storage("reading a tag", e))?;
        match value {
            Some(v) => decode_tag(num, tag_id, v.value()),
            None => Err(tag_not_found(file_id, tag_id)),
        }
    }

    /// The size in bytes of tag `tag_id`; `ERROR_EA_NOT_FOUND` when the file has none.
    pub fn file_tag_get_size(&self, file_id: &str, tag_id: u16) -> Result<usize> {
        self.file_tag_get(file_id, tag_id).map(|v| v.len())
    }

    /// Whether the file has tag `tag_id`.
    pub fn file_tag_exists(&self, file_id: &str, tag_id: u16) -> Result<bool> {
        match self.file_tag_get(file_id, tag_id) {
            Ok(_) => Ok(true),
            Err(e) if e.code() == code::ERROR_EA_NOT_FOUND => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes tag `tag_id`; `ERROR_EA_NOT_FOUND` when the file has none.
    pub fn file_tag_delete(&self, file_id: &str, tag_id: u16) -> Result<()> {
        check_tag_id(tag_id)?;
        let key = self.inner.key_of(file_id);
        let mut state = self.inner.lock();
        self.inner.check_open(&state, "file_tag_delete")?;
        let num = state.file(&key, file_id)?.record.num;
        let txn = self.inner.begin_write()?;
        let removed = {
            let mut tags = txn
                .open_table(TAGS)
                .map_err(|e| storage("opening the tag table", e))?;
            let removed = tags
                .remove((num.0, tag_id))
                .map_err(|e| storage("removing a tag", e))?;
            removed.is_some()
        };
        if !removed {
            return Err(tag_not_found(file_id, tag_id));
        }
        self.inner.commit(&mut state, txn, "file_tag_delete")
    }

    /// The ids of the file's tags, ascending.
    pub fn file_tag_enumerate(&self, file_id: &str) -> Result<Vec<u16>> {
        let num = self.tag_file("file_tag_enumerate", file_id)?;
        let txn = self
            .inner
            .db
            .begin_read()
            .map_err(|e| storage("beginning a read", e))?;
        let tags = txn
            .open_table(TAGS)
            .map_err(|e| storage("opening the tag table", e))?;
        let mut ids = Vec::new();
        for entry in tags
            .range((num.0, 0)..=(num.0, u16::MAX))
            .map_err(|e| storage("listing tags", e))?
        {
            let (k, _) = entry.map_err(|e| storage("listing tags", e))?;
            ids.push(k.value().1);
        }
        Ok(ids)
    }
}
